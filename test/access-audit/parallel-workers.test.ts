import { AccessAuditPipeline, type Classified } from '../../src/access-audit';
import { PARALLEL_WORKER_WINDOW } from '../../src/access-audit/parallel-workers';
import { parseAccessAuditConfig } from '../../src/config/access-audit';

/**
 * Records as PostgreSQL 15 with pgAudit 1.7.0 wrote them for one parallel query
 * (test/access-audit/parallel-workers-live.test.ts runs the real thing): the leader's
 * record names alice, each worker's has no user, database or host and statement id 1.
 */
const QUERY = 'SELECT count(*) FROM public.salaries WHERE pay > 10';
const WHEN = '2026-12-05 12:54:32 UTC';

interface Line {
  pid: number;
  /** `user@db` with host, or none (a worker or background process). */
  who?: { user: string; database: string; host: string };
  leader?: number;
  ids?: [number, number];
  text?: string;
  parameter?: string;
  object?: string;
}

const ALICE = { user: 'alice', database: 'appdb', host: '127.0.0.1(34202)' };
const APP = { user: 'app_svc', database: 'appdb', host: '10.0.0.9(5000)' };

function line(
  {
    pid,
    who,
    leader,
    ids = [1, 1],
    text = QUERY,
    parameter = '<none>',
    object = 'public.salaries',
  }: Line,
  withLeader = false,
): string {
  const identity = who === undefined ? ':@' : `${who.host}:${who.user}@${who.database}`;
  const leaderField = withLeader ? `${leader ?? ''}:` : '';
  return `${WHEN}:${identity}:[${pid}]:${leaderField}LOG:  AUDIT: SESSION,${ids[0]},${ids[1]},READ,SELECT,TABLE,${object},${text},${parameter}`;
}

const PREFIX_WITH_LEADER = '%t:%r:%u@%d:[%p]:%P:';

function scan(lines: string[], logLinePrefix?: string): Classified<undefined>[] {
  const pipeline = new AccessAuditPipeline(
    parseAccessAuditConfig({
      auditedRoles: ['alice'],
      serviceAccounts: ['app_svc'],
      ...(logLinePrefix === undefined ? {} : { logLinePrefix }),
    }),
  );
  return [...lines.flatMap((record) => pipeline.push(record, undefined)), ...pipeline.flush()];
}

/** `rule user` per alert, `excluded:reason(leader)` per excluded record, in log order. */
function verdicts(outcomes: Classified<undefined>[]): string[] {
  return outcomes.map((outcome) => {
    if (outcome.kind !== 'verdict') return 'unreadable';
    const { verdict, event } = outcome;
    if (verdict.kind === 'alert') return `${verdict.alert.rule} ${event.user || '@'}`;
    if (verdict.kind === 'excluded')
      return `excluded:${verdict.reason}${verdict.leaderPid === undefined ? '' : `(${verdict.leaderPid})`}`;
    return verdict.kind;
  });
}

describe('parallel workers (log without leader pids: RDS prefix)', () => {
  const leader = line({ pid: 100, who: ALICE, ids: [6, 1] });

  it('folds the workers logged after the leader (pgaudit.log_rows off) into it', () => {
    const out = scan([leader, line({ pid: 101 }), line({ pid: 102 })]);
    expect(verdicts(out)).toEqual([
      'human-read alice',
      'excluded:parallel-worker(100)',
      'excluded:parallel-worker(100)',
    ]);
  });

  it('folds the workers logged before the leader (pgaudit.log_rows on), keeping log order', () => {
    const out = scan([line({ pid: 101 }), line({ pid: 102 }), leader]);
    expect(verdicts(out)).toEqual([
      'excluded:parallel-worker(100)',
      'excluded:parallel-worker(100)',
      'human-read alice',
    ]);
    expect(out.map((outcome) => outcome.kind === 'verdict' && outcome.event.pid)).toEqual([
      101, 102, 100,
    ]);
  });

  it('still alerts a record without identity that matches no leader (a pg_cron background worker)', () => {
    expect(verdicts(scan([line({ pid: 300 })]))).toEqual(['human-read @']);
    expect(
      verdicts(scan([leader, line({ pid: 300, text: 'SELECT * FROM public.salaries' })])),
    ).toEqual(['human-read alice', 'human-read @']);
    expect(verdicts(scan([leader, line({ pid: 300, object: 'public.bonuses' })]))).toEqual([
      'human-read alice',
      'human-read @',
    ]);
    expect(verdicts(scan([leader, line({ pid: 300, parameter: '5' })]))).toEqual([
      'human-read alice',
      'human-read @',
    ]);
  });

  it('never folds into a record that does not alert: a service account cannot hide a background job', () => {
    const service = line({ pid: 200, who: APP, ids: [40, 1] });
    expect(verdicts(scan([service, line({ pid: 300 })]))).toEqual([
      'excluded:service-account',
      'human-read @',
    ]);
    expect(verdicts(scan([line({ pid: 300 }), service]))).toEqual([
      'human-read @',
      'excluded:service-account',
    ]);
  });

  it('does not fold a statement after the first of its process (a worker runs one)', () => {
    expect(verdicts(scan([leader, line({ pid: 300, ids: [2, 1] })]))).toEqual([
      'human-read alice',
      'human-read @',
    ]);
  });

  it(`does not fold records more than ${PARALLEL_WORKER_WINDOW} records apart`, () => {
    const between = Array.from({ length: PARALLEL_WORKER_WINDOW }, (_, i) =>
      line({ pid: 1000 + i, who: ALICE, text: `SELECT ${i}`, object: '' }),
    );
    const after = verdicts(scan([leader, ...between, line({ pid: 101 })]));
    expect(after.at(-1)).toBe('human-read @');
    const before = verdicts(scan([line({ pid: 101 }), ...between, leader]));
    expect(before[0]).toBe('human-read @');
    const near = verdicts(scan([leader, ...between.slice(1), line({ pid: 101 })]));
    expect(near.at(-1)).toBe('excluded:parallel-worker(100)');
  });

  it('resolves <previously logged> (pgaudit.log_statement_once) from the same process', () => {
    // The statement's second relation: its record says <previously logged>.
    const second = {
      text: '<previously logged>',
      parameter: '<previously logged>',
      object: 'public.bonuses',
    };
    const out = scan([
      line({ pid: 100, who: ALICE, ids: [7, 1], parameter: '5' }),
      line({ pid: 100, who: ALICE, ids: [7, 1], ...second }),
      line({ pid: 101, parameter: '5' }),
      line({ pid: 101, ...second }),
    ]);
    expect(verdicts(out)).toEqual([
      'human-read alice',
      'human-read alice',
      'excluded:parallel-worker(100)',
      'excluded:parallel-worker(100)',
    ]);
    // Without its process's earlier record the text is unknown: never folded.
    expect(verdicts(scan([leader, line({ pid: 101, text: '<previously logged>' })]))).toEqual([
      'human-read alice',
      'human-read @',
    ]);
  });
});

describe('parallel workers (log_line_prefix with %P)', () => {
  const leader = line({ pid: 100, who: ALICE, ids: [6, 1] }, true);

  it('folds a worker into the leader its line names', () => {
    const out = scan([leader, line({ pid: 101, leader: 100 }, true)], PREFIX_WITH_LEADER);
    expect(verdicts(out)).toEqual(['human-read alice', 'excluded:parallel-worker(100)']);
    expect(out[1]!.kind === 'verdict' && out[1]!.event.leaderPid).toBe(100);
  });

  it('folds a worker into a leader that does not alert (the worker is that statement)', () => {
    const service = line({ pid: 200, who: APP, ids: [40, 1] }, true);
    expect(
      verdicts(scan([service, line({ pid: 201, leader: 200 }, true)], PREFIX_WITH_LEADER)),
    ).toEqual(['excluded:service-account', 'excluded:parallel-worker(200)']);
  });

  it('alerts a worker whose leader is in another delivery on its own: nothing is lost', () => {
    // One pipeline per CloudWatch delivery: the leader's record in the one before or after.
    const worker = line({ pid: 101, leader: 100 }, true);
    expect(verdicts(scan([leader], PREFIX_WITH_LEADER))).toEqual(['human-read alice']);
    expect(verdicts(scan([worker], PREFIX_WITH_LEADER))).toEqual(['human-read @']);
    expect(verdicts(scan([line({ pid: 101 })]))).toEqual(['human-read @']);
  });

  it('never folds a record without a leader pid (a background worker), nor into another leader', () => {
    expect(verdicts(scan([leader, line({ pid: 300 }, true)], PREFIX_WITH_LEADER))).toEqual([
      'human-read alice',
      'human-read @',
    ]);
    expect(
      verdicts(scan([leader, line({ pid: 301, leader: 999 }, true)], PREFIX_WITH_LEADER)),
    ).toEqual(['human-read alice', 'human-read @']);
  });

  it('never folds into a record of the leader pid that is an integrity alert, logged before or after', () => {
    // A role named "alice@x" makes the leader's line read two ways: ambiguous-identity.
    const ambiguous = line({ pid: 100, who: { ...ALICE, user: 'alice@x' }, ids: [6, 1] }, true);
    const worker = line({ pid: 101, leader: 100 }, true);
    expect(verdicts(scan([ambiguous, worker], PREFIX_WITH_LEADER))).toEqual([
      'ambiguous-identity alice',
      'human-read @',
    ]);
    expect(verdicts(scan([worker, ambiguous], PREFIX_WITH_LEADER))).toEqual([
      'human-read @',
      'ambiguous-identity alice',
    ]);
  });
});

/**
 * Debian's default prefix: PostgreSQL ends the line of a process without a session (a
 * parallel worker, a pg_cron job) at %q, so it has no `user@db ` at all (as PostgreSQL 15
 * wrote it: test/access-audit/parallel-workers-live.test.ts runs the real thing).
 */
describe("parallel workers (Debian's log_line_prefix with %q)", () => {
  const DEBIAN_PREFIX = '%m [%p] %q%u@%d ';
  const at = '2026-12-05 12:54:32.123 UTC';
  const record = (pid: number, who: string, ids: string, text: string) =>
    `${at} [${pid}] ${who}LOG:  AUDIT: SESSION,${ids},READ,SELECT,TABLE,public.salaries,"${text}",<none>`;
  // An '@' and a space later in the statement: the whole prefix 'matches' a worker's
  // line with a user and database taken from the message.
  const text = 'SELECT pay FROM public.salaries -- ask a@b c';

  it("reads a worker's line, folds it into its leader and reads the leader's identity unambiguously", () => {
    const out = scan(
      [record(100, 'alice@appdb ', '6,1', text), record(101, '', '1,1', text)],
      DEBIAN_PREFIX,
    );
    expect(verdicts(out)).toEqual(['human-read alice', 'excluded:parallel-worker(100)']);
  });

  it('never loses a record without a session whose statement has an @: it alerts on its own', () => {
    expect(verdicts(scan([record(300, '', '1,1', text)], DEBIAN_PREFIX))).toEqual(['human-read @']);
  });

  it("a RAISE LOG 'AUDIT: …' in a parallel worker is forged: its CONTEXT line has no session either", () => {
    for (const name of ['public.f', 'public."a@b x: y"']) {
      // A function name with an '@', a space and 'x: ' reads, with the whole prefix, as
      // a message of severity 'x' by user 'CONTEXT:  PL/pgSQL function public."a'.
      const context = `${at} [300] CONTEXT:  PL/pgSQL function ${name}() line 1 at RAISE`;
      expect(verdicts(scan([record(300, '', '1,1', 'SELECT 1'), context], DEBIAN_PREFIX))).toEqual([
        'forged-audit-record @',
      ]);
    }
  });

  it('a role named like a record, making the line read both ways, is ambiguous and never folds', () => {
    const forged = record(
      400,
      'LOG:  AUDIT: SESSION,1,1,READ,SELECT,TABLE,public.x,y@appdb ',
      '7,1',
      'SELECT 1',
    );
    expect(verdicts(scan([forged], DEBIAN_PREFIX))).toEqual([
      expect.stringMatching(/^ambiguous-identity /),
    ]);
  });
});

describe("a worker's record its leader logs again (pgaudit.log_client on, a level sent to the client)", () => {
  const warning = (text: string) => text.replace('LOG:  AUDIT:', 'WARNING:  AUDIT:');
  const leaderIdentity = `${WHEN}:${ALICE.host}:${ALICE.user}@${ALICE.database}:[100]:`;
  const relayed = [
    warning(line({ pid: 101 })),
    // HandleParallelMessage: the worker's message under the leader's prefix, CONTEXT "parallel worker".
    warning(line({ pid: 100, who: ALICE })),
    `${leaderIdentity}CONTEXT:  parallel worker`,
    warning(line({ pid: 100, who: ALICE, ids: [6, 1] })),
  ];

  it('is folded as a worker record, neither forged nor a statement-id conflict', () => {
    const out = scan([
      warning(line({ pid: 100, who: ALICE, ids: [1, 1], text: 'SELECT 2' })),
      ...relayed,
    ]);
    expect(verdicts(out)).toEqual([
      'unexpected-audit-level alice',
      'excluded:parallel-worker(100)',
      'excluded:parallel-worker(100)',
      'unexpected-audit-level alice',
    ]);
  });

  it('a RAISE in a parallel worker, passed on by its leader, is still forged: its context names the function first', () => {
    const out = scan([
      warning(line({ pid: 100, who: ALICE })),
      `${leaderIdentity}CONTEXT:  PL/pgSQL function public.f() line 1 at RAISE`,
      '\tparallel worker',
    ]);
    expect(verdicts(out)).toEqual(['forged-audit-record alice']);
  });
});

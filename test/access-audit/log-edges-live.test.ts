import { chmod, mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import {
  canaryStatement,
  checkPgaudit,
  setupPgaudit,
  type AuditEvent,
} from '../../src/access-audit';
import type { LogFormat } from '../../src/access-audit/parser';
import { parseAccessAuditConfig } from '../../src/config/access-audit';
import { withClient } from '../support/databases';
import { liveAuditLog, ruleOf, type Outcome } from './support/live-audit-log';
import { describeWithPgaudit } from './support/live-suite';
import type { PgauditServer } from './support/pgaudit-server';

/**
 * Edges of the access audit on a real server's pgAudit output, read from stderr, csvlog
 * and jsonlog written by one run: a table named twice in one statement, the same record
 * in three formats (a client over TCP, one over the Unix socket, a parallel worker
 * without identity), and records that never reach the log because a session turned
 * pgAudit off.
 */
const DB = 'appdb';
/** RDS's prefix with the leader's pid (%P), so stderr carries every field csvlog and jsonlog do. */
const PREFIX = '%t:%r:%u@%d:[%p]:%P:';
const CONFIG = parseAccessAuditConfig({
  auditedRoles: ['alice', 'dba'],
  serviceAccounts: ['app_svc'],
  logLinePrefix: PREFIX,
  alerts: { digestThreshold: 1000 },
});
const FORMATS: readonly LogFormat[] = ['stderr', 'csvlog', 'jsonlog'];

const SELF_JOIN = 'SELECT count(*) FROM public.salaries s JOIN public.salaries t USING (id)';
const LOCAL_READ = "SELECT 'over the socket' FROM public.salaries LIMIT 1";
/** Settings that make the planner choose a parallel plan for any table scan. */
const FORCE_PARALLEL = [
  'SET parallel_setup_cost = 0',
  'SET parallel_tuple_cost = 0',
  'SET min_parallel_table_scan_size = 0',
  'SET max_parallel_workers_per_gather = 2',
];
const PARALLEL_QUERY = 'SELECT count(*) FROM public.salaries WHERE pay > 10';

/** A superuser turning pgAudit off for the rest of the session: pgAudit logs a SET after it took effect. */
const SESSION_OFF = "SET pgaudit.log = 'none'";
const AFTER_SESSION_OFF = "SELECT 'read after pgaudit.log none' FROM public.salaries LIMIT 1";
/** A superuser whose pgaudit.log lacks ROLE turning it off for every later session. */
const ROLE_OFF = "ALTER ROLE quiet_dba SET pgaudit.log = 'none'";
const AFTER_ROLE_OFF = "SELECT 'read in a later session' FROM public.salaries LIMIT 1";

/** pgaudit.log_level takes effect with pgaudit.log_client: then records are logged at that level. */
const AT_WARNING = "SELECT 'read at warning' FROM public.salaries LIMIT 1";
/** Below log_min_messages (warning by default) they are not written to the log at all. */
const AT_NOTICE = "SELECT 'read at notice' FROM public.salaries LIMIT 1";
const CANARY_NONCE = '1764644042000-9f1c';

/** Runs the workload's statements; returns the parallel query's plan. */
async function runWorkload(server: PgauditServer, socketDir: string): Promise<string[]> {
  const alice = server.userUrl('alice', DB);
  await withClient(alice, (client) => client.query(SELF_JOIN));
  const overSocket = `postgres://alice@/${DB}?host=${encodeURIComponent(socketDir)}&port=${server.port}`;
  await withClient(overSocket, (client) => client.query(LOCAL_READ));
  const plans = await withClient(alice, async (client) => {
    for (const statement of FORCE_PARALLEL) await client.query(statement);
    const { rows } = await client.query<{ 'QUERY PLAN': string }>(
      `EXPLAIN (ANALYZE, COSTS OFF) ${PARALLEL_QUERY}`,
    );
    await client.query(PARALLEL_QUERY);
    return rows.map((row) => row['QUERY PLAN']);
  });
  await withClient(server.userUrl('dba', DB), async (client) => {
    await client.query(SESSION_OFF);
    await client.query(AFTER_SESSION_OFF);
  });
  const quiet = server.userUrl('quiet_dba', DB);
  await withClient(quiet, (client) => client.query(ROLE_OFF));
  await withClient(quiet, (client) => client.query(AFTER_ROLE_OFF));
  const dba = server.userUrl('dba', DB);
  await withClient(dba, async (client) => {
    await client.query('SET pgaudit.log_client = on');
    await client.query("SET pgaudit.log_level = 'warning'");
    await client.query(AT_WARNING);
  });
  await withClient(dba, async (client) => {
    await client.query('SET pgaudit.log_client = on');
    await client.query("SET pgaudit.log_level = 'notice'");
    await client.query(AT_NOTICE);
  });
  // The same change for the canary where no statement shows it (as a parameter group would).
  await withClient(server.adminUrl(DB), async (admin) => {
    await admin.query('ALTER ROLE audit_trail_canary SET pgaudit.log_client = on');
    await admin.query("ALTER ROLE audit_trail_canary SET pgaudit.log_level = 'warning'");
  });
  await withClient(server.userUrl('audit_trail_canary', DB), (client) =>
    client.query(canaryStatement(CANARY_NONCE)),
  );
  return plans;
}

/** The fields that say who wrote a record, as the parser read them. */
function identity(event: AuditEvent) {
  return {
    user: event.user,
    database: event.database,
    remoteHost: event.remoteHost,
    remotePort: event.remotePort,
    pid: event.pid,
    leaderPid: event.leaderPid,
  };
}

/**
 * Each process's records in its own order: every process writes its records to each log
 * file in order, but records of processes running at once interleave differently per file.
 */
function byProcess(outcomes: readonly Outcome[]): Map<number | undefined, Outcome[]> {
  const processes = new Map<number | undefined, Outcome[]>();
  for (const outcome of outcomes) {
    const records = processes.get(outcome.event.pid) ?? [];
    records.push(outcome);
    processes.set(outcome.event.pid, records);
  }
  return processes;
}

describeWithPgaudit('access audit: log edges on a live PostgreSQL', (start) => {
  let socketDir: string;

  beforeAll(async () => {
    socketDir = await mkdtemp(path.join(os.tmpdir(), 'audit-trail-socket-'));
    // The server may run as the postgres OS user.
    await chmod(socketDir, 0o777);
  });
  // Registered before the server's hooks: after hooks run in reverse, so after its stop.
  afterAll(async () => {
    if (socketDir) await rm(socketDir, { recursive: true, force: true });
  });

  const live = liveAuditLog(start, {
    server: () => ({
      allFormats: true,
      settings: { log_line_prefix: PREFIX, unix_socket_directories: socketDir },
    }),
    config: CONFIG,
    database: DB,
    // quiet_dba: a superuser whose own pgaudit.log has neither ROLE nor MISC.
    roles: { logins: ['alice', 'app_svc'], superusers: ['dba', 'quiet_dba'] },
    prepare: async (admin) => {
      await admin.query('CREATE TABLE public.salaries (id int PRIMARY KEY, pay int)');
      await admin.query('INSERT INTO public.salaries SELECT g, g FROM generate_series(1, 1000) g');
      await admin.query('GRANT SELECT ON public.salaries TO alice');
      await setupPgaudit(admin, CONFIG);
      await admin.query("ALTER ROLE quiet_dba SET pgaudit.log = 'read, write'");
    },
    workload: (server) => runWorkload(server, socketDir),
    formats: FORMATS,
  });

  it.each(FORMATS)('a table named twice in one statement alerts once (%s)', (format) => {
    const selfJoin = live.outcomes(format).filter(({ event }) => event.statement === SELF_JOIN);
    // pgaudit.log_relation writes one record per reference to the table.
    expect(selfJoin).toHaveLength(2);
    expect(selfJoin.map(({ verdict }) => ruleOf(verdict))).toEqual(['human-read', 'excluded']);
  });

  it('reads the same identity from stderr, csvlog and jsonlog, also for a worker without one', () => {
    expect(live.workload.join('\n')).toMatch(/Workers Launched: [1-9]/);
    const [stderr, ...others] = FORMATS.map((format) => byProcess(live.outcomes(format)));
    for (const other of others) {
      expect([...other.keys()].sort()).toEqual([...stderr!.keys()].sort());
      for (const [pid, records] of stderr!) {
        expect(other.get(pid)!.map(({ event }) => identity(event))).toEqual(
          records.map(({ event }) => identity(event)),
        );
      }
    }
    const events = live.outcomes('jsonlog').map(({ event }) => event);
    const leader = events.find((event) => event.statement === PARALLEL_QUERY && event.user)!;
    const socket = events.find((event) => event.statement === LOCAL_READ)!;
    const worker = events.find((event) => event.leaderPid !== undefined)!;
    expect(identity(socket)).toMatchObject({ user: 'alice', remoteHost: '[local]' });
    expect(socket.remotePort).toBeUndefined();
    expect(identity(worker)).toEqual({
      user: undefined,
      database: undefined,
      remoteHost: undefined,
      remotePort: undefined,
      pid: expect.any(Number),
      leaderPid: leader.pid,
    });
  });

  it.each(FORMATS)(
    'records at another level than pgauditLogLevel alert, the canary record too (%s)',
    (format) => {
      const alerts = live
        .outcomes(format)
        .filter(({ event }) => event.severity === 'WARNING')
        .map(({ event, verdict }) => [event.statement, ruleOf(verdict)]);
      expect(alerts).toEqual([
        ["SET pgaudit.log_level = 'warning'", 'unexpected-audit-level'],
        [AT_WARNING, 'unexpected-audit-level'],
        [canaryStatement(CANARY_NONCE), 'unexpected-audit-level'],
      ]);
      // The SET that came first was still logged at LOG: audit-tampering.
      const logClient = live
        .outcomes(format)
        .filter(({ event }) => event.statement === 'SET pgaudit.log_client = on');
      expect(logClient.map(({ verdict }) => ruleOf(verdict))).toEqual([
        'audit-tampering',
        'audit-tampering',
      ]);
      // The canary's record is not taken as the canary: its alarm fires as well.
      expect(live.outcomes(format).some(({ verdict }) => verdict.kind === 'canary')).toBe(false);
    },
  );

  it('pgaudit check fails when records are written at another level than configured', async () => {
    const level = async (settings: string[]) =>
      withClient(live.server.userUrl('dba', DB), async (client) => {
        for (const setting of settings) await client.query(setting);
        return (await checkPgaudit(client, CONFIG)).find(({ item }) => item === 'record level');
      });
    expect(await level([])).toMatchObject({ ok: true });
    // pgaudit.log_level alone changes nothing: pgAudit logs at LOG without log_client.
    expect(await level(["SET pgaudit.log_level = 'warning'"])).toMatchObject({ ok: true });
    expect(
      await level(['SET pgaudit.log_client = on', "SET pgaudit.log_level = 'warning'"]),
    ).toMatchObject({
      ok: false,
      detail: expect.stringContaining(
        'records at WARNING (pgaudit.log_client on, pgaudit.log_level warning), config expects LOG',
      ),
    });
  });

  it.each(FORMATS)(
    'a session or role that turns pgaudit.log off leaves no record of it (%s)',
    (format) => {
      const log = live.log(format);
      // Logged after it took effect, when nothing is logged any more.
      for (const statement of [SESSION_OFF, AFTER_SESSION_OFF, ROLE_OFF, AFTER_ROLE_OFF])
        expect(log).not.toContain(statement);
      // Records at a level below log_min_messages go to the client only.
      expect(log).not.toContain(AT_NOTICE);
      // Only what came before: the role's setting, made by the superuser in setup.
      const quiet = live.outcomes(format).filter(({ event }) => event.user === 'quiet_dba');
      expect(quiet).toEqual([]);
    },
  );
});

import {
  AccessAuditPipeline,
  compileLogPrefix,
  createLogEntryParser,
  auditTamperingOf,
  FORGERY_WINDOW,
  identityChangeOf,
  splitLogRecords,
  type Classified,
} from '../../src/access-audit';
import { parseAccessAuditConfig } from '../../src/config/access-audit';

const CONFIG = parseAccessAuditConfig({ auditedRoles: ['alice'], serviceAccounts: ['app_svc'] });
const prefix = (user: string, pid: number, database = 'appdb') =>
  `2026-12-01 23:22:08 UTC:10.0.0.5(37962):${user}@${database}:[${pid}]:`;
const record = (user: string, pid: number, body: string) =>
  `${prefix(user, pid)}LOG:  AUDIT: ${body}`;

function scan(lines: readonly string[], config = CONFIG): Classified<undefined>[] {
  const pipeline = new AccessAuditPipeline(config);
  return [
    ...splitLogRecords(lines.join('\n')).flatMap((line) => pipeline.push(line, undefined)),
    ...pipeline.flush(),
  ];
}

function rules(outcomes: readonly Classified<undefined>[]): (string | undefined)[][] {
  return outcomes.map((outcome) =>
    outcome.kind === 'verdict'
      ? [
          outcome.verdict.kind === 'alert' ? outcome.verdict.alert.rule : outcome.verdict.kind,
          outcome.event.user,
          outcome.event.command,
        ]
      : ['unreadable', undefined, undefined],
  );
}

describe('forged records', () => {
  it('waits for the next line of the same pid: CONTEXT after DETAIL and HINT, other pids in between', () => {
    const outcomes = scan([
      record('mallory', 7, 'SESSION,9,1,ROLE,GRANT,,,GRANT x TO y,<none>'),
      record('alice', 8, 'SESSION,1,1,WRITE,DELETE,TABLE,public.items,DELETE FROM items,<none>'),
      `${prefix('mallory', 7)}DETAIL:  d`,
      `${prefix('mallory', 7)}HINT:  h`,
      `${prefix('mallory', 7)}CONTEXT:  PL/pgSQL function inline_code_block line 1 at RAISE`,
      `${prefix('mallory', 7)}STATEMENT:  DO $$ … $$`,
      record('alice', 8, 'SESSION,2,1,ROLE,GRANT,,,GRANT a TO b,<none>'),
    ]);
    expect(rules(outcomes)).toEqual([
      ['forged-audit-record', 'mallory', 'GRANT'],
      ['human-dml', 'alice', 'DELETE'],
      ['privilege-change', 'alice', 'GRANT'],
    ]);
  });

  it('a genuine record followed by another statement of its session is genuine', () => {
    const outcomes = scan([
      record('alice', 8, 'SESSION,1,1,ROLE,GRANT,,,GRANT a TO b,<none>'),
      `${prefix('alice', 8)}ERROR:  syntax error at or near "AUDIT" at character 1`,
      `${prefix('alice', 8)}STATEMENT:  AUDIT: SESSION,2,1,ROLE,GRANT,,,GRANT c TO d,<none>`,
      `${prefix('alice', 8)}CONTEXT:  late context of the error, not of the record`,
    ]);
    expect(rules(outcomes)).toEqual([['privilege-change', 'alice', 'GRANT']]);
  });

  it(`decides a record as genuine after ${FORGERY_WINDOW} lines of other processes, keeping log order`, () => {
    const others = Array.from({ length: FORGERY_WINDOW + 1 }, (_, index) =>
      record('alice', 100 + index, 'SESSION,1,1,READ,SELECT,,,SELECT 1,<none>'),
    );
    const pipeline = new AccessAuditPipeline(CONFIG);
    expect(
      pipeline.push(record('alice', 8, 'SESSION,1,1,ROLE,GRANT,,,GRANT a TO b,<none>'), undefined),
    ).toEqual([]);
    const out = others.flatMap((line) => pipeline.push(line, undefined));
    expect(out[0]).toMatchObject({ event: { pid: 8, command: 'GRANT' } });
    expect(out.length + pipeline.flush().length).toBe(FORGERY_WINDOW + 2);
  });

  it('only records at a severity pgAudit writes are records', () => {
    const parse = createLogEntryParser();
    const line = (severity: string) =>
      `${prefix('alice', 1)}${severity}:  AUDIT: SESSION,1,1,ROLE,GRANT,,,x,<none>`;
    // A failed statement's text, a message's details, RAISE EXCEPTION: never records.
    for (const severity of ['STATEMENT', 'DETAIL', 'CONTEXT', 'HINT', 'QUERY', 'ERROR', 'FATAL'])
      expect(parse(line(severity))).toMatchObject({ kind: 'message', severity });
    // pgaudit.log_level with pgaudit.log_client = on: read, with the severity it had.
    for (const severity of ['LOG', 'WARNING', 'NOTICE', 'INFO', 'DEBUG'])
      expect(parse(line(severity))).toMatchObject({ kind: 'audit', event: { severity } });
    // Words the configured level only starts or ends: another word, not a record.
    for (const severity of ['LOGS', 'LO', 'XLOG', 'log'])
      expect(parse(line(severity))).toMatchObject({ kind: 'message', severity });
    expect(createLogEntryParser({ pgauditLogLevel: 'warning' })(line('WARNINGS'))).toMatchObject({
      kind: 'message',
      severity: 'WARNINGS',
    });
  });

  it('alerts on every record at another severity than pgauditLogLevel, whatever it is', () => {
    const config = parseAccessAuditConfig({
      auditedRoles: ['alice'],
      serviceAccounts: ['app_svc'],
      canary: { role: 'audit_trail_canary' },
    });
    const at = (severity: string, user: string, body: string) =>
      `${prefix(user, 7)}${severity}:  AUDIT: ${body}`;
    const outcomes = scan(
      [
        at(
          'WARNING',
          'alice',
          'SESSION,1,1,WRITE,UPDATE,TABLE,public.items,UPDATE items SET x = 1,<none>',
        ),
        at(
          'WARNING',
          'app_svc',
          'SESSION,2,1,READ,SELECT,TABLE,public.items,SELECT * FROM items,<none>',
        ),
        at('WARNING', 'alice', 'SESSION,3,1,MISC,SET,,,SET application_name = x,<none>'),
        at(
          'WARNING',
          'audit_trail_canary',
          "SESSION,4,1,READ,SELECT,,,SELECT 'audit-trail-canary:1-ab' AS audit_trail_canary,<none>",
        ),
        at('LOG', 'alice', 'SESSION,5,1,MISC,SET,,,SET application_name = y,<none>'),
      ],
      config,
    ).map((outcome) =>
      outcome.kind === 'verdict' && outcome.verdict.kind === 'alert'
        ? [
            outcome.verdict.alert.rule,
            outcome.verdict.alert.severity,
            outcome.verdict.alert.summary,
          ]
        : outcome.kind === 'verdict'
          ? [outcome.verdict.kind]
          : ['unreadable'],
    );
    expect(outcomes).toEqual([
      // As severe as what the record itself raises, at least high.
      [
        'unexpected-audit-level',
        'high',
        'pgAudit record at WARNING, not at pgauditLogLevel LOG (pgaudit.log_level or pgaudit.log_client changed): alice@appdb from 10.0.0.5: UPDATE TABLE public.items (WRITE)',
      ],
      // A service account's record, noise and the canary's record alert too: the audit
      // no longer logs where it was set up to, and the canary is not seen.
      ['unexpected-audit-level', 'high', expect.stringContaining('app_svc@appdb')],
      ['unexpected-audit-level', 'high', expect.stringContaining('SET (MISC)')],
      ['unexpected-audit-level', 'high', expect.stringContaining('audit_trail_canary@appdb')],
      ['noise'],
    ]);
    // At the configured level the same records are what they are.
    const atNotice = scan(
      [at('NOTICE', 'alice', 'SESSION,1,1,MISC,SET,,,SET application_name = x,<none>')],
      parseAccessAuditConfig({ auditedRoles: ['alice'], pgauditLogLevel: 'notice' }),
    );
    expect(rules(atNotice)).toEqual([['noise', 'alice', 'SET']]);
  });
});

describe('statement ids', () => {
  const update = (type: string, text: string) =>
    record('alice', 8, `${type},4,1,WRITE,UPDATE,TABLE,billing.cards,${text},<none>`);

  it('merges an OBJECT/SESSION twin with the same text only', () => {
    expect(rules(scan([update('OBJECT', 'UPDATE a'), update('SESSION', 'UPDATE a')]))).toEqual([
      ['human-dml', 'alice', 'UPDATE'],
      ['excluded', 'alice', 'UPDATE'],
    ]);
  });

  it('merges the repeats pgAudit writes for a table named twice (a self-join), not another class', () => {
    const read = (type: string, statement: string) =>
      record('alice', 8, `${type},5,1,READ,SELECT,TABLE,billing.cards,${statement},<none>`);
    const selfJoin = 'SELECT * FROM billing.cards a JOIN billing.cards b USING (id)';
    // pgaudit.log_relation: one record per reference; log_statement_once: later ones say so.
    expect(
      rules(
        scan([
          read('SESSION', selfJoin),
          read('SESSION', selfJoin),
          read('SESSION', '<previously logged>'),
        ]),
      ),
    ).toEqual([
      ['human-read', 'alice', 'SELECT'],
      ['excluded', 'alice', 'SELECT'],
      ['excluded', 'alice', 'SELECT'],
    ]);
    // With object auditing as well: OBJECT, SESSION, OBJECT, SESSION.
    expect(
      rules(
        scan([
          read('OBJECT', selfJoin),
          read('SESSION', selfJoin),
          read('OBJECT', selfJoin),
          read('SESSION', selfJoin),
        ]),
      ).map(([rule]) => rule),
    ).toEqual(['human-read', 'excluded', 'excluded', 'excluded']);
    // The same table read and written by one statement alerts on each class; a record of
    // another class is never taken for the twin of the first (the WRITE would be lost).
    const update = 'UPDATE billing.cards SET note = c.note FROM billing.cards c';
    expect(
      rules(
        scan([
          record('alice', 8, `OBJECT,6,1,READ,UPDATE,TABLE,billing.cards,${update},<none>`),
          record('alice', 8, `SESSION,6,1,WRITE,UPDATE,TABLE,billing.cards,${update},<none>`),
        ]),
      ).map(([rule]) => rule),
    ).toEqual(['human-read', 'human-dml']);
  });

  it('alerts when one statement id carries two texts, whichever comes first', () => {
    expect(
      rules(scan([update('SESSION', 'UPDATE decoy'), update('SESSION', 'UPDATE real')])),
    ).toEqual([
      ['human-dml', 'alice', 'UPDATE'],
      ['statement-id-conflict', 'alice', 'UPDATE'],
    ]);
    expect(rules(scan([update('OBJECT', 'UPDATE a'), update('SESSION', 'UPDATE b')]))).toEqual([
      ['human-dml', 'alice', 'UPDATE'],
      ['statement-id-conflict', 'alice', 'UPDATE'],
    ]);
  });

  it('a reused pid from another port is another session', () => {
    const other = update('SESSION', 'UPDATE other').replace('(37962)', '(40000)');
    expect(rules(scan([update('SESSION', 'UPDATE a'), other]))).toEqual([
      ['human-dml', 'alice', 'UPDATE'],
      ['human-dml', 'alice', 'UPDATE'],
    ]);
  });

  it('remembers the last 16 statement parts of a session, however many came before', () => {
    const statement = (id: number, text: string) =>
      record('alice', 8, `SESSION,${id},1,WRITE,UPDATE,TABLE,billing.cards,UPDATE ${text},<none>`);
    const forty = Array.from({ length: 40 }, (_, i) => statement(i + 1, `s${i + 1}`));
    // 25 is the oldest of the last 16 (25-40): another text under its id is a conflict;
    // 24 is forgotten, so another text under it is a new statement part.
    expect(rules(scan([...forty, statement(25, 'x'), statement(24, 'y')])).slice(40)).toEqual([
      ['statement-id-conflict', 'alice', 'UPDATE'],
      ['human-dml', 'alice', 'UPDATE'],
    ]);
  });

  it('a reused pid starts a session that knows none of the old one, and so does the old one back', () => {
    const at = (port: number, text: string) =>
      update('SESSION', `UPDATE ${text}`).replace('(37962)', `(${port})`);
    expect(
      rules(
        scan([
          at(37962, 'a'),
          at(40000, 'b'), // same pid and ids, another connection: no conflict
          at(40000, 'c'), // within that session: a conflict
          at(37962, 'd'), // the first connection's session was forgotten when the pid was reused
          at(37962, 'e'),
        ]),
      ).map(([rule]) => rule),
    ).toEqual([
      'human-dml',
      'human-dml',
      'statement-id-conflict',
      'human-dml',
      'statement-id-conflict',
    ]);
  });
});

describe('identities in the prefix', () => {
  const match = compileLogPrefix();

  it('marks a user/database split that could be read two ways, and keeps names byte for byte', () => {
    expect(match(`${prefix('app_svc@x', 1)}LOG:  x`)?.fields).toMatchObject({
      user: 'app_svc',
      database: 'x@appdb',
      identityAmbiguous: true,
    });
    expect(match(`${prefix('app_svc', 1, 'db@x')}LOG:  x`)?.fields.identityAmbiguous).toBe(true);
    expect(match(`${prefix('app_svc ', 1)}LOG:  x`)?.fields).toMatchObject({
      user: 'app_svc ',
      identityAmbiguous: undefined,
    });
    // An '@' further on in the message is not a second split.
    expect(
      match(`${prefix('alice', 1)}LOG:  AUDIT: SESSION,1,1,READ,SELECT,,,SELECT 'a@b',<none>`)
        ?.fields.identityAmbiguous,
    ).toBeUndefined();
    // Padded escapes are trimmed.
    expect(compileLogPrefix('%-10u|')('alice     |LOG:  x')?.fields.user).toBe('alice');
  });

  it('looks for another split only where a name of at most 63 characters can end', () => {
    const ambiguous = (user: string, database = 'appdb') =>
      match(`${prefix(user, 1, database)}LOG:  x`)?.fields.identityAmbiguous;
    // A second '@' 63 characters into the user value: the role "a@bb…b" (63) is possible.
    expect(ambiguous(`a@${'b'.repeat(61)}`)).toBe(true);
    // 64 characters in: no role is that long, so the first split is the only one.
    expect(ambiguous(`a@${'b'.repeat(62)}`)).toBeUndefined();
    // The same bound for the two-character literal after the database: "d:[2]:ee…e:[1]:".
    expect(ambiguous('u', `d:[2]:${'e'.repeat(57)}`)).toBe(true);
    expect(ambiguous('u', `d:[2]:${'e'.repeat(58)}`)).toBeUndefined();
  });

  it('alerts on ambiguous identities instead of excluding them as the service account', () => {
    const outcomes = scan([
      record('app_svc@x', 3, 'SESSION,1,1,READ,SELECT,,,SET x = 1,<none>'),
      record('app_svc@x', 3, 'SESSION,2,1,ROLE,GRANT,,,GRANT a TO b,<none>'),
      record('app_svc ', 4, 'SESSION,1,1,DDL,CREATE TABLE,TABLE,public.t,CREATE TABLE t (),<none>'),
      record('app_svc', 5, 'SESSION,1,1,DDL,CREATE TABLE,TABLE,public.u,CREATE TABLE u (),<none>'),
    ]);
    expect(
      outcomes.map((outcome) =>
        outcome.kind === 'verdict' && outcome.verdict.kind === 'alert'
          ? [outcome.verdict.alert.rule, outcome.verdict.alert.severity, outcome.event.user]
          : [outcome.kind === 'verdict' && outcome.verdict.kind],
      ),
    ).toEqual([
      ['ambiguous-identity', 'high', 'app_svc'],
      ['ambiguous-identity', 'critical', 'app_svc'],
      ['ddl', 'medium', 'app_svc '],
      ['excluded'],
    ]);
  });
});

describe('unreadable records', () => {
  it('alert as unreadable-audit-record naming user, database and pid', () => {
    const [outcome] = scan([record('alice', 42, 'SESSION,1,1,READ,SELECT,,,"SELECT \'cut')]);
    expect(outcome).toMatchObject({
      kind: 'verdict',
      verdict: {
        kind: 'alert',
        alert: {
          rule: 'unreadable-audit-record',
          severity: 'high',
          summary:
            'alice@appdb from 10.0.0.5 (pid 42): unreadable pgAudit record (pgAudit record is not valid CSV: unterminated quoted field)',
        },
      },
    });
  });
});

describe('csvlog and jsonlog', () => {
  const csvRow = (message: string, context = '') =>
    `2026-12-01 23:22:08.123 UTC,"alice","appdb",4273,"10.0.0.5:36646",674c.10b1,3,"SELECT",2026-12-01 23:22:07 UTC,3/7,0,LOG,00000,"${message.replace(/"/g, '""')}",,,,,"${context}",,,,"psql","client backend",,0`;

  it('reads a csvlog row spanning lines, with the CONTEXT column deciding forgery at once', () => {
    const body = 'AUDIT: SESSION,1,1,READ,SELECT,TABLE,public.items,"SELECT *\nFROM items",<none>';
    const text = [csvRow(body), csvRow(body.replace('1,1', '2,1'), 'PL/pgSQL function at RAISE')];
    const records = splitLogRecords(text.join('\n'), 'csvlog');
    expect(records).toHaveLength(2);
    const parse = createLogEntryParser({ logFormat: 'csvlog' });
    expect(parse(records[0]!)).toMatchObject({
      kind: 'audit',
      context: '',
      event: {
        timestamp: '2026-12-01 23:22:08.123 UTC',
        time: '2026-12-01T23:22:08.123Z',
        user: 'alice',
        database: 'appdb',
        pid: 4273,
        remoteHost: '10.0.0.5',
        remotePort: 36646,
        applicationName: 'psql',
        statement: 'SELECT *\nFROM items',
      },
    });
    const pipeline = new AccessAuditPipeline({ ...CONFIG, logFormat: 'csvlog' });
    const out = records.flatMap((row) => pipeline.push(row, undefined));
    expect(rules(out)).toEqual([
      ['human-read', 'alice', 'SELECT'],
      ['forged-audit-record', 'alice', 'SELECT'],
    ]);
  });

  it('reads jsonlog objects; a statement or CONTEXT field is never a record', () => {
    const line = (fields: Record<string, unknown>) =>
      JSON.stringify({
        timestamp: '2026-12-01 23:22:08.123 UTC',
        user: 'app_svc@x',
        dbname: 'appdb',
        pid: 9,
        remote_host: '10.0.0.5',
        remote_port: 4000,
        error_severity: 'LOG',
        ...fields,
      });
    const pipeline = new AccessAuditPipeline({ ...CONFIG, logFormat: 'jsonlog' });
    const out = [
      line({ message: 'AUDIT: SESSION,1,1,ROLE,GRANT,,,GRANT a TO b,<none>' }),
      line({
        error_severity: 'ERROR',
        message: 'syntax error',
        statement: 'AUDIT: SESSION,2,1,ROLE,GRANT,,,GRANT a TO b,<none>',
      }),
    ].flatMap((row) => pipeline.push(row, undefined));
    // Unambiguous: "app_svc@x" is not the service account app_svc.
    expect(rules(out)).toEqual([['privilege-change', 'app_svc@x', 'GRANT']]);
  });
});

describe('audit tampering and identity changes', () => {
  const event = (command: string, statement: string) => ({ command, statement });

  it('recognises every way to weaken the audit, outside literals and comments', () => {
    for (const statement of [
      "SET pgaudit.log = 'none'",
      "set session pgaudit.log_level to 'debug5'",
      'RESET pgaudit.log',
      "ALTER ROLE alice SET pgaudit.log = 'none'",
      'ALTER DATABASE appdb RESET "pgaudit".log',
      "SELECT set_config('pgaudit.log', 'none', false)",
      'ALTER SYSTEM RESET ALL',
      'SELECT pg_reload_conf()',
      'DROP EXTENSION IF EXISTS pgaudit CASCADE',
      "SELECT pg_drop_replication_slot('x')",
      'DROP PUBLICATION p',
      'DO $$BEGIN PERFORM pg_reload_conf(); END$$',
      // Spellings PostgreSQL reads as the same setting or call.
      "SET /* x */ pgaudit /* y */ . /* z */ log = 'misc'",
      'SET "pgaudit"."log" = \'misc\'',
      'SET U&"\\0070gaudit".log = \'misc\'',
      "DO 'BEGIN PERFORM pg_reload_conf(); END'",
      "SELECT 'a\\', pg_reload_conf(), ''", // with standard_conforming_strings = off
      'ALTER/**/SYSTEM SET x = 1',
      // set_config of a name the text does not spell out.
      "SELECT set_config('pg' || 'audit.log', 'misc', false)",
      "SELECT set_config(E'\\x70gaudit.log', 'misc', false)",
      'SELECT set_config($1, $2, false)',
      "SELECT pg_catalog.set_config($$PGAUDIT.log$$, 'misc', false)",
      // Every per-role or per-database setting at once; settings that hide or disguise records.
      'ALTER ROLE alice RESET ALL',
      'SELECT 1; ALTER USER alice RESET ALL',
      'GRANT SET, ALTER SYSTEM ON PARAMETER pgaudit.log_level TO ops',
      'SET "PGAUDIT".log = \'misc\'',
      'ALTER DATABASE appdb RESET ALL',
      'SET log_error_verbosity = terse',
      "SET lc_messages = 'de_DE.UTF-8'",
      "ALTER ROLE alice SET log_min_messages = 'panic'",
    ])
      expect(auditTamperingOf(event('X', statement)), statement).toBeDefined();
    for (const statement of [
      "SELECT 'SET pgaudit.log = none'",
      "INSERT INTO notes VALUES ('alter system')",
      'SELECT 1 -- pg_reload_conf()',
      "SET application_name = 'pgaudit'",
      'DROP EXTENSION hstore',
      'RESET ALL',
      'GRANT SET ON PARAMETER work_mem TO ops',
      "SELECT set_config('search_path', 'app', false)",
      "SELECT set_config('app.user_id', $1, true)",
      "UPDATE notes SET body = 'pgaudit' WHERE id = 1",
      "SELECT 'set_config(x)' AS x",
    ])
      expect(auditTamperingOf(event('X', statement)), statement).toBeUndefined();
  });

  it('alerts a name whose Unicode escapes it cannot read, wherever it stands', () => {
    // A UESCAPE clause: the name could be any function's, pg_reload_conf's included.
    for (const statement of [
      `SELECT U&"!0070g_reload_conf" UESCAPE '!' ()`,
      `SELECT 1; DO $$BEGIN PERFORM U&"!0070g_reload_conf" UESCAPE '!' (); END$$`,
    ])
      expect(auditTamperingOf(event('X', statement)), statement).toBe(
        'Unicode-escaped name with unreadable escapes',
      );
  });

  it('reads the new identity of SET ROLE and SET SESSION AUTHORIZATION', () => {
    expect(identityChangeOf(event('SET', 'SET ROLE admin'))).toBe('admin');
    expect(identityChangeOf(event('SET', 'set local role "Ops Team"'))).toBe('Ops Team');
    expect(identityChangeOf(event('SET', "SET SESSION AUTHORIZATION 'bob'"))).toBe('bob');
    expect(identityChangeOf(event('RESET', 'RESET ROLE'))).toBe('DEFAULT');
    expect(identityChangeOf(event('SET', 'SET role = none'))).toBe('NONE');
    expect(identityChangeOf(event('SET', 'SET search_path = x'))).toBeUndefined();
  });

  it('audit-tampering alerts for service accounts too; identity-change only for humans', () => {
    const outcomes = scan([
      record('app_svc', 5, "SESSION,1,1,MISC,SET,,,SET pgaudit.log = 'none',<none>"),
      record('app_svc', 5, 'SESSION,2,1,MISC,SET,,,SET ROLE admin,<none>'),
      record('alice', 6, 'SESSION,1,1,MISC,SET,,,SET ROLE admin,<none>'),
    ]);
    expect(rules(outcomes)).toEqual([
      ['audit-tampering', 'app_svc', 'SET'],
      ['noise', 'app_svc', 'SET'],
      ['identity-change', 'alice', 'SET'],
    ]);
  });

  it('judges tampering before history silencing, one reading of the text for both', () => {
    // Each passes both hints ('publication', a backslash): the text is read once and
    // asked both questions, tampering first, silencing only for a human.
    const summaries = (user: string, statement: string) =>
      scan([record(user, 7, `SESSION,1,1,DDL,ALTER PUBLICATION,,,"${statement}",<none>`)]).map(
        (outcome) =>
          outcome.kind === 'verdict' && outcome.verdict.kind === 'alert'
            ? `${outcome.verdict.alert.rule}: ${outcome.verdict.alert.summary.replace(/^[^:]+: /, '')}`
            : outcome.kind === 'verdict'
              ? outcome.verdict.kind
              : 'unreadable',
      );
    const both = 'ALTER PUBLICATION p DROP TABLE t; DROP PUBLICATION q';
    expect(summaries('alice', both)).toEqual([
      'audit-tampering: ALTER PUBLICATION (DDL): publication dropped',
    ]);
    expect(summaries('app_svc', both)).toEqual([
      'audit-tampering: ALTER PUBLICATION (DDL): publication dropped',
    ]);
    const escaped = "ALTER PUBLICATION p SET TABLE t WHERE (v <> E'a\\\\b')";
    expect(summaries('alice', escaped)).toEqual([
      'audit-tampering: ALTER PUBLICATION (DDL): publication altered',
    ]);
    expect(summaries('app_svc', escaped)).toEqual(['excluded']);
    const harmless = "SELECT note FROM publication_log WHERE note <> E'a\\\\b'";
    // Neither: the DDL rule, as for any other ALTER PUBLICATION-class record.
    expect(summaries('alice', harmless)).toEqual(['ddl: ALTER PUBLICATION (DDL)']);
  });
});

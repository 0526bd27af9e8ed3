import type pg from 'pg';
import { setupPgaudit } from '../../src/access-audit';
import { parseAccessAuditConfig } from '../../src/config/access-audit';
import { withClient } from '../support/databases';
import { liveAuditLog, ruleOf } from './support/live-audit-log';
import { describeWithPgaudit } from './support/live-suite';
import type { PgauditServer } from './support/pgaudit-server';

/**
 * An insider's ways to silence or fool the access audit without a tamper alert, on a
 * real server's pgAudit output. Each attempt keeps MISC logged so its own record
 * exists (a change to `'none'` is not logged at all: README, "Limit").
 */
const DB = 'appdb';
const config = parseAccessAuditConfig({
  auditedRoles: ['dba', 'mallory'],
  serviceAccounts: ['app_svc'],
  alerts: { digestThreshold: 1000 },
});

/** Each in a fresh session of the superuser DBA. */
const SPELLED_SETS = [
  // Comments and spaces around the dot: PostgreSQL still reads pgaudit.log.
  "SET /* x */ pgaudit /* y */ . /* z */ log = 'misc'",
  // A Unicode-escaped identifier: \0070 is p.
  'SET U&"\\0070gaudit".log = \'misc\'',
  // set_config with a name the statement text does not spell out.
  "SELECT set_config('pg' || 'audit.log', 'misc', false)",
  "SELECT set_config('pg' || 'audit.log', 'misc', false) FROM pg_catalog.pg_class LIMIT 1",
  // Removes every per-role / per-database setting, pgaudit.log included.
  'ALTER ROLE mallory RESET ALL',
  `ALTER DATABASE ${DB} RESET ALL`,
];
/** Gives a role that is not a superuser the right to silence the audit (PostgreSQL 15+). */
const GRANT_SET = 'GRANT SET ON PARAMETER pgaudit.log TO mallory';
/** Drops the CONTEXT line the forgery check relies on; a forged record follows it. */
const TERSE = 'SET log_error_verbosity = terse';
/** The name as a bind parameter (extended protocol): the text shows only $1. */
const BOUND_SET_CONFIG = 'SELECT set_config($1, $2, false)';
/** Statements of one session: a prepared statement takes the name at EXECUTE. */
const PREPARED = [
  'PREPARE quiet(text) AS SELECT set_config($1, $2, false)',
  "EXECUTE quiet('pgaudit.log', 'misc')",
];
/** Reads of data no relation record names, written to pass for catalog browsing or a health check. */
const HIDDEN_READS = [
  'SELECT lo_get(4242)',
  "SELECT convert_from(lo_get(4242), 'UTF8') FROM pg_catalog.pg_class LIMIT 1",
  "SELECT pg_read_file('PG_VERSION') FROM pg_catalog.pg_class LIMIT 1",
  "SELECT * FROM pg_catalog.pg_read_file('PG_VERSION')",
  // Data in relations of catalog schemas: large objects' pages, a table a superuser
  // put in information_schema, a table's TOAST chunks.
  'SELECT data FROM pg_catalog.pg_largeobject WHERE loid = 4242',
  'SELECT * FROM information_schema.stash',
  'SELECT chunk_data FROM pg_toast.pg_toast_of_cards',
];
/** What tools send: stays noise. */
const TOOL_NOISE = [
  "SELECT set_config('bytea_output', 'hex', false) FROM pg_catalog.pg_settings WHERE name = 'bytea_output'",
  "SELECT c.relname FROM pg_catalog.pg_class c WHERE c.relname = 'cards'",
  'SELECT version()',
];
const MALLORY_WITNESS = "UPDATE billing.cards SET note = 'after reset' WHERE id = 1";

/** Run as the superuser in the new database, before the workload. */
async function prepare(admin: pg.Client): Promise<void> {
  await admin.query('CREATE SCHEMA billing');
  await admin.query('CREATE TABLE billing.cards (id int PRIMARY KEY, note text)');
  await admin.query("INSERT INTO billing.cards VALUES (1, 'card')");
  await admin.query('GRANT USAGE ON SCHEMA billing TO mallory');
  await admin.query('GRANT ALL ON billing.cards TO mallory');
  await admin.query("SELECT lo_from_bytea(4242, 'card number 4111')");
  await admin.query('GRANT SELECT ON LARGE OBJECT 4242 TO mallory');
  await admin.query('CREATE TABLE information_schema.stash AS SELECT * FROM billing.cards');
  // A stable name for billing.cards' TOAST table, so the statement can be listed.
  await admin.query('SET allow_system_table_mods = on');
  const { rows } = await admin.query<{ toast: string }>(
    "SELECT reltoastrelid::regclass::text AS toast FROM pg_class WHERE oid = 'billing.cards'::regclass",
  );
  await admin.query(`ALTER TABLE ${rows[0]!.toast} RENAME TO pg_toast_of_cards`);
  await setupPgaudit(admin, config);
}

async function runWorkload(server: PgauditServer): Promise<void> {
  const dba = server.userUrl('dba', DB);
  for (const statement of SPELLED_SETS) await withClient(dba, (client) => client.query(statement));
  await withClient(dba, (client) => client.query(BOUND_SET_CONFIG, ['pgaudit.log', 'misc']));
  await withClient(dba, (client) => client.query(GRANT_SET));
  await withClient(dba, async (client) => {
    for (const statement of PREPARED) await client.query(statement);
  });
  // With log_error_verbosity = terse a RAISE LOG forgery has no CONTEXT line.
  await withClient(dba, async (client) => {
    await client.query(TERSE);
    await client.query(
      "DO $$BEGIN RAISE LOG 'AUDIT: SESSION,9,1,MISC,SET,,,SET application_name = x,<none>'; END$$",
    );
  });
  // mallory's settings were reset above: her next session's UPDATE leaves no record.
  await withClient(server.userUrl('mallory', DB), (client) => client.query(MALLORY_WITNESS));
  await withClient(server.adminUrl(DB), (admin) => setupPgaudit(admin, config));
  await withClient(server.userUrl('mallory', DB), async (client) => {
    for (const statement of HIDDEN_READS.slice(0, 2)) await client.query(statement);
  });
  await withClient(dba, async (client) => {
    for (const statement of [...HIDDEN_READS.slice(2), ...TOOL_NOISE])
      await client.query(statement);
  });
}

describeWithPgaudit('silencing the access audit on a live server', (start) => {
  const live = liveAuditLog(start, {
    server: () => ({ settings: { 'pgaudit.log': 'ddl,role' } }),
    config,
    database: DB,
    roles: { logins: ['mallory', 'app_svc'], superusers: ['dba'] },
    prepare,
    workload: runWorkload,
  });

  const rulesFor = (statement: string) =>
    live
      .outcomes()
      .filter(({ event }) => event.statement === statement)
      .map((o) => ruleOf(o.verdict));

  it('the attacks work on the server: a reset role is no longer audited', () => {
    expect(live.log()).not.toContain(MALLORY_WITNESS);
    // Without CONTEXT the forged record cannot be told from pgAudit's.
    expect(live.log()).toMatch(
      /dba@appdb:\[\d+\]:LOG: {2}AUDIT: SESSION,9,1,MISC,SET,,,SET application_name = x,<none>\n(?!.*CONTEXT)/,
    );
  });

  it.each(SPELLED_SETS)('alerts audit-tampering for %s', (statement) => {
    expect(rulesFor(statement)).toEqual(['audit-tampering']);
  });

  it('alerts audit-tampering (not only privilege-change) for GRANT SET ON PARAMETER pgaudit.log', () => {
    expect(rulesFor(GRANT_SET)).toEqual(['audit-tampering']);
  });

  it('alerts audit-tampering for log_error_verbosity, which would let RAISE LOG pass for pgAudit', () => {
    expect(rulesFor(TERSE)).toEqual(['audit-tampering']);
  });

  it('alerts audit-tampering for set_config with the name as a bind parameter or in a prepared statement', () => {
    expect(rulesFor(BOUND_SET_CONFIG)).toEqual(['audit-tampering']);
    // pgAudit logs the PREPARE text (READ, SELECT) when the statement runs.
    expect(rulesFor(PREPARED[0]!).length).toBeGreaterThan(0);
    expect(new Set(rulesFor(PREPARED[0]!))).toEqual(new Set(['audit-tampering']));
  });

  it('names what was changed', () => {
    const summaries = live
      .outcomes()
      .flatMap(({ verdict }) =>
        verdict.kind === 'alert' && verdict.alert.rule === 'audit-tampering'
          ? [verdict.alert.summary.replace(/^.*\): /, '')]
          : [],
      );
    expect(new Set(summaries)).toEqual(
      new Set([
        'pgaudit setting changed',
        'setting with a computed name changed (set_config)',
        'role or database settings reset (RESET ALL)',
        'log setting changed (log_error_verbosity)',
        'right to change a setting granted: pgaudit setting changed',
      ]),
    );
  });

  it.each(HIDDEN_READS)('alerts human-read for %s, never noise', (statement) => {
    const rules = rulesFor(statement);
    expect(rules.length).toBeGreaterThan(0);
    expect(new Set(rules)).toEqual(new Set(['human-read']));
  });

  it.each(TOOL_NOISE)('keeps %s as noise', (statement) => {
    const rules = rulesFor(statement);
    expect(rules.length).toBeGreaterThan(0);
    expect(new Set(rules)).toEqual(new Set(['noise']));
  });
});

import type pg from 'pg';
import { setupPgaudit } from '../../src/access-audit';
import { parseAccessAuditConfig } from '../../src/config/access-audit';
import { withClient } from '../support/databases';
import { liveAuditLog } from './support/live-audit-log';
import { describeWithPgaudit } from './support/live-suite';
import type { PgauditServer } from './support/pgaudit-server';

/**
 * Silencing the change history at its source, on a real server's pgAudit output: what
 * stops changes reaching the engine (or DMS) without an error anywhere. A human's
 * `ALTER PUBLICATION` alerted only as `ddl` (medium) and `pg_replication_slot_advance`,
 * a SELECT, was tool noise; both now alert `audit-tampering` (critical), as
 * `DROP PUBLICATION` and `pg_drop_replication_slot` did. The kit's own service login
 * resets its publication at every start: excluded, not alerted.
 */
const DB = 'appdb';
const config = parseAccessAuditConfig({
  auditedRoles: ['dba'],
  serviceAccounts: ['engine_svc'],
  alerts: { digestThreshold: 1000 },
});

/** What a human runs to silence history, and what the alert names. */
const SILENCING: readonly (readonly [string, string])[] = [
  ['ALTER PUBLICATION kitpub SET TABLE public.items WHERE (id < 0)', 'publication altered'],
  ["ALTER PUBLICATION kitpub SET (publish = 'insert')", 'publication altered'],
  ['ALTER PUBLICATION kitpub DROP TABLE public.items', 'publication altered'],
  [
    "SELECT pg_replication_slot_advance('kitslot', pg_current_wal_lsn())",
    'replication slot advanced',
  ],
  [
    "DO $$BEGIN PERFORM pg_replication_slot_advance('kitslot', pg_current_wal_lsn()); END$$",
    'replication slot advanced',
  ],
  ['DROP PUBLICATION otherpub', 'publication dropped'],
  ["SELECT pg_drop_replication_slot('otherslot')", 'replication slot dropped'],
];
/**
 * Not history silencing, so their usual rule: a table without a replica identity makes
 * the source refuse its updates and deletes (loudly); the kit subscribes to nothing;
 * replica mode leaves logical decoding and the kit's `ENABLE ALWAYS` triggers as they were.
 */
const NOT_SILENCING: readonly (readonly [string, string])[] = [
  ['ALTER TABLE public.items REPLICA IDENTITY NOTHING', 'ddl'],
  ['ALTER SUBSCRIPTION kitsub DISABLE', 'ddl'],
  ['SET session_replication_role = replica', 'noise'],
];
/** What the engine's source login runs at every start. */
const SERVICE = [
  'ALTER PUBLICATION kitpub SET TABLE public.items',
  "ALTER PUBLICATION kitpub SET (publish = 'insert, update, delete, truncate', publish_via_partition_root = true)",
];

/** Run as the superuser in the new database, before the workload. */
async function prepare(admin: pg.Client): Promise<void> {
  await admin.query('CREATE TABLE public.items (id int PRIMARY KEY, v text)');
  await admin.query('CREATE PUBLICATION kitpub FOR TABLE public.items');
  await admin.query('CREATE PUBLICATION otherpub FOR TABLE public.items');
  await admin.query("SELECT pg_create_logical_replication_slot('kitslot', 'pgoutput')");
  await admin.query("SELECT pg_create_logical_replication_slot('otherslot', 'pgoutput')");
  await admin.query(
    `CREATE SUBSCRIPTION kitsub CONNECTION 'dbname=${DB}' PUBLICATION kitpub WITH (connect = false)`,
  );
  await admin.query('ALTER TABLE public.items OWNER TO engine_svc');
  await admin.query('ALTER PUBLICATION kitpub OWNER TO engine_svc');
  await setupPgaudit(admin, config);
}

async function runWorkload(server: PgauditServer): Promise<void> {
  await withClient(server.userUrl('engine_svc', DB), async (client) => {
    for (const statement of SERVICE) await client.query(statement);
  });
  await withClient(server.userUrl('dba', DB), async (client) => {
    for (const [statement] of [...SILENCING, ...NOT_SILENCING]) await client.query(statement);
  });
}

describeWithPgaudit('silencing the change history at its source, on a live server', (start) => {
  const live = liveAuditLog(start, {
    server: () => ({ settings: { wal_level: 'logical' } }),
    config,
    database: DB,
    roles: { logins: ['engine_svc'], superusers: ['dba'] },
    prepare,
    workload: runWorkload,
  });

  /** Each record's rule (or verdict kind) and what it names, for one statement. */
  const verdictsFor = (statement: string) =>
    live
      .outcomes()
      .filter(({ event }) => event.statement === statement)
      .map(({ verdict }) =>
        verdict.kind === 'alert'
          ? [
              verdict.alert.rule,
              verdict.alert.severity,
              verdict.alert.summary.replace(/^.*\): /, ''),
            ]
          : [verdict.kind],
      );

  it.each(SILENCING)('alerts audit-tampering (critical) for %s: %s', (statement, what) => {
    const found = verdictsFor(statement);
    expect(found.length).toBeGreaterThan(0);
    for (const verdict of found) expect(verdict).toEqual(['audit-tampering', 'critical', what]);
  });

  it.each(NOT_SILENCING)('leaves %s to its usual rule (%s)', (statement, rule) => {
    const found = verdictsFor(statement);
    expect(found.length).toBeGreaterThan(0);
    for (const verdict of found) expect(verdict[0]).toBe(rule);
  });

  it.each(SERVICE)('excludes the service account’s %s', (statement) => {
    expect(verdictsFor(statement)).toEqual([['excluded']]);
  });
});

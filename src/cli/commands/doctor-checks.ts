import type pg from 'pg';
import { KIT_MIGRATIONS } from '../../../migrations/target';
import { checkPgaudit } from '../../access-audit/setup';
import type { AuditTrailConfig } from '../../config';
import { checkSource, publicationNarrowing, SourceSetupError } from '../../engine/source-setup';
import {
  checkSearchPathCreate,
  checkSourceDependencies,
  checkTargetDependencies,
} from './doctor-trust-checks';
import { captureTriggerProblems } from '../../verify/capture-triggers';
import { attachedRowsWarnings, partitionListProblems } from '../../migrate/partitions';
import { quoteIdent } from '../../postgres/identifiers';
import { stagingTableName } from '../../staging/header-columns';
import {
  ddlArtifactsSchema,
  ddlCaptureScript,
  DMS_DDL_AUDIT_TABLE,
  DMS_DDL_EVENT_TRIGGER,
  DMS_DDL_FUNCTION,
  kitLogins,
} from '../../trust/logins';

// The checks `audit-trail doctor` runs on each side, loaded when it runs.

/** One pre-flight check's outcome. */
export interface DoctorCheck {
  /** `source` or `target`, then what was checked. */
  readonly side: 'source' | 'target';
  readonly check: string;
  /** `fail` makes `doctor` exit 1; `warn` is worth knowing but does not. */
  readonly status: 'ok' | 'warn' | 'fail';
  readonly detail: string;
  /** What to do about a warning or failure. */
  readonly remedy?: string;
}

/** Oldest PostgreSQL major the kit (and DMS) support as a source or target. */
const MIN_MAJOR = 13;
/** Retained WAL worth a warning on an inactive slot. */
const RETAINED_WAL_WARN_BYTES = 1024 ** 3;
/** Clock difference worth a warning: commit times come from the source's clock. */
const CLOCK_SKEW_WARN_MS = 5_000;

export type Add = (check: Omit<DoctorCheck, 'side'>) => void;

async function one<T>(client: pg.Client, text: string, values: unknown[] = []): Promise<T> {
  const { rows } = await client.query(text, values);
  return rows[0] as T;
}

async function checkVersion(client: pg.Client, add: Add): Promise<void> {
  const { server_version_num: num, server_version: text } = await one<{
    server_version_num: string;
    server_version: string;
  }>(
    client,
    "SELECT current_setting('server_version_num') AS server_version_num, version() AS server_version",
  );
  const major = Math.floor(Number(num) / 10000);
  add(
    major >= MIN_MAJOR
      ? { check: 'version', status: 'ok', detail: text }
      : {
          check: 'version',
          status: 'fail',
          detail: `${text}: older than PostgreSQL ${MIN_MAJOR}`,
          remedy: `upgrade to PostgreSQL ${MIN_MAJOR} or later`,
        },
  );
}

async function checkTls(client: pg.Client, url: string, add: Add): Promise<void> {
  const { ssl } = await one<{ ssl: boolean | null }>(
    client,
    'SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()',
  );
  const host = new URL(url).hostname;
  const local = host === '' || host === 'localhost' || host === '127.0.0.1' || host === '::1';
  add(
    ssl
      ? { check: 'tls', status: 'ok', detail: 'this connection is encrypted' }
      : {
          check: 'tls',
          status: local ? 'ok' : 'warn',
          detail: `this connection is not encrypted${local ? ' (loopback)' : ''}`,
          ...(local ? {} : { remedy: 'add sslmode=verify-full to the URL' }),
        },
  );
}

export async function checkSourceSide(
  client: pg.Client,
  url: string,
  config: AuditTrailConfig,
  slot: string | undefined,
  add: Add,
): Promise<void> {
  await checkVersion(client, add);
  await checkTls(client, url, add);
  const settings = await one<{
    wal_level: string;
    wal_sender_timeout: string;
    max_slot_wal_keep_size: string;
    max_replication_slots: string;
    slots_used: string;
    can_replicate: boolean;
    now_ms: string;
  }>(
    client,
    `SELECT current_setting('wal_level') AS wal_level,
            (SELECT setting FROM pg_settings WHERE name = 'wal_sender_timeout') AS wal_sender_timeout,
            (SELECT setting FROM pg_settings WHERE name = 'max_slot_wal_keep_size') AS max_slot_wal_keep_size,
            current_setting('max_replication_slots') AS max_replication_slots,
            (SELECT count(*) FROM pg_replication_slots)::text AS slots_used,
            (SELECT rolsuper OR rolreplication FROM pg_roles WHERE rolname = current_user)
              OR (EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'rds_replication')
                  AND pg_catalog.pg_has_role('rds_replication', 'member')) AS can_replicate,
            (extract(epoch FROM clock_timestamp()) * 1000)::bigint::text AS now_ms`,
  );
  const skew = Number(settings.now_ms) - Date.now();
  add(
    settings.wal_level === 'logical'
      ? { check: 'wal_level', status: 'ok', detail: 'logical' }
      : {
          check: 'wal_level',
          status: 'fail',
          detail: `is "${settings.wal_level}"`,
          remedy:
            'self-managed: ALTER SYSTEM SET wal_level = logical and restart; RDS/Aurora: rds.logical_replication=1 and reboot',
        },
  );
  add(
    settings.can_replicate
      ? { check: 'replication privilege', status: 'ok', detail: 'the role may replicate' }
      : {
          check: 'replication privilege',
          status: 'fail',
          detail: 'the role has neither REPLICATION nor rds_replication',
          remedy: 'ALTER ROLE ... REPLICATION (RDS/Aurora: GRANT rds_replication TO ...)',
        },
  );
  const timeout = Number(settings.wal_sender_timeout);
  add(
    timeout === 0 || timeout >= 10_000
      ? { check: 'wal_sender_timeout', status: 'ok', detail: `${timeout} ms` }
      : {
          check: 'wal_sender_timeout',
          status: 'warn',
          detail: `${timeout} ms`,
          remedy: 'set it to 0 or at least 10000 ms (DMS requirement)',
        },
  );
  add(
    Number(settings.max_slot_wal_keep_size) >= 0
      ? {
          check: 'max_slot_wal_keep_size',
          status: 'ok',
          detail: `${settings.max_slot_wal_keep_size} MB`,
        }
      : {
          check: 'max_slot_wal_keep_size',
          status: 'warn',
          detail: 'unlimited: a stalled slot can fill the disk',
          remedy: 'set max_slot_wal_keep_size to bound retained WAL',
        },
  );
  const free = Number(settings.max_replication_slots) - Number(settings.slots_used);
  add(
    free > 0 || (slot !== undefined && (await slotRow(client, slot)) !== undefined)
      ? {
          check: 'replication slots',
          status: 'ok',
          detail: `${settings.slots_used} of ${settings.max_replication_slots} used`,
        }
      : {
          check: 'replication slots',
          status: 'fail',
          detail: `all ${settings.max_replication_slots} in use`,
          remedy: 'raise max_replication_slots or drop an unused slot (audit-trail slot drop)',
        },
  );
  add(
    Math.abs(skew) <= CLOCK_SKEW_WARN_MS
      ? {
          check: 'clock',
          status: 'ok',
          detail: `within ${CLOCK_SKEW_WARN_MS / 1000} s of this machine`,
        }
      : {
          check: 'clock',
          status: 'warn',
          detail: `${(skew / 1000).toFixed(1)} s from this machine's clock`,
          remedy: 'check NTP: commit times in the history come from the source clock',
        },
  );
  if (settings.wal_level === 'logical') {
    try {
      await checkSource(client, config.tables);
      add({
        check: 'audited tables',
        status: 'ok',
        detail: `${config.tables.length} tables, each with a primary key, publishable`,
      });
    } catch (error) {
      if (!(error instanceof SourceSetupError)) throw error;
      add({ check: 'audited tables', status: 'fail', detail: error.message });
    }
  }
  await checkPartitionLists(client, config, add);
  await checkAttachedRows(client, config, add);
  // DMS (a `deployment` section) captures DDL through these; the local engine needs none.
  if (config.deployment !== undefined) await checkDmsDdlCapture(client, config, add);
  await checkSourceDependencies(client, config, add);
  await checkSearchPathCreate(client, config, 'source', add);
  if (slot !== undefined) await checkPublication(client, slot, add);
  for (const row of await slotRows(client)) {
    const retained = Number(row.retained_bytes ?? 0);
    const mine = row.slot_name === slot;
    const name = `slot ${row.slot_name}${mine ? ' (the engine’s)' : ''}`;
    if (row.wal_status === 'lost')
      add({
        check: name,
        status: 'fail',
        detail: 'its WAL is gone (wal_status lost)',
        remedy: 'drop it; a consumer must reload',
      });
    else if (!row.active && retained >= RETAINED_WAL_WARN_BYTES)
      add({
        check: name,
        status: 'warn',
        detail: `inactive, retaining ${formatBytes(retained)} of WAL`,
        remedy: 'start its consumer, or drop it (audit-trail slot drop)',
      });
    else
      add({
        check: name,
        status: 'ok',
        detail: `${row.active ? 'active' : 'inactive'}, ${formatBytes(retained)} behind`,
      });
  }
  if (config.accessAudit !== undefined) {
    for (const result of await checkPgaudit(client, config.accessAudit))
      add({
        check: `pgaudit ${result.item}`,
        status: result.ok ? 'ok' : 'fail',
        detail: result.detail,
        ...(result.remedy === undefined ? {} : { remedy: result.remedy }),
      });
  }
}

/**
 * The engine's publication (named as its slot) must publish every change of its tables:
 * a row filter, a column list or an operation left out means changes are never sent, and
 * the engine refuses to start on it (`PUBLICATION_NARROWED`).
 */
async function checkPublication(client: pg.Client, publication: string, add: Add): Promise<void> {
  const problems = await publicationNarrowing(client, publication);
  if (problems.length === 0) return;
  add({
    check: `publication ${publication}`,
    status: 'fail',
    detail: `publishes less than every change: ${problems.join('; ')}`,
    remedy:
      "changes written meanwhile were never sent: put it back (the engine's PUBLICATION_NARROWED " +
      'hint has the statements), then audit-trail verify and reload the tables it reports',
  });
}

interface SlotRow {
  readonly slot_name: string;
  readonly active: boolean;
  readonly wal_status: string | null;
  readonly retained_bytes: string | null;
}

/**
 * A partition attached after the last deploy is not in the DMS mapping: its changes are
 * never captured. Run `doctor` after partition maintenance (or on a schedule) to find it.
 */
async function checkPartitionLists(
  client: pg.Client,
  config: AuditTrailConfig,
  add: Add,
): Promise<void> {
  const problems = await partitionListProblems(
    async <Row>(text: string, values: readonly unknown[]) =>
      (await client.query(text, [...values])).rows as Row[],
    config.tables,
  );
  const partitioned = config.tables.filter((table) => table.partitions !== undefined).length;
  if (partitioned === 0 && problems.length === 0) return;
  add(
    problems.length === 0
      ? {
          check: 'partitions (DMS mapping)',
          status: 'ok',
          detail: `${partitioned} partitioned tables list every leaf partition`,
        }
      : {
          check: 'partitions (DMS mapping)',
          status: 'fail',
          detail: problems.join('; '),
          remedy:
            'list exactly the leaf partitions in tables[].partitions and redeploy the DMS task',
        },
  );
}

/**
 * On a PostgreSQL 13 or 14 source, the rows a table holds when it is attached as a
 * partition reach no pipeline: said up front, before a partition is attached.
 */
async function checkAttachedRows(
  client: pg.Client,
  config: AuditTrailConfig,
  add: Add,
): Promise<void> {
  const warnings = await attachedRowsWarnings(
    async <Row>(text: string, values: readonly unknown[]) =>
      (await client.query(text, [...values])).rows as Row[],
    config.tables,
  );
  for (const warning of warnings)
    add({
      check: 'attached partitions',
      status: 'warn',
      detail: warning,
      remedy: 'create partitions empty; after attaching a table with rows, run audit-trail verify',
    });
}

async function slotRows(client: pg.Client): Promise<SlotRow[]> {
  const { rows } = await client.query<SlotRow>(
    `SELECT slot_name, active, wal_status,
            pg_catalog.pg_wal_lsn_diff(pg_catalog.pg_current_wal_lsn(), restart_lsn)::bigint::text AS retained_bytes
       FROM pg_replication_slots WHERE slot_type = 'logical' ORDER BY slot_name`,
  );
  return rows;
}

async function slotRow(client: pg.Client, slot: string): Promise<SlotRow | undefined> {
  return (await slotRows(client)).find((row) => row.slot_name === slot);
}

function formatBytes(bytes: number): string {
  if (bytes < 1024 * 1024) return `${bytes} B`;
  if (bytes < 1024 ** 3) return `${(bytes / 1024 ** 2).toFixed(1)} MB`;
  return `${(bytes / 1024 ** 3).toFixed(1)} GB`;
}

export async function checkTargetSide(
  client: pg.Client,
  url: string,
  config: AuditTrailConfig,
  add: Add,
): Promise<void> {
  await checkVersion(client, add);
  await checkTls(client, url, add);
  const schema = config.auditSchema;
  const installed = await one<{ migrations: boolean; registry: boolean }>(
    client,
    `SELECT pg_catalog.to_regclass($1) IS NOT NULL AS migrations,
            pg_catalog.to_regclass($2) IS NOT NULL AS registry`,
    [`${quoteIdent(schema)}.kysely_migration`, `${quoteIdent(schema)}.audited_table`],
  );
  if (!installed.migrations || !installed.registry) {
    add({
      check: 'kit schema',
      status: 'fail',
      detail: `no kit installed in schema ${schema}`,
      remedy: 'run audit-trail migrate',
    });
    return;
  }
  const { rows } = await client.query<{ name: string }>(
    `SELECT name FROM ${quoteIdent(schema)}.kysely_migration`,
  );
  const applied = new Set(rows.map((row) => row.name));
  const missing = KIT_MIGRATIONS.map((m) => m.name).filter((name) => !applied.has(name));
  add(
    missing.length === 0
      ? {
          check: 'kit schema',
          status: 'ok',
          detail: `${KIT_MIGRATIONS.length} kit migrations applied`,
        }
      : {
          check: 'kit schema',
          status: 'fail',
          detail: `migrations not applied: ${missing.join(', ')}`,
          remedy: 'run audit-trail migrate',
        },
  );
  const registered = await client.query<{ schema: string; table: string }>(
    `SELECT source_schema AS schema, source_table AS "table" FROM ${quoteIdent(schema)}.audited_table`,
  );
  // Keyed by both names apart: "a"."b.c" and "a.b"."c" are two tables.
  const tableKey = (table: { readonly schema: string; readonly table: string }) =>
    JSON.stringify([table.schema, table.table]);
  const known = new Set(registered.rows.map(tableKey));
  const unregistered = config.tables
    .filter((table) => !known.has(tableKey(table)))
    .map((table) => `${table.schema}.${table.table}`);
  add(
    unregistered.length === 0
      ? {
          check: 'staging tables',
          status: 'ok',
          detail: `every configured table has staging and triggers`,
        }
      : {
          check: 'staging tables',
          status: 'fail',
          detail: `not installed for ${unregistered.join(', ')}`,
          remedy: 'run audit-trail migrate',
        },
  );
  await checkCaptureTriggers(
    client,
    config,
    config.tables.filter((table) => known.has(tableKey(table))),
    add,
  );
  await checkTargetDependencies(client, config, add);
  await checkSearchPathCreate(client, config, 'target', add);
}

/**
 * The capture triggers of each installed staging table, as `verify` checks them
 * (`captureTriggerProblems`): one missing, disabled, or firing only while
 * session_replication_role is origin turns none of DMS's writes into history, and
 * nothing else says so. A FAIL per trigger, each line with its fix.
 */
async function checkCaptureTriggers(
  client: pg.Client,
  config: AuditTrailConfig,
  installed: AuditTrailConfig['tables'],
  add: Add,
): Promise<void> {
  const problems: string[] = [];
  for (const table of installed)
    problems.push(
      ...(await captureTriggerProblems(client, config.auditSchema, stagingTableName(table.table))),
    );
  if (problems.length === 0)
    add({
      check: 'capture triggers',
      status: 'ok',
      detail: 'every staging table’s capture triggers are installed and ENABLE ALWAYS',
    });
  for (const problem of problems)
    add({ check: 'capture triggers', status: 'fail', detail: problem });
}

/** What the source's catalog says about DMS's DDL-capture objects. */
interface DdlCaptureState {
  schema_exists: boolean;
  table_owner: string | null;
  function_owner: string | null;
  security_definer: boolean | null;
  /** The function's owner may INSERT into and DELETE from the table. */
  owner_can_write: boolean | null;
  public_execute: boolean | null;
  trigger_function: string | null;
  trigger_event: string | null;
  trigger_enabled: string | null;
  calls_ours: boolean | null;
  session_user_super: boolean;
}

/**
 * DMS's DDL-capture objects in `<auditSchema>_dms_ddl` (the source endpoint's
 * `DdlArtifactsSchema`): for an existing source the operator creates them with the
 * README's SQL; without them DMS misses DDL, and a broken set can make the source's DDL
 * fail. Names exactly what is missing or wrong, and gives the SQL to run.
 */
async function checkDmsDdlCapture(
  client: pg.Client,
  config: AuditTrailConfig,
  add: Add,
): Promise<void> {
  const schema = ddlArtifactsSchema(config);
  const table = `${quoteIdent(schema)}.${quoteIdent(DMS_DDL_AUDIT_TABLE)}`;
  const fn = `${quoteIdent(schema)}.${quoteIdent(DMS_DDL_FUNCTION)}()`;
  // t.rel is a regclass and f.proc a regprocedure: pg_catalog has no oid = regclass or
  // oid = regprocedure (it compares oid = oid after a cast), so a lookalike operator in
  // public would be an exact match (test/cli/doctor-planted-functions).
  const state = await one<DdlCaptureState>(
    client,
    `WITH t AS (SELECT pg_catalog.to_regclass($1) AS rel),
          f AS (SELECT pg_catalog.to_regprocedure($2) AS proc),
          e AS (SELECT evtfoid, evtevent, evtenabled FROM pg_catalog.pg_event_trigger WHERE evtname = $4)
     SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_namespace WHERE nspname = $3) AS schema_exists,
            (SELECT c.relowner::regrole::text FROM pg_catalog.pg_class c, t WHERE c.oid OPERATOR(pg_catalog.=) t.rel) AS table_owner,
            (SELECT p.proowner::regrole::text FROM pg_catalog.pg_proc p, f WHERE p.oid OPERATOR(pg_catalog.=) f.proc) AS function_owner,
            (SELECT p.prosecdef FROM pg_catalog.pg_proc p, f WHERE p.oid OPERATOR(pg_catalog.=) f.proc) AS security_definer,
            (SELECT pg_catalog.has_table_privilege(p.proowner, t.rel, 'INSERT')
                AND pg_catalog.has_table_privilege(p.proowner, t.rel, 'DELETE')
               FROM pg_catalog.pg_proc p, f, t WHERE p.oid OPERATOR(pg_catalog.=) f.proc AND t.rel IS NOT NULL) AS owner_can_write,
            (SELECT pg_catalog.has_function_privilege('public', f.proc, 'EXECUTE') FROM f WHERE f.proc IS NOT NULL) AS public_execute,
            (SELECT e.evtfoid::regprocedure::text FROM e) AS trigger_function,
            (SELECT e.evtevent FROM e) AS trigger_event,
            (SELECT e.evtenabled::text FROM e) AS trigger_enabled,
            (SELECT e.evtfoid OPERATOR(pg_catalog.=) f.proc FROM e, f) AS calls_ours,
            (SELECT rolsuper FROM pg_catalog.pg_roles WHERE rolname = session_user) AS session_user_super`,
    [table, fn, schema, DMS_DDL_EVENT_TRIGGER],
  );
  const problems = ddlCaptureProblems(state, schema, table, fn);
  if (problems.length === 0) {
    add({
      check: 'dms ddl capture',
      status: 'ok',
      detail: `${table}, ${fn} (SECURITY DEFINER, owner ${state.function_owner}) and event trigger ${DMS_DDL_EVENT_TRIGGER}`,
    });
    return;
  }
  // The login DMS replicates as owns the objects; before any exist, the one connected
  // here if it is not a superuser (the secret DMS uses), else the kit's name for it.
  const login =
    state.table_owner ??
    state.function_owner ??
    (state.session_user_super ? kitLogins(config).replication : undefined);
  const who = login ?? (await one<{ name: string }>(client, 'SELECT session_user AS name')).name;
  add({
    check: 'dms ddl capture',
    status: 'fail',
    detail: `DMS's DdlArtifactsSchema ${schema}: ${problems.join('; ')}`,
    remedy: `as the source's master user run (DMS's source login as owner; replace "${who}" if DMS logs in as another):\n${ddlCaptureScript(schema, who, state.calls_ours !== true)}`,
  });
}

function ddlCaptureProblems(
  state: DdlCaptureState,
  schema: string,
  table: string,
  fn: string,
): string[] {
  const problems: string[] = [];
  if (!state.schema_exists) problems.push(`schema ${quoteIdent(schema)} is missing`);
  if (state.table_owner === null) problems.push(`table ${table} is missing`);
  if (state.function_owner === null) problems.push(`function ${fn} is missing`);
  else {
    if (!state.security_definer)
      problems.push(`function ${fn} is not SECURITY DEFINER (other users' DDL would fail)`);
    if (state.owner_can_write === false)
      problems.push(
        `function ${fn}'s owner ${state.function_owner} cannot INSERT into and DELETE from ${table}`,
      );
    if (state.public_execute) problems.push(`PUBLIC may EXECUTE ${fn}`);
  }
  if (state.trigger_function === null)
    problems.push(`event trigger ${DMS_DDL_EVENT_TRIGGER} is missing`);
  else {
    if (!state.calls_ours)
      problems.push(
        `event trigger ${DMS_DDL_EVENT_TRIGGER} calls ${state.trigger_function}, not ${fn} (drop it first)`,
      );
    if (state.trigger_event !== 'ddl_command_end')
      problems.push(
        `event trigger ${DMS_DDL_EVENT_TRIGGER} fires on ${state.trigger_event}, not ddl_command_end`,
      );
    if (state.trigger_enabled === 'D')
      problems.push(`event trigger ${DMS_DDL_EVENT_TRIGGER} is disabled`);
  }
  return problems;
}

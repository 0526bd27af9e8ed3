import { CompiledQuery, Migrator, sql, type Kysely, type Migration } from 'kysely';
import { KIT_MIGRATIONS } from '../../migrations/target';
import { LEGACY_STAGING_MIGRATION_PREFIX } from '../../migrations/target/staging-table';
import type { AuditTrailConfig } from '../config';
import { requireChangeHistory } from '../config/change-history';
import { AuditTrailError } from '../errors';
import { createKysely } from '../postgres/connect';
import { CATALOG_ONLY_SEARCH_PATH } from '../postgres/pinned-settings';
import { noProgress, type ProgressReporter, type ProgressTask } from '../support/progress';
import { createDryRunKysely } from '../postgres/dry-run';
import { quoteLiteral, quoteQualified } from '../postgres/identifiers';
import { introspectSourceTables, SourceTableError, type SourceTable } from './introspect';
import { MIGRATE_CATCH_UP_TIMEOUT_MS, MIGRATE_LOCK_TIMEOUT } from './lock-timeout';
import { attachedRowsWarnings, partitionListProblems } from './partitions';
import { logPartitionChangesSince, readSourceLeaves, type SeenLeaf } from './partition-log';
import type { PartitionChangeEntry } from '../engine/partition-changes';
import { oldShapeChangesPending } from './pending-changes';
import { HEADER_COLUMN_NAMES, stagingTableName } from '../staging/header-columns';
import { stagingColumnsOf } from '../staging/generated-placeholders';
import { prepareReaddedTables } from './readded-tables';
import { installKitSql, type TriggerSqlFile } from './sql-files';
import type { DetectedSchemaChange } from './sync-columns';
import {
  dropRemovedStaging,
  markRemovedTables,
  syncStagingTables,
  type SyncResult,
} from './sync-staging';
import { resolveTargetTypes } from './target-types';
import { markSourceContextTable } from '../source-context/registry';
import { startChain } from '../trust/chain';
import { ensureKitRoles, kitRoles, type KitRoles } from '../trust/roles';
import { refuseForeignTriggers, secureInstall } from '../trust/secure-install';

/**
 * The advisory lock that serialises migrate runs on one target: held for a whole run by
 * `migrateTarget` (session level) and for the install transaction by `migrateTargetWith`.
 */
const MIGRATE_LOCK_KEY = sql`hashtext('audit-trail:migrate')`;

/** Options for {@link migrateTarget}. */
export interface MigrateTargetOptions {
  /** The validated config. */
  readonly config: AuditTrailConfig;
  /** Source database URL, read for columns, types and primary keys. */
  readonly sourceUrl: string;
  /** Target database URL, where staging tables and the audit log live. */
  readonly targetUrl: string;
  /** Progress lines. @default discard */
  readonly log?: (message: string) => void;
  /**
   * How far the steps that can take long got: the kit's migrations to apply, and the
   * staging tables created or brought up to date (a bar each on the CLI's terminal).
   * @default {@link noProgress}
   */
  readonly progress?: ProgressReporter;
  /**
   * Drop the staging tables of tables removed from the config (their history stays in
   * the audit log). Never drops a configured table's staging table. @default false
   */
  readonly dropStaging?: boolean;
  /**
   * How long each statement waits for a table lock (a staging table the engine or DMS
   * is writing, a long report reading it) before migrate fails with
   * `MIGRATE_LOCK_TIMEOUT` instead of queueing, which would block every later query on
   * that table. A PostgreSQL duration: `500ms`, `30s`, `2min`.
   * @default '30s'
   */
  readonly lockTimeout?: string;
  /**
   * Change staging's shape even though a replication slot on the source may still hold
   * changes of the old shape (see `oldShapeChangesPending` in src/migrate/pending-changes.ts): the pipeline will then
   * stop at such a change. Only for when you know staging can take them. @default false
   */
  readonly allowPendingChanges?: boolean;
  /**
   * How long to wait, before changing staging's shape, for a running engine or DMS task
   * to confirm the source's current position. @default 60_000
   */
  readonly catchUpTimeoutMs?: number;
  /**
   * Do everything in one target transaction and roll it back: the report says what a
   * real run would change, {@link MigrateReport.statements} lists the SQL, and nothing
   * is committed. Locks the statements take are held until the rollback, as in a real
   * run. The source is only read, as in every run. @default false
   */
  readonly dryRun?: boolean;
}

/** Thrown when staging would change shape before the pipeline applied the older changes. */
export class PendingChangesError extends AuditTrailError {
  override readonly name = 'PendingChangesError';
}

/** Options for {@link migrateTargetWith}. */
export interface MigrateRunOptions extends Pick<
  MigrateTargetOptions,
  'log' | 'dropStaging' | 'progress'
> {
  /** The source WAL position the introspected tables were read at (or before). */
  readonly sourceLsn?: string;
  /**
   * Each audited table's leaf partitions on the source (`readSourceLeaves`, keyed
   * `schema\0table`), read before `sourceLsn`: the partitions attached or detached since
   * the last run are logged. Absent: the log and migrate's record of leaves are left as
   * they are.
   */
  readonly leaves?: ReadonlyMap<string, readonly SeenLeaf[]>;
}

/** What a migrate run did. */
export interface MigrateReport extends SyncResult {
  /** Names of the kit's versioned migrations applied by this run (empty when already current). */
  readonly applied: readonly string[];
  /** The kit's SQL files (functions, triggers) installed by this run: new or changed ones. */
  readonly installedSqlFiles: readonly TriggerSqlFile[];
  /** The audited tables as found on the source. */
  readonly tables: readonly SourceTable[];
  /**
   * `schema.table` of tables this run found removed from the config: no longer captured;
   * staging table and history kept.
   */
  readonly removedTables: readonly string[];
  /** `schema.table` of removed tables whose staging table this run dropped (`dropStaging`). */
  readonly droppedStagingTables: readonly string[];
  /**
   * With `dryRun`: every statement sent to the target, in order (reads included), all
   * rolled back. Absent in a real run.
   */
  readonly statements?: readonly string[];
  /**
   * `schema.table` of tables this run found back in the config after a removal: the local
   * engine reloads each at its next start (see README "Removing a table").
   */
  readonly readdedTables: readonly string[];
  /**
   * What to know that is not wrong yet: on a PostgreSQL 13 or 14 source, that the rows a
   * table holds when it is attached as a partition need `verify` and a reload (see
   * `attachedRowsWarnings` in src/migrate/partitions.ts). Logged as `warning: ...`.
   */
  readonly warnings: readonly string[];
  /**
   * The partitions this run found attached to or detached from an audited table since
   * the run before, as logged in the schema-change log (`partition_change`, detected by
   * migrate): the AWS DMS path's partition entries (src/migrate/partition-log.ts).
   */
  readonly partitionChanges: readonly PartitionChangeEntry[];
}

export { MIGRATE_CATCH_UP_TIMEOUT_MS, MIGRATE_LOCK_TIMEOUT } from './lock-timeout';

/** A PostgreSQL duration as `lock_timeout` reads it: a whole number and a time unit. */
const DURATION = /^[1-9][0-9]{0,8}(?:ms|s|min|h)$/;

/** Thrown when a migration fails; the target is left as the last successful one left it. */
export class MigrationError extends AuditTrailError {
  override readonly name = 'MigrationError';
  constructor(message: string, options: { readonly hint?: string; readonly cause?: unknown } = {}) {
    super(message, { code: 'MIGRATION_FAILED', kind: 'failure', ...options });
  }
}

/**
 * Installs on the target everything the DMS pipeline writes into, and upgrades what an
 * earlier kit version installed: the kit's versioned migrations (audit schema, audit
 * log, registry, engine position), the kit's functions whenever their SQL changed, and
 * a staging table with its audit triggers per audited table. Idempotent: a second run
 * changes nothing; a table added to the config gets only its own staging table; a
 * column added on the source is added to staging.
 */
export async function migrateTarget(options: MigrateTargetOptions): Promise<MigrateReport> {
  requireChangeHistory(options.config, 'migrate');
  const lockTimeout = options.lockTimeout ?? MIGRATE_LOCK_TIMEOUT;
  if (!DURATION.test(lockTimeout))
    throw new AuditTrailError(
      `lockTimeout must be a duration such as 500ms, 30s or 2min, not ${JSON.stringify(lockTimeout)}`,
      { code: 'USAGE', kind: 'usage' },
    );
  // DDL waiting for a lock blocks every later query on that table: give up instead.
  // On the target, names are looked up in pg_catalog only (pg_temp last, so no temporary
  // table shadows a catalog): migrate runs as an administrator, and a lookalike of a
  // catalog function that anyone may create in public (PostgreSQL 13 and 14) would
  // otherwise run with its rights, or be built into the audit log's indexes
  // (test/migrate/planted-functions).
  const settings = { lock_timeout: lockTimeout };
  const source = createKysely<unknown>(options.sourceUrl, { max: 1, label: 'source', settings });
  const targetOptions = {
    max: 1,
    label: 'target',
    settings: { ...settings, search_path: CATALOG_ONLY_SEARCH_PATH },
  };
  const dryRun = options.dryRun
    ? createDryRunKysely<unknown>(options.targetUrl, targetOptions)
    : null;
  const target = dryRun?.db ?? createKysely<unknown>(options.targetUrl, targetOptions);
  try {
    // One session for the whole run: it holds the migrate lock from before the source
    // is read until the end, so a second run reads the source only after this one has
    // recorded what it saw. A run that read first and locked later would compare an
    // older source with a newer record and log the difference backwards (a column
    // "dropped", and dropped from staging where DMS still writes it; a partition
    // "detached").
    const report = await target.connection().execute(async (session) => {
      await holdMigrateLock(session, lockTimeout);
      try {
        return await migrateFromSource(source, session, options);
      } finally {
        // Ending the session releases it too (a dry run's aborted transaction refuses
        // the call; the session ends right after).
        await sql`SELECT pg_catalog.pg_advisory_unlock(${MIGRATE_LOCK_KEY})`
          .execute(session)
          .catch(() => undefined);
      }
    });
    return dryRun ? { ...report, statements: [...dryRun.statements] } : report;
  } catch (error) {
    throw isLockTimeout(error) && !isMigrateLockTimeout(error)
      ? lockTimeoutError(lockTimeout, error)
      : error;
  } finally {
    await Promise.all([source.destroy(), target.destroy()]);
  }
}

/**
 * Refuses to change a staging table's shape while the source's slots may still hold
 * changes of the old shape: applied after the change, they would stop the pipeline for
 * good. Checked only for tables whose staging differs from the source.
 */
async function refuseBeforeCatchUp(
  source: Kysely<unknown>,
  target: Kysely<unknown>,
  options: MigrateTargetOptions,
  tables: readonly SourceTable[],
): Promise<void> {
  const changing = [];
  for (const table of tables) {
    const { rows } = await sql<{ name: string; type: string }>`
      SELECT a.attname AS name, pg_catalog.format_type(a.atttypid, a.atttypmod) AS type
        FROM pg_catalog.pg_attribute a
       WHERE a.attrelid OPERATOR(pg_catalog.=) pg_catalog.to_regclass(${quoteQualified(options.config.auditSchema, stagingTableName(table.table))})
         AND a.attnum > 0 AND NOT a.attisdropped`.execute(target);
    if (rows.length === 0) continue; // no staging table yet: nothing to change
    const staging = new Map(
      rows
        .filter((row) => !HEADER_COLUMN_NAMES.includes(row.name))
        .map((row) => [row.name, row.type]),
    );
    const wanted = stagingColumnsOf(table);
    const same =
      staging.size === wanted.length &&
      wanted.every((column) => staging.get(column.name) === column.type);
    if (!same) {
      const configured = options.config.tables.find(
        (t) => t.schema === table.schema && t.table === table.table,
      );
      changing.push({
        schema: table.schema,
        table: table.table,
        partitions: configured?.partitions,
      });
    }
  }
  if (changing.length === 0) return;
  const positions = options.config.auditSchema;
  const { rows: applied } = await sql<{ slot_name: string; lsn: string }>`
    SELECT p.slot_name, p.last_end_lsn::text AS lsn
      FROM ${sql.id(positions, 'cdc_engine_position')} AS p`
    .execute(target)
    .catch(() => ({ rows: [] as { slot_name: string; lsn: string }[] }));
  const problems = await oldShapeChangesPending(
    async <Row>(text: string, values: readonly unknown[]) =>
      (await source.executeQuery(CompiledQuery.raw(text, [...values]))).rows as Row[],
    changing,
    {
      timeoutMs: options.catchUpTimeoutMs ?? MIGRATE_CATCH_UP_TIMEOUT_MS,
      appliedUpTo: new Map(applied.map((row) => [row.slot_name, row.lsn])),
    },
  );
  if (problems.length === 0) return;
  throw new PendingChangesError(
    `not changing staging yet: ${problems.join('; ')}. Let the pipeline apply every change ` +
      'committed before the ALTER first (the engine applies them and then stops at the first ' +
      'change of the new shape, or goes idle; a DMS task: wait until its source latency is ' +
      'near zero), then run migrate again. Nothing was changed. --allow-pending-changes skips ' +
      'this check, and the pipeline will then stop at the first old change staging cannot take',
    { code: 'PENDING_CHANGES', kind: 'failure' },
  );
}

/** The source read, then the target's work, on a target session that holds the migrate lock. */
async function migrateFromSource(
  source: Kysely<unknown>,
  target: Kysely<unknown>,
  options: MigrateTargetOptions,
): Promise<MigrateReport> {
  const tables = await introspectSourceTables(source, options.config);
  // Not in introspection (verify uses it): only the DMS mapping needs the list.
  const runOnSource = async <Row>(text: string, values: readonly unknown[]) =>
    (await source.executeQuery(CompiledQuery.raw(text, [...values]))).rows as Row[];
  const partitionProblems = await partitionListProblems(runOnSource, options.config.tables);
  if (partitionProblems.length > 0) {
    throw new SourceTableError(`cannot audit: ${partitionProblems.join('; ')}`);
  }
  const warnings = await attachedRowsWarnings(runOnSource, options.config.tables);
  const leaves = await readSourceLeaves(runOnSource, options.config.tables);
  if (options.allowPendingChanges !== true) {
    await refuseBeforeCatchUp(source, target, options, tables);
  }
  // Read after introspection and the leaves: every schema change seen there is at or
  // before it.
  const sourceLsn = await currentSourceLsn(source);
  const log = options.log ?? (() => undefined);
  warnings.forEach((warning) => log(`warning: ${warning}`));
  const report = await migrateTargetWith(target, options.config, tables, {
    ...options,
    sourceLsn,
    leaves,
  });
  return { ...report, warnings };
}

/** Takes the migrate lock for the session, waiting at most `lockTimeout` for another run. */
async function holdMigrateLock(session: Kysely<unknown>, lockTimeout: string): Promise<void> {
  try {
    await sql`SELECT pg_catalog.pg_advisory_lock(${MIGRATE_LOCK_KEY})`.execute(session);
  } catch (error) {
    if (!isLockTimeout(error)) throw error;
    throw new AuditTrailError(
      `another migrate is running on this target: waited ${lockTimeout} for it and gave up; ` +
        'nothing was changed',
      {
        code: 'MIGRATE_LOCK_TIMEOUT',
        hint: 'let the other run finish, then run migrate again (or raise --lock-timeout)',
        cause: error,
      },
    );
  }
}

function isMigrateLockTimeout(error: unknown): boolean {
  return error instanceof AuditTrailError && error.code === 'MIGRATE_LOCK_TIMEOUT';
}

/** Whether `error` (or an error it wraps) is PostgreSQL's lock_not_available. */
function isLockTimeout(error: unknown): boolean {
  for (let e = error; e instanceof Error; e = e.cause)
    if ((e as { code?: unknown }).code === '55P03') return true;
  return false;
}

function lockTimeoutError(lockTimeout: string, cause: unknown): AuditTrailError {
  const detail = cause instanceof Error ? cause.message : String(cause);
  return new AuditTrailError(
    `migrate waited ${lockTimeout} for a lock and gave up (${detail}); the step that ` +
      'waited was rolled back, and running migrate again completes the rest',
    {
      code: 'MIGRATE_LOCK_TIMEOUT',
      hint:
        'another session holds a lock on a kit table (the engine or DMS writing staging, a ' +
        'long-running query): let it finish or pause it, then run migrate again, or raise ' +
        '--lock-timeout',
      cause,
    },
  );
}

/** {@link migrateTarget} on an open target connection, for already introspected tables. */
export async function migrateTargetWith(
  target: Kysely<unknown>,
  config: AuditTrailConfig,
  tables: readonly SourceTable[],
  options: MigrateRunOptions = {},
): Promise<MigrateReport> {
  const log = options.log ?? (() => undefined);
  const roles = kitRoles(config);
  (await ensureKitRoles(target, roles)).forEach((role) => log(`created role ${role}`));
  // A foreign trigger on a kit table would run with this login's rights.
  await refuseForeignTriggers(target, config.auditSchema);
  // Types read from the source are input: only what the target's catalog renders is used.
  const resolved = await resolveTargetTypes(target, tables);
  const progress = options.progress ?? noProgress;
  const applied = await runKitMigrations(target, config.auditSchema, roles, progress);
  applied.forEach((name) => log(`applied migration ${name}`));
  const report = await target.transaction().execute(async (trx) => {
    // Concurrent migrate runs must not both install a function or add the same column.
    await sql`SELECT pg_catalog.pg_advisory_xact_lock(${MIGRATE_LOCK_KEY})`.execute(trx);
    // After a versioned migration every file is re-installed: the migration may have
    // dropped something a file defines.
    const installedSqlFiles = await installKitSql(trx, config.auditSchema, {
      all: applied.length > 0,
    });
    await startChain(trx, config.auditSchema);
    const removedTables = await markRemovedTables(trx, config.auditSchema, resolved);
    const droppedStagingTables = options.dropStaging
      ? await dropRemovedStaging(trx, config.auditSchema)
      : [];
    const readdedTables = await prepareReaddedTables(trx, config.auditSchema, resolved);
    const staging = progress.start('migrate: staging tables', resolved.length);
    const synced = await syncStagingTables(
      trx,
      config.auditSchema,
      resolved,
      options.sourceLsn,
      staging,
    ).finally(() => staging.done());
    const partitionChanges = options.leaves
      ? await logPartitionChangesSince(
          trx,
          config.auditSchema,
          resolved,
          options.leaves,
          options.sourceLsn,
        )
      : [];
    await markSourceContextTable(trx, config);
    await secureInstall(trx, config.auditSchema, roles);
    return {
      applied,
      installedSqlFiles,
      tables: resolved,
      removedTables,
      droppedStagingTables,
      readdedTables,
      // Source-side warnings are migrateTarget's: this function reads only the target.
      warnings: [],
      partitionChanges,
      ...synced,
    };
  });
  logReport(report, log);
  return report;
}

function logReport(report: MigrateReport, log: (message: string) => void): void {
  report.installedSqlFiles.forEach((file) => log(`installed triggers/${file}`));
  report.removedTables.forEach((table) =>
    log(
      `${table} is no longer in the config: not captured any more; staging table and history kept`,
    ),
  );
  report.droppedStagingTables.forEach((table) => log(`dropped the staging table of ${table}`));
  report.readdedTables.forEach((table) =>
    log(`${table} is back in the config: the pipeline reloads it as a new baseline`),
  );
  report.createdStagingTables.forEach((table) => log(`created the staging table of ${table}`));
  report.schemaChanges.forEach((change) => log(describeSchemaChange(change)));
  report.triggersInstalled.forEach((table) => log(`installed audit trigger for ${table}`));
  report.partitionChanges.forEach((change) => log(describePartitionChange(change)));
}

/** One line per partition attached or detached, as migrate prints it. */
export function describePartitionChange(change: PartitionChangeEntry): string {
  const partition = `${change.schema}.${change.name} ${change.bound ?? '(bound not known)'}`;
  return `${change.root.schema}.${change.root.table}: partition ${partition} ${change.change === 'ATTACH' ? 'attached' : 'detached'}`;
}

async function runKitMigrations(
  target: Kysely<unknown>,
  auditSchema: string,
  roles: KitRoles,
  progress: ProgressReporter,
): Promise<string[]> {
  const migrations: Record<string, Migration> = {};
  const steps = counted(progress);
  for (const { name, migration } of KIT_MIGRATIONS)
    migrations[name] = steps.wrap(migration(auditSchema, roles));
  // Read before the migrator takes the (single) connection for its lock.
  for (const name of await legacyStagingMigrations(target, auditSchema)) {
    migrations[name] = { up: async () => undefined };
  }
  const migrator = new Migrator({
    db: target,
    provider: { getMigrations: async () => migrations },
    migrationTableSchema: auditSchema,
    // Installs from 0.1.0 recorded per-table migrations named after 0001: later kit
    // migrations sort before them.
    allowUnorderedMigrations: true,
  });
  const pending = (await migrator.getMigrations()).filter((m) => m.executedAt === undefined);
  const { error, results = [] } = await steps.run('migrate: kit migrations', pending.length, () =>
    migrator.migrateToLatest(),
  );
  const failed = results.find((result) => result.status === 'Error');
  if (error !== undefined) {
    const cause = error instanceof Error ? error.message : String(error);
    throw new MigrationError(`migration ${failed?.migrationName ?? '(setup)'} failed: ${cause}`, {
      hint: migrationErrorHint(error, auditSchema, roles),
    });
  }
  return results.map((result) => result.migrationName);
}

/**
 * What to do about a migration error the operator can fix, or undefined. A REVOKE (0027
 * takes the engine's bookkeeping from writer) fails with dependent_privileges_exist when
 * the role held a privilege WITH GRANT OPTION and granted it on: revoking it on its own
 * would strand those grants. Which ones to drop is the administrator's call.
 */
function migrationErrorHint(
  error: unknown,
  auditSchema: string,
  roles: KitRoles,
): string | undefined {
  if ((error as { code?: unknown }).code !== '2BP01') return undefined;
  return (
    'a role passed on a privilege on a kit object it held WITH GRANT OPTION; list those grants with ' +
    `SELECT grantor, grantee, table_name, privilege_type FROM information_schema.table_privileges WHERE table_schema = ${quoteLiteral(auditSchema)} AND grantor <> ${quoteLiteral(roles.owner)}, ` +
    "revoke them (or the grant option, REVOKE GRANT OPTION FOR ... CASCADE) as the target's administrator, then migrate again"
  );
}

/** Migrations that advance one progress task as each is applied. */
function counted(progress: ProgressReporter) {
  let task: ProgressTask | null = null;
  return {
    wrap: (migration: Migration): Migration => ({
      ...migration,
      up: async (db) => {
        await migration.up(db);
        task?.advance(1);
      },
    }),
    /** Runs `work` with a task of `total` steps (none when there is nothing to do). */
    run: async <T>(label: string, total: number, work: () => Promise<T>): Promise<T> => {
      if (total === 0) return work();
      task = progress.start(label, total);
      try {
        return await work();
      } finally {
        task.done();
        task = null;
      }
    },
  };
}

/**
 * The per-table migrations an 0.1.0 install recorded (see
 * {@link LEGACY_STAGING_MIGRATION_PREFIX}); declared as done so kysely finds none missing.
 */
async function legacyStagingMigrations(
  db: Kysely<unknown>,
  auditSchema: string,
): Promise<string[]> {
  const table = quoteQualified(auditSchema, 'kysely_migration');
  const { rows: found } = await sql<{ exists: boolean }>`
    SELECT pg_catalog.to_regclass(${table}) IS NOT NULL AS exists`.execute(db);
  if (!found[0]?.exists) return [];
  const { rows } = await sql<{ name: string }>`
    SELECT name FROM ${sql.id(auditSchema, 'kysely_migration')}
    WHERE starts_with(name, ${LEGACY_STAGING_MIGRATION_PREFIX})`.execute(db);
  return rows.map((row) => row.name);
}

/**
 * The source's current WAL insert position (the replay position on a standby): every
 * transaction whose effects a catalog read before it saw committed at or before it. The
 * write position (`pg_current_wal_lsn`) can lag behind a commit record already
 * inserted (another session's WAL not yet written, an asynchronous commit).
 */
async function currentSourceLsn(source: Kysely<unknown>): Promise<string | undefined> {
  const { rows } = await sql<{ lsn: string | null }>`
    SELECT (CASE WHEN pg_is_in_recovery() THEN pg_last_wal_replay_lsn()
                 ELSE pg_current_wal_insert_lsn() END)::text AS lsn`.execute(source);
  return rows[0]?.lsn ?? undefined;
}

/** One line per schema change, as migrate prints it. */
export function describeSchemaChange(change: DetectedSchemaChange): string {
  const table = `${change.schema}.${change.table}`;
  switch (change.change) {
    case 'ADD':
      return `${table}: added column ${change.column} ${change.after?.type ?? ''}`;
    case 'DROP':
      return `${table}: dropped column ${change.column} (its history is kept)`;
    case 'RENAME':
      return `${table}: renamed column ${change.before?.name ?? ''} to ${change.column}`;
    case 'RETYPE':
      return `${table}: column ${change.column} type ${change.before?.type ?? ''} -> ${change.after?.type ?? ''}`;
  }
}

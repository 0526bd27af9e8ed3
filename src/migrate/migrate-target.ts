import { Migrator, type Kysely, type Migration, type MigrationProvider } from 'kysely';
import { auditLogMigration } from '../../migrations/target/0001-audit-log';
import { stagingMigrationName, stagingTableMigration } from '../../migrations/target/staging-table';
import type { AuditTrailConfig } from '../config';
import { createKysely } from '../postgres/connect';
import { introspectSourceTables, type SourceTable } from './introspect';
import { syncStagingTables, type SyncResult } from './sync-staging';

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
}

/** What a migrate run did. */
export interface MigrateReport extends SyncResult {
  /** Names of the migrations applied by this run (empty when already current). */
  readonly applied: readonly string[];
  /** The audited tables as found on the source. */
  readonly tables: readonly SourceTable[];
}

/** Thrown when a migration fails; the target is left as the last successful one left it. */
export class MigrationError extends Error {
  override readonly name = 'MigrationError';
}

/**
 * Installs on the target everything the DMS pipeline writes into: the audit schema and
 * log, a staging table per audited table, and the audit triggers. Idempotent: a second
 * run applies nothing; a table added to the config gets only its own staging table; a
 * column added on the source is added to staging.
 */
export async function migrateTarget(options: MigrateTargetOptions): Promise<MigrateReport> {
  const source = createKysely<unknown>(options.sourceUrl, { max: 1 });
  const target = createKysely<unknown>(options.targetUrl, { max: 1 });
  try {
    const tables = await introspectSourceTables(source, options.config);
    return await migrateTargetWith(target, options.config, tables, options.log);
  } finally {
    await Promise.all([source.destroy(), target.destroy()]);
  }
}

/** {@link migrateTarget} on an open target connection, for already introspected tables. */
export async function migrateTargetWith(
  target: Kysely<unknown>,
  config: AuditTrailConfig,
  tables: readonly SourceTable[],
  log: (message: string) => void = () => undefined,
): Promise<MigrateReport> {
  const migrator = new Migrator({
    db: target,
    provider: new TargetMigrationProvider(config.auditSchema, tables),
    migrationTableSchema: config.auditSchema,
    // A table added to the config later sorts among the ones already installed.
    allowUnorderedMigrations: true,
  });
  const { error, results = [] } = await migrator.migrateToLatest();
  const failed = results.find((result) => result.status === 'Error');
  if (error !== undefined) {
    const cause = error instanceof Error ? error.message : String(error);
    throw new MigrationError(`migration ${failed?.migrationName ?? '(setup)'} failed: ${cause}`);
  }
  const applied = results.map((result) => result.migrationName);
  applied.forEach((name) => log(`applied migration ${name}`));
  const synced = await syncStagingTables(target, config.auditSchema, tables);
  for (const [table, columns] of Object.entries(synced.addedColumns))
    log(`added columns to ${table}: ${columns.join(', ')}`);
  synced.triggersInstalled.forEach((table) => log(`installed audit trigger for ${table}`));
  return { applied, tables, ...synced };
}

/** The target's migrations: the audit log first, then one per audited table. */
class TargetMigrationProvider implements MigrationProvider {
  constructor(
    private readonly auditSchema: string,
    private readonly tables: readonly SourceTable[],
  ) {}

  async getMigrations(): Promise<Record<string, Migration>> {
    const migrations: Record<string, Migration> = {
      '0001-audit-log': auditLogMigration(this.auditSchema),
    };
    for (const table of this.tables) {
      migrations[stagingMigrationName(table)] = stagingTableMigration(this.auditSchema, table);
    }
    return migrations;
  }
}

import type { Command } from 'commander';
import { loadConfig } from '../../config';
import { migrateTarget } from '../../migrate/migrate-target';
import { configOption, requireUrl, sourceUrlOption, targetUrlOption } from '../options';

interface MigrateOptions {
  readonly config: string;
  readonly sourceUrl?: string;
  readonly targetUrl?: string;
  readonly dropStaging?: boolean;
}

/**
 * `audit-trail migrate`: installs the audit schema, audit log, staging tables and audit
 * triggers on the target, reading column types and keys from the source. Idempotent.
 */
export function registerMigrate(program: Command): void {
  program
    .command('migrate')
    .description('install or update staging tables, triggers and the audit log on the target')
    .addOption(configOption())
    .addOption(sourceUrlOption())
    .addOption(targetUrlOption())
    .option(
      '--drop-staging',
      'drop the staging tables of tables removed from the config (their history is kept)',
    )
    .action(async (options: MigrateOptions) => {
      const config = await loadConfig(options.config);
      const report = await migrateTarget({
        config,
        sourceUrl: requireUrl(options.sourceUrl, '--source-url'),
        targetUrl: requireUrl(options.targetUrl, '--target-url'),
        log: (line) => process.stdout.write(`${line}\n`),
        dropStaging: options.dropStaging === true,
      });
      const changed =
        report.applied.length +
        report.installedSqlFiles.length +
        report.createdStagingTables.length +
        report.removedTables.length +
        report.droppedStagingTables.length +
        report.triggersInstalled.length +
        report.schemaChanges.length;
      const tables = report.tables.map((table) => `${table.schema}.${table.table}`).join(', ');
      process.stdout.write(
        changed === 0 ? `target is up to date (${tables})\n` : `target migrated (${tables})\n`,
      );
    });
}

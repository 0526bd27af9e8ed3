import type { Command } from '@commander-js/extra-typings';
import type { AuditTrailConfig } from '../../config';
import type { SourceContextInstallReport } from '../../source-context';
import { MIGRATE_CATCH_UP_TIMEOUT_MS, MIGRATE_LOCK_TIMEOUT } from '../../migrate/lock-timeout';
import { UsageError } from '../errors';
import { configOption, jsonOption, requireUrl, sourceUrlOption, targetUrlOption } from '../options';

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
    .option(
      '--source-context',
      'first create or update the source context table (config "sourceContext") on the source',
    )
    .option(
      '--lock-timeout <duration>',
      'how long to wait for a lock on a kit table before giving up (500ms, 30s, 2min)',
      MIGRATE_LOCK_TIMEOUT,
    )
    .option(
      '--catch-up-timeout <seconds>',
      'before changing a staging table, how long to wait for a running engine or DMS task to confirm the source position',
      String(MIGRATE_CATCH_UP_TIMEOUT_MS / 1000),
    )
    .option(
      '--allow-pending-changes',
      'change staging even if the source slots may still hold changes of the old shape (the pipeline then stops at them)',
    )
    .addOption(jsonOption('what changed'))
    .option(
      '--dry-run',
      'run everything in one target transaction and roll it back: print the SQL that changes something and what would change, commit nothing',
    )
    .action(async (options) => {
      if (options.dryRun && options.sourceContext)
        throw new UsageError(
          '--dry-run does not cover --source-context (it writes on the source): run migrate --source-context, then migrate --dry-run',
        );
      const { loadConfig, requireChangeHistory } = await import('../../config/index.js');
      const { migrateTarget } = await import('../../migrate/migrate-target.js');
      const config = await loadConfig(options.config);
      requireChangeHistory(config, 'migrate');
      const { openLineProgress } = await import('../terminal.js');
      const sourceUrl = requireUrl(options.sourceUrl, '--source-url');
      // With --json, stdout carries the one document: progress lines go to stderr.
      const lines = openLineProgress(options.json ? process.stderr : process.stdout);
      // A dry run's lines say what a real run would do: kept until its SQL is printed.
      const dryRunLines: string[] = [];
      const sourceContext =
        options.sourceContext === true
          ? await migrateSourceContext(config, sourceUrl, lines)
          : undefined;
      const report = await migrateTarget({
        config,
        sourceUrl,
        targetUrl: requireUrl(options.targetUrl, '--target-url'),
        log: (line) => (options.dryRun ? dryRunLines.push(line) : lines.write(`${line}\n`)),
        ...(lines.progress && { progress: lines.progress }),
        dryRun: options.dryRun === true,
        dropStaging: options.dropStaging === true,
        lockTimeout: options.lockTimeout,
        allowPendingChanges: options.allowPendingChanges === true,
        catchUpTimeoutMs: catchUpTimeoutMs(options.catchUpTimeout),
      }).catch(async (error: unknown) => {
        throw await withSourceContextRemedy(error, config);
      });
      const changed =
        report.applied.length +
        report.installedSqlFiles.length +
        report.createdStagingTables.length +
        report.removedTables.length +
        report.droppedStagingTables.length +
        report.readdedTables.length +
        report.triggersInstalled.length +
        report.schemaChanges.length +
        report.partitionChanges.length;
      const tables = report.tables.map((table) => `${table.schema}.${table.table}`);
      if (options.json) {
        const { applied, installedSqlFiles, createdStagingTables, schemaChanges } = report;
        const { addedColumns, triggersInstalled, removedTables, droppedStagingTables } = report;
        const { readdedTables, warnings, partitionChanges } = report;
        process.stdout.write(
          `${JSON.stringify({
            upToDate: changed === 0,
            tables,
            applied,
            installedSqlFiles,
            createdStagingTables,
            schemaChanges,
            partitionChanges,
            addedColumns,
            triggersInstalled,
            removedTables,
            droppedStagingTables,
            readdedTables,
            warnings,
            ...(sourceContext !== undefined && { sourceContext }),
            ...(options.dryRun && { dryRun: true, statements: report.statements ?? [] }),
          })}\n`,
        );
        return;
      }
      const names = tables.join(', ');
      if (options.dryRun) {
        process.stdout.write(formatDryRun(report.statements ?? [], dryRunLines, changed, names));
        return;
      }
      process.stdout.write(
        changed === 0 ? `target is up to date (${names})\n` : `target migrated (${names})\n`,
      );
    });
}

/**
 * A dry run as a psql script to review: the statements that change something (reads
 * are left out; `--json` lists every statement), then what a real run would report,
 * as comments.
 */
function formatDryRun(
  statements: readonly string[],
  lines: readonly string[],
  changed: number,
  names: string,
): string {
  const changes = statements.filter((statement) => !/^\s*select\b/i.test(statement));
  return [
    '-- audit-trail migrate --dry-run: run in one target transaction and rolled back; nothing changed.',
    '-- The statements that change something, in order, as sent ($n: a bound value; reads left out; --json lists all):',
    ...changes.map((statement) => `${statement.trim()};`),
    ...lines.map((line) => `-- would: ${line}`),
    changed === 0
      ? `-- target is up to date (${names}): a real run changes nothing`
      : `-- a real run would migrate the target (${names})`,
    '',
  ].join('\n');
}

function catchUpTimeoutMs(text: string): number {
  if (!/^\d+(\.\d+)?$/.test(text)) {
    throw new UsageError(
      `--catch-up-timeout must be a number of seconds, not ${JSON.stringify(text)}`,
    );
  }
  return Number(text) * 1000;
}

/** `--source-context`: the context table on the source, before the target reads it. */
async function migrateSourceContext(
  config: AuditTrailConfig,
  sourceUrl: string,
  out: { write(text: string): unknown },
): Promise<SourceContextInstallReport> {
  const { createKysely } = await import('../../postgres/connect.js');
  const { installSourceContext } = await import('../../source-context/index.js');
  const source = createKysely<unknown>(sourceUrl, { max: 1, label: 'source' });
  try {
    const report = await installSourceContext(source, config);
    const lines = [
      report.created ? `created source context table ${report.table}` : undefined,
      ...report.required.map((column) => `${report.table}.${column} is now required`),
      ...report.optional.map((column) => `${report.table}.${column} is now optional`),
      ...report.grantedTo.map((role) => `granted INSERT on ${report.table} to ${role}`),
    ].filter((line): line is string => line !== undefined);
    if (lines.length === 0) lines.push(`source context table ${report.table} is up to date`);
    out.write(lines.map((line) => `${line}\n`).join(''));
    return report;
  } finally {
    await source.destroy();
  }
}

/** A missing context table is the usual first-run mistake: say how to create it. */
async function withSourceContextRemedy(error: unknown, config: AuditTrailConfig): Promise<unknown> {
  const { SourceTableError } = await import('../../migrate/introspect.js');
  const context = config.sourceContext;
  if (!(error instanceof SourceTableError) || context === undefined) return error;
  const missing = `source table ${context.schema}.${context.table} does not exist`;
  if (error.message !== missing) return error;
  return new SourceTableError(
    `${missing}: it is the source context table; create it with audit-trail migrate --source-context`,
  );
}

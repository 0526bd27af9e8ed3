import type { Command } from 'commander';
import { Option } from 'commander';
import { loadConfig, requireChangeHistory } from '../../config';
import {
  createHistory,
  DEFAULT_HISTORY_PAGE,
  historyCursor,
  HistoryQueryError,
  parseHistoryCursor,
  stringifyRowJson,
  type HistoryPageOptions,
  type SchemaChange,
  type Version,
} from '../../history';
import { CliError, UsageError } from '../errors';
import {
  configOption,
  secretArnOption,
  targetArnOption,
  targetDatabaseOption,
  targetUrlOption,
  type TargetOptions,
} from '../options';
import { openTarget, targetConnection } from '../target';
import { registerHistoryQueries } from './history-queries';

interface HistoryOptions extends TargetOptions {
  readonly config: string;
  readonly asOf?: string;
  readonly json?: boolean;
  readonly limit?: string;
  readonly after?: string;
}

/**
 * `audit-trail history SCHEMA.TABLE KEY...`: every version of one row, oldest first,
 * or with `--as-of` the row as committed at that instant. `--limit N` / `--after CURSOR`
 * print one page; a full page ends with the `--after` cursor of the next on stderr.
 */
export function registerHistory(program: Command): void {
  const history = program
    .command('history')
    .description('print the history of one row (key values in primary key order)')
    .argument('<table>', 'audited table as schema.table')
    .argument('<key...>', 'primary key values, in key order')
    .addOption(configOption())
    .addOption(targetUrlOption())
    .addOption(targetArnOption())
    .addOption(secretArnOption())
    .addOption(targetDatabaseOption())
    .addOption(
      new Option('--as-of <instant>', 'print the row as committed at this ISO-8601 instant'),
    )
    .option('--json', 'print JSON')
    .option('--limit <n>', 'print at most N versions (a page; default 100 with --after)')
    .option(
      '--after <cursor>',
      'print the versions after this cursor (printed on stderr after a full page)',
    )
    .action(async (table: string, key: string[], options: HistoryOptions) => {
      // The target's registry decides what has history, not the config: a table removed
      // from the config keeps its history.
      const config = await loadConfig(options.config);
      requireChangeHistory(config, 'history');
      const asOf = options.asOf === undefined ? undefined : parseInstant(options.asOf);
      const page = pageOptions(options);
      if (asOf !== undefined && page !== undefined) {
        throw new UsageError('--as-of prints one row: it cannot be combined with --limit/--after');
      }
      const db = openTarget(targetConnection(options, config));
      try {
        const history = createHistory(db, { auditSchema: config.auditSchema });
        if (asOf !== undefined) {
          const row = await history.asOf(table, key, asOf);
          process.stdout.write(`${stringifyRowJson(row, options.json ? undefined : 2)}\n`);
          return;
        }
        const versions = await history.history(table, key, page);
        process.stdout.write(
          options.json ? `${stringifyRowJson(versions.map(toJson))}\n` : formatVersions(versions),
        );
        const last = versions.at(-1);
        if (page !== undefined && last !== undefined && versions.length === page.limit) {
          process.stderr.write(`more versions may follow: --after ${historyCursor(last)}\n`);
        }
      } catch (error) {
        if (error instanceof HistoryQueryError) throw new CliError(error.message);
        throw error;
      } finally {
        await db.destroy();
      }
    });
  registerSchemaHistory(history);
  registerHistoryQueries(history);
}

/** `--limit` / `--after` as a page of the history API, or undefined to print every version. */
function pageOptions(
  options: HistoryOptions,
): (HistoryPageOptions & { readonly limit: number }) | undefined {
  if (options.limit === undefined && options.after === undefined) return undefined;
  const limit = options.limit === undefined ? DEFAULT_HISTORY_PAGE : Number(options.limit);
  if (!/^[1-9]\d*$/.test(options.limit ?? '1') || !Number.isSafeInteger(limit)) {
    throw new UsageError(`--limit must be a positive integer (got "${options.limit}")`);
  }
  if (options.after === undefined) return { limit };
  try {
    return { limit, after: parseHistoryCursor(options.after) };
  } catch (error) {
    if (error instanceof HistoryQueryError) throw new UsageError(`--${error.message}`);
    throw error;
  }
}

/** ISO-8601 with a date and, when a time is given, an explicit zone (no local-time guessing). */
export function parseInstant(text: string, flag = '--as-of'): string {
  const iso = /^\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2}(\.\d{1,6})?)?(Z|[+-]\d{2}(:?\d{2})?))?$/;
  if (!iso.test(text)) {
    throw new UsageError(
      `${flag} must be ISO-8601 with a time zone, e.g. 2026-11-22T10:00:00.123456Z (got "${text}")`,
    );
  }
  return text;
}

/** The documented `--json` shape of one version. */
export function toJson(version: Version) {
  return {
    operation: version.operation,
    commitTimestamp: version.commitTimestamp,
    transactionId: version.transactionId,
    changeSeq: version.changeSeq,
    oldRow: version.oldRow,
    newRow: version.newRow,
    changedColumns: version.changedColumns,
    context: version.context,
  };
}

function formatVersions(versions: readonly Version[]): string {
  if (versions.length === 0) return 'no history for that key\n';
  return versions.map(formatVersion).join('');
}

export function formatVersion(version: Version): string {
  const head = `${version.commitTimestamp}  ${version.operation.padEnd(8)} tx ${version.transactionId ?? '-'}${formatContext(version.context)}`;
  const lines = [head];
  if (version.operation === 'UPDATE') {
    for (const column of version.changedColumns ?? []) {
      lines.push(
        `    ${column}: ${stringifyRowJson(version.oldRow?.[column])} → ${stringifyRowJson(version.newRow?.[column])}`,
      );
    }
  } else {
    lines.push(`    ${stringifyRowJson(version.newRow ?? version.oldRow)}`);
  }
  return `${lines.join('\n')}\n`;
}

/** `  by alice (TICKET-7)`; the actor or the reason alone when only one is set. */
function formatContext(context: Version['context']): string {
  if (context === null) return '';
  const by = context.actor === null ? '' : `  by ${printable(context.actor)}`;
  const why = context.reason === null ? '' : ` (${printable(context.reason)})`;
  return by === '' && why === '' ? '  (context without actor or reason)' : `${by}${why}`;
}

/**
 * The application wrote these values: a newline or a terminal escape in them must not
 * forge output lines, so text with control characters is shown JSON-quoted.
 */
function printable(text: string): string {
  // eslint-disable-next-line no-control-regex -- control characters are what is looked for
  return /[\u0000-\u001f\u007f-\u009f]/.test(text) ? JSON.stringify(text) : text;
}

interface SchemaHistoryOptions extends TargetOptions {
  readonly config: string;
  readonly json?: boolean;
}

/**
 * `audit-trail history schema SCHEMA.TABLE`: every column added, dropped, renamed or
 * retyped on the table, oldest first (a table named `schema` is `public.schema` here).
 */
function registerSchemaHistory(history: Command): void {
  history
    .command('schema')
    .description('print the column changes (added, dropped, renamed, retyped) of a table')
    .argument('<table>', 'audited table as schema.table')
    // --config, the target options and --json are the history command's options.
    .action(async (table: string, _options: unknown, command: Command) => {
      const options = command.optsWithGlobals<SchemaHistoryOptions>();
      const config = await loadConfig(options.config);
      requireChangeHistory(config, 'history');
      const db = openTarget(targetConnection(options, config));
      try {
        const changes = await createHistory(db, { auditSchema: config.auditSchema }).schemaChanges(
          table,
        );
        process.stdout.write(
          options.json ? `${JSON.stringify(changes)}\n` : formatSchemaChanges(changes),
        );
      } catch (error) {
        if (error instanceof HistoryQueryError) throw new CliError(error.message);
        throw error;
      } finally {
        await db.destroy();
      }
    });
}

function formatSchemaChanges(changes: readonly SchemaChange[]): string {
  if (changes.length === 0) return 'no schema changes recorded for that table\n';
  return changes
    .map((change) => {
      const column = (definition: SchemaChange['before']) =>
        definition === null ? '-' : `${definition.name} ${definition.type}`;
      const where = change.sourceLsn === null ? '' : ` at or before LSN ${change.sourceLsn}`;
      return `${change.detectedAt}  ${change.change.padEnd(6)} ${column(change.before)} -> ${column(change.after)}  (seen by ${change.detectedBy}${where})\n`;
    })
    .join('');
}

import type { Command } from '@commander-js/extra-typings';
import { Option } from '@commander-js/extra-typings';
import type { HistoryPageOptions } from '../../history';
import { UsageError } from '../errors';
import {
  configOption,
  jsonOption,
  secretArnOption,
  targetArnOption,
  targetDatabaseOption,
  targetUrlOption,
} from '../options';
import { registerHistoryQueries } from './history-queries';

/**
 * `audit-trail history SCHEMA.TABLE KEY...`: every version of one row, oldest first,
 * or with `--as-of` the row as committed at that instant. `--limit N` / `--after CURSOR`
 * print one page; a full page ends with the `--after` cursor of the next on stderr.
 */
export function registerHistory(program: Command): void {
  const history = historyCommand(program);
  registerSchemaHistory(history);
  registerHistoryQueries(history);
}

/**
 * The `history` command, whose options its subcommands read (`optsWithGlobals`): its
 * type carries them, so a subcommand's options are typed from these definitions.
 */
export type HistoryCommand = ReturnType<typeof historyCommand>;

function historyCommand(program: Command) {
  return program
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
    .addOption(jsonOption())
    .option('--limit <n>', 'print at most N versions (a page; default 100 with --after)')
    .option(
      '--after <cursor>',
      'print the versions after this cursor (printed on stderr after a full page)',
    )
    .action(async (table, key, options) => {
      // The target's registry decides what has history, not the config: a table removed
      // from the config keeps its history, and so does an access-audit-only config's target.
      const { loadConfig } = await import('../../config/index.js');
      const { createHistory, historyCursor, rowAfter, stringifyRowJson } =
        await import('../../history/index.js');
      const { openTarget, targetConnection } = await import('../target.js');
      const { requireHistoryOnTarget } = await import('./history-target.js');
      const { formatVersions, jsonNullsLine, toJson } = await import('./history-format.js');
      const config = await loadConfig(options.config);
      const asOf = options.asOf === undefined ? undefined : parseInstant(options.asOf);
      const page = await pageOptions(options);
      if (asOf !== undefined && page !== undefined) {
        throw new UsageError('--as-of prints one row: it cannot be combined with --limit/--after');
      }
      const db = openTarget(targetConnection(options, config));
      try {
        await requireHistoryOnTarget(db, config);
        const history = createHistory(db, { auditSchema: config.auditSchema });
        if (asOf !== undefined) {
          // The row, as asOf answers; the text output also names its JSON-null columns
          // (the row shows them as null, as it shows SQL NULL). --json keeps its
          // documented shape: the row or null.
          const version = await history.versionAt(table, key, asOf);
          const row = rowAfter(version);
          process.stdout.write(`${stringifyRowJson(row, options.json ? undefined : 2)}\n`);
          if (!options.json && row !== null && version!.newRowJsonNulls.length > 0)
            process.stdout.write(`${jsonNullsLine(version!.newRowJsonNulls)}\n`);
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
      } finally {
        await db.destroy();
      }
    });
}

/** `--limit` / `--after` as a page of the history API, or undefined to print every version. */
async function pageOptions(
  options: HistoryPageFlags,
): Promise<(HistoryPageOptions & { readonly limit: number }) | undefined> {
  if (options.limit === undefined && options.after === undefined) return undefined;
  const { DEFAULT_HISTORY_PAGE, HistoryQueryError, parseHistoryCursor } =
    await import('../../history/index.js');
  const limit = options.limit === undefined ? DEFAULT_HISTORY_PAGE : Number(options.limit);
  if (!/^[1-9]\d*$/.test(options.limit ?? '1') || !Number.isSafeInteger(limit)) {
    throw new UsageError(`--limit must be a positive integer (got "${options.limit}")`);
  }
  if (options.after === undefined) return { limit };
  try {
    return { limit, after: parseHistoryCursor(options.after) };
  } catch (error) {
    if (error instanceof HistoryQueryError)
      throw new UsageError(`--${error.message}`, { code: error.code });
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

/** The paging flags of `history`, as commander parses them. */
interface HistoryPageFlags {
  readonly limit?: string | undefined;
  readonly after?: string | undefined;
}

/**
 * `audit-trail history schema SCHEMA.TABLE`: every column added, dropped, renamed or
 * retyped on the table, oldest first, and the partitions attached to or
 * detached from it (a table named `schema` is `public.schema` here).
 */
function registerSchemaHistory(history: HistoryCommand): void {
  history
    .command('schema')
    .description(
      'print the column changes (added, dropped, renamed, retyped) of a table, and the partitions attached to or detached from it',
    )
    .argument('<table>', 'audited table as schema.table')
    // --config, the target options and --json are the history command's options.
    .action(async (table, _options, command) => {
      const options = command.optsWithGlobals();
      const { loadConfig } = await import('../../config/index.js');
      const { createHistory } = await import('../../history/index.js');
      const { openTarget, targetConnection } = await import('../target.js');
      const { requireHistoryOnTarget } = await import('./history-target.js');
      const { formatSchemaChanges } = await import('./history-format.js');
      const config = await loadConfig(options.config);
      const db = openTarget(targetConnection(options, config));
      try {
        await requireHistoryOnTarget(db, config);
        const changes = await createHistory(db, { auditSchema: config.auditSchema }).schemaChanges(
          table,
        );
        process.stdout.write(
          options.json ? `${JSON.stringify(changes)}\n` : formatSchemaChanges(changes),
        );
      } finally {
        await db.destroy();
      }
    });
}

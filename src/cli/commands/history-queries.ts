import type { Command } from 'commander';
import { sql } from 'kysely';
import { loadConfig, requireChangeHistory } from '../../config';
import { createHistory, HistoryQueryError, stringifyRowJson, type History } from '../../history';
import type { Version } from '../../history';
import { CliError, UsageError } from '../errors';
import type { TargetOptions } from '../options';
import { openTarget, targetConnection } from '../target';
import { formatVersion, parseInstant, toJson } from './history';

/** Options every `history` subcommand reads from its parent (`--config`, the target, `--json`). */
interface HistoryParentOptions extends TargetOptions {
  readonly config: string;
  readonly json?: boolean;
}

/** The documented `--json` shape of a version in a listing that spans rows or tables. */
export function toListedJson(version: Version) {
  return { table: `${version.schema}.${version.table}`, key: version.key, ...toJson(version) };
}

/**
 * Opens the target's history API with the parent command's options, runs `work` and
 * closes the connection on every path; a history query error is a finding.
 */
export async function withHistory<T>(
  options: HistoryParentOptions,
  work: (history: History, target: TargetAccess) => Promise<T>,
): Promise<T> {
  const config = await loadConfig(options.config);
  requireChangeHistory(config, 'history');
  const db = openTarget(targetConnection(options, config));
  try {
    const access: TargetAccess = {
      async assertAudited(table) {
        const { rows } = await sql<{ found: number }>`
          SELECT count(*)::int AS found FROM ${sql.id(config.auditSchema, 'audited_table')}
           WHERE source_schema || '.' || source_table = ${table}`.execute(db);
        if (rows[0]?.found === 0)
          throw new CliError(`${table} is not an audited table on this target`);
      },
      async auditedTables() {
        const { rows } = await sql<{ name: string }>`
          SELECT source_schema || '.' || source_table AS name
            FROM ${sql.id(config.auditSchema, 'audited_table')} ORDER BY source_schema, source_table`.execute(
          db,
        );
        return rows.map((row) => row.name);
      },
    };
    return await work(createHistory(db, { auditSchema: config.auditSchema }), access);
  } catch (error) {
    if (error instanceof HistoryQueryError) throw new CliError(error.message);
    throw error;
  } finally {
    await db.destroy();
  }
}

/** What a command may ask the target besides the history API. */
export interface TargetAccess {
  /** Throws a finding when `table` (schema.table) has no history on this target. */
  assertAudited(table: string): Promise<void>;
  /** Every table with history on this target, as schema.table, sorted. */
  auditedTables(): Promise<string[]>;
}

/** Versions across rows or tables, one block per change, each headed by its table and key. */
function formatListed(versions: readonly Version[], empty: string): string {
  if (versions.length === 0) return `${empty}\n`;
  return versions
    .map(
      (version) =>
        `${version.schema}.${version.table} ${stringifyRowJson(version.key)}\n${indent(formatVersion(version))}`,
    )
    .join('');
}

function indent(text: string): string {
  return text
    .split('\n')
    .map((line) => (line === '' ? line : `  ${line}`))
    .join('\n');
}

function print(versions: readonly Version[], options: HistoryParentOptions, empty: string): void {
  process.stdout.write(
    options.json
      ? `${stringifyRowJson(versions.map(toListedJson))}\n`
      : formatListed(versions, empty),
  );
}

/**
 * `history transaction XID` (what did this source transaction change, across tables) and
 * `history changes TABLE --from --to` (every change of a table in a time range).
 */
export function registerHistoryQueries(history: Command): void {
  history
    .command('transaction')
    .description('print every change one source transaction made, across tables')
    .argument('<xid>', 'source transaction id (as in the history output)')
    .action(async (xid: string, _options: unknown, command: Command) => {
      if (!/^\d+$/.test(xid))
        throw new UsageError(`transaction id must be a whole number (got "${xid}")`);
      const options = command.optsWithGlobals<HistoryParentOptions>();
      const versions = await withHistory(options, (api) => api.transaction(xid));
      print(versions, options, `no changes recorded for transaction ${xid}`);
    });

  history
    .command('changes')
    .description('print every change of a table committed in [--from, --to), oldest first')
    .argument('<table>', 'audited table as schema.table')
    .requiredOption('--from <instant>', 'first commit instant included (ISO-8601 with zone)')
    .requiredOption('--to <instant>', 'first commit instant excluded (ISO-8601 with zone)')
    .option('--limit <n>', 'print at most this many changes')
    .action(
      async (
        table: string,
        own: { from: string; to: string; limit?: string },
        command: Command,
      ) => {
        const options = command.optsWithGlobals<HistoryParentOptions>();
        const from = parseInstant(own.from, '--from');
        const to = parseInstant(own.to, '--to');
        const limit = own.limit === undefined ? undefined : Number(own.limit);
        if (limit !== undefined && !(Number.isInteger(limit) && limit > 0))
          throw new UsageError('--limit must be a positive whole number');
        const versions = await withHistory(options, async (api, target) => {
          await target.assertAudited(table);
          return api.changesBetween(table, from, to, limit === undefined ? {} : { limit });
        });
        print(versions, options, `no changes of ${table} in that range`);
      },
    );
}

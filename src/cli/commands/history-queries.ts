import type { History, Version } from '../../history';
import { UsageError } from '../errors';
import type { TargetOptions } from '../options';
import { parseInstant, type HistoryCommand } from './history';
import type { TargetAccess } from './history-target';

/** Options every `history` subcommand reads from its parent (`--config`, the target, `--json`). */
interface HistoryParentOptions extends TargetOptions {
  readonly config: string;
  readonly json?: boolean;
}

/**
 * Opens the target's history API with the parent command's options, runs `work` and
 * closes the connection on every path; a history query error is a finding.
 */
export async function withHistory<T>(
  options: HistoryParentOptions,
  work: (history: History, target: TargetAccess) => Promise<T>,
): Promise<T> {
  const { loadConfig } = await import('../../config/index.js');
  const { createHistory } = await import('../../history/index.js');
  const { openTarget, targetConnection } = await import('../target.js');
  const { requireHistoryOnTarget, targetAccess } = await import('./history-target.js');
  const config = await loadConfig(options.config);
  const db = openTarget(targetConnection(options, config));
  try {
    await requireHistoryOnTarget(db, config);
    const access = targetAccess(db, config.auditSchema);
    return await work(createHistory(db, { auditSchema: config.auditSchema }), access);
  } finally {
    await db.destroy();
  }
}

async function print(
  versions: readonly Version[],
  options: HistoryParentOptions,
  empty: string,
): Promise<void> {
  const { formatListed, toListedJson } = await import('./history-format.js');
  const { stringifyRowJson } = await import('../../history/row-json.js');
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
export function registerHistoryQueries(history: HistoryCommand): void {
  history
    .command('transaction')
    .description('print every change one source transaction made, across tables')
    .argument('<xid>', 'source transaction id (as in the history output)')
    .action(async (xid, _options, command) => {
      if (!/^\d+$/.test(xid))
        throw new UsageError(`transaction id must be a whole number (got "${xid}")`);
      const options = command.optsWithGlobals();
      const versions = await withHistory(options, (api) => api.transaction(xid));
      await print(versions, options, `no changes recorded for transaction ${xid}`);
    });

  history
    .command('changes')
    .description('print every change of a table committed in [--from, --to), oldest first')
    .argument('<table>', 'audited table as schema.table')
    .requiredOption('--from <instant>', 'first commit instant included (ISO-8601 with zone)')
    .requiredOption('--to <instant>', 'first commit instant excluded (ISO-8601 with zone)')
    .option('--limit <n>', 'print at most this many changes')
    .action(async (table, own, command) => {
      const options = command.optsWithGlobals();
      const from = parseInstant(own.from, '--from');
      const to = parseInstant(own.to, '--to');
      const limit = own.limit === undefined ? undefined : Number(own.limit);
      if (limit !== undefined && !(Number.isInteger(limit) && limit > 0))
        throw new UsageError('--limit must be a positive whole number');
      const versions = await withHistory(options, async (api, target) => {
        await target.assertAudited(table);
        return api.changesBetween(table, from, to, limit === undefined ? {} : { limit });
      });
      await print(versions, options, `no changes of ${table} in that range`);
    });
}

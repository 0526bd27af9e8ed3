import type pg from 'pg';
import { quoteIdent, quoteQualified } from '../postgres/identifiers';
import { noProgress, type ProgressReporter } from '../support/progress';
import { faultPoint } from './fault-injection';
import type { EngineLogger } from './logger';
import type { StagingTable } from './staging-tables';
import type { StagingWriter } from './staging-writer';

/** Options for {@link copyInitialLoad}. */
export interface InitialLoadOptions {
  /** Source connection, not in a transaction. */
  readonly source: pg.ClientBase;
  /** Snapshot exported by the slot's creation. */
  readonly snapshotName: string;
  /**
   * Commit time stamped on full-load rows (`timestamp(6)` text, UTC): the source clock
   * just before the slot was created, so it precedes every streamed change.
   */
  readonly snapshotTime: string;
  /** Writer on the target, inside the open target transaction. */
  readonly writer: StagingWriter;
  readonly tables: readonly StagingTable[];
  readonly logger: EngineLogger;
  /**
   * Rows copied, per table: a bar per table on the CLI's terminal, a `progress` log
   * record now and then off one. @default {@link noProgress}
   */
  readonly progress?: ProgressReporter;
  /** Rows fetched per round trip. @default 5000 */
  readonly fetchSize?: number;
  /** Polled between batches: when it returns true the load is abandoned (and rolled back by the caller). @default never */
  readonly shouldStop?: () => boolean;
  /** Whether a row read is written (false: staging has it from applied changes). @default all */
  readonly copies?: (table: StagingTable, values: readonly (string | null)[]) => boolean;
}

/** The initial load was abandoned because the engine was asked to stop. */
export class InitialLoadStopped extends Error {
  override readonly name = 'InitialLoadStopped';
}

/**
 * Copies every audited table as it was in the slot's exported snapshot into staging as
 * full-load rows (empty change sequence and stream position, copy time as commit
 * time), so CDC from the slot's consistent point continues with no gap and no overlap.
 * Reads through a cursor: memory stays bounded whatever the table size.
 * @returns rows copied per table.
 */
export async function copyInitialLoad(
  options: InitialLoadOptions,
): Promise<Record<string, number>> {
  const { source, writer, logger } = options;
  const fetchSize = options.fetchSize ?? 5000;
  const copied: Record<string, number> = {};
  await source.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
  try {
    await source.query(`SET TRANSACTION SNAPSHOT ${quoteLiteralSnapshot(options.snapshotName)}`);
    const copyTime = options.snapshotTime;
    for (const table of options.tables) {
      const name = `${table.source.schema}.${table.source.table}`;
      const sourceName = quoteQualified(table.source.schema, table.source.table);
      const { rows: counted } = await source.query<{ count: string }>(
        `SELECT count(*) AS count FROM ${sourceName}`,
      );
      const total = Number(counted[0]?.count ?? 0);
      logger.log('info', 'initial load started', { table: name, total });
      const columnList = table.columns.map((column) => quoteIdent(column.name)).join(', ');
      await source.query(
        `DECLARE audit_trail_load NO SCROLL CURSOR FOR SELECT ${columnList} FROM ${sourceName}`,
      );
      const task = (options.progress ?? noProgress).start(`initial load ${name}`, total);
      let done = 0;
      try {
        for (;;) {
          const { rows } = await source.query<Record<string, string | null>>({
            text: `FETCH ${fetchSize} FROM audit_trail_load`,
            rowMode: 'array',
          } as pg.QueryConfig);
          if (rows.length === 0) break;
          if (options.shouldStop?.())
            throw new InitialLoadStopped('initial load stopped before it completed');
          for (const row of rows as unknown as (string | null)[][]) {
            if (options.copies && !options.copies(table, row)) continue;
            await writer.add({
              kind: 'load',
              table,
              values: row,
              oldKey: null,
              headers: {
                commitTimestamp: copyTime,
                changeSeq: '',
                transactionId: '',
                streamPosition: '',
              },
            });
          }
          await writer.flush();
          done += rows.length;
          task.advance(rows.length);
          faultPoint('load-batch');
        }
      } finally {
        task.done();
      }
      await source.query('CLOSE audit_trail_load');
      copied[name] = done;
      logger.log('info', 'initial load copied', { table: name, rows: done, total });
    }
    await source.query('COMMIT');
  } catch (error) {
    await source.query('ROLLBACK').catch(() => undefined);
    throw error;
  }
  return copied;
}

/** Snapshot names are server generated (`00000003-00000002-1`); checked, then quoted. */
function quoteLiteralSnapshot(name: string): string {
  if (!/^[0-9A-Fa-f-]+$/.test(name)) throw new Error(`unexpected snapshot name ${name}`);
  return `'${name}'`;
}

import { sql, type Kysely } from 'kysely';
import { CONTEXT_TRANSACTION_COLUMN } from '../config';
import { AuditContextError } from './errors';
import type { SourceContextLike } from './write-context';

/** Options for {@link pruneAuditContext}. */
export interface PruneAuditContextOptions {
  /**
   * Delete the context rows recorded (`recorded_at`, the writing transaction's start
   * time) before this instant: a `Date`, or text PostgreSQL reads as `timestamptz`
   * (`'2026-09-01T00:00:00Z'`).
   */
  readonly olderThan: Date | string;
  /** Rows deleted per statement; each batch commits on its own. @default 10000 */
  readonly batchSize?: number;
}

/** What {@link pruneAuditContext} did. */
export interface PruneAuditContextReport {
  /** Context rows deleted. */
  readonly deleted: number;
  /** DELETE statements run (each its own source transaction). */
  readonly batches: number;
}

const MAX_BATCH = 1_000_000;

/**
 * Retention for the source context table, which gets one row per transaction that sets
 * context and otherwise grows forever: deletes the rows recorded before `olderThan`, in
 * batches of `batchSize` in primary-key order, each batch its own transaction (short
 * locks, small source transactions for DMS or the engine to carry).
 *
 * History keeps the context of old versions: a version finds its context through the
 * context row's INSERT in the audit log, which a later DELETE does not change. The
 * DELETEs travel like any change, so the target records one DELETE version per pruned
 * row (evidence that the rows were pruned, and by which transaction). The rows are in
 * the target's history once DMS or the engine has carried their INSERT, which the
 * source's WAL order guarantees before it carries the DELETE.
 *
 * Run it as a role with DELETE on the context table (the application roles of
 * `grantInsertTo` have INSERT only), on a `Kysely`, not inside a transaction (a
 * transaction would hold every batch until it ends).
 *
 * @example
 * ```ts
 * // keep a year of context rows on the source; history keeps them all
 * const { deleted } = await pruneAuditContext(db, config, {
 *   olderThan: new Date(Date.now() - 365 * 24 * 3600 * 1000),
 * });
 * ```
 */
export async function pruneAuditContext(
  db: Kysely<any>, // eslint-disable-line @typescript-eslint/no-explicit-any -- any schema
  config: SourceContextLike,
  options: PruneAuditContextOptions,
): Promise<PruneAuditContextReport> {
  const settings = config.sourceContext;
  if (settings === undefined) {
    throw new AuditContextError(
      'the config has no "sourceContext": there is no context table to prune',
      { code: 'SOURCE_CONTEXT_NOT_CONFIGURED', kind: 'usage' },
    );
  }
  const olderThan = instantText(options.olderThan);
  const batchSize = options.batchSize ?? 10_000;
  if (!Number.isSafeInteger(batchSize) || batchSize < 1 || batchSize > MAX_BATCH) {
    throw new AuditContextError(
      `pruneAuditContext: batchSize must be an integer from 1 to ${MAX_BATCH} (got ${String(batchSize)})`,
      { code: 'AUDIT_CONTEXT_INVALID', kind: 'usage' },
    );
  }
  const table = sql.id(settings.schema ?? 'audit_context', settings.table ?? 'transaction_context');
  const id = sql.id(CONTEXT_TRANSACTION_COLUMN);
  let deleted = 0;
  let batches = 0;
  // Keyset: each batch starts after the last id the previous one deleted.
  let after = '-1';
  for (;;) {
    const { rows } = await sql<{ id: string }>`
      DELETE FROM ${table} WHERE ${id} IN (
        SELECT ${id} FROM ${table}
         WHERE ${id} > ${after}::bigint AND recorded_at < ${olderThan}::timestamptz
         ORDER BY ${id} LIMIT ${batchSize})
      RETURNING ${id}::text AS id`.execute(db);
    batches += 1;
    deleted += rows.length;
    if (rows.length < batchSize) return { deleted, batches };
    after = rows.reduce((max, row) => (BigInt(row.id) > BigInt(max) ? row.id : max), after);
  }
}

function instantText(value: Date | string): string {
  if (value instanceof Date) {
    if (Number.isNaN(value.getTime())) {
      throw new AuditContextError('pruneAuditContext: olderThan is an invalid Date', {
        code: 'AUDIT_CONTEXT_INVALID',
        kind: 'usage',
      });
    }
    return value.toISOString();
  }
  if (typeof value !== 'string' || value.trim() === '') {
    throw new AuditContextError('pruneAuditContext: olderThan must be a Date or a timestamp text', {
      code: 'AUDIT_CONTEXT_INVALID',
      kind: 'usage',
    });
  }
  return value;
}

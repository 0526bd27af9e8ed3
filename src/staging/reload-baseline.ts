import type pg from 'pg';
import { quoteQualified } from '../postgres/identifiers';

/**
 * The prior baseline of tables added back to the config (#17 item 19), one row per key
 * whose newest audit version is live: `migrate` takes it from the audit log when a
 * table comes back, and the capture triggers hold each full-load row of the reload
 * against it (triggers/capture-change.sql).
 */
export const RELOAD_BASELINE_TABLE = 'reload_baseline';

/**
 * Ends the reload of a table added back to the config once its load is complete:
 * records a DELETE for each key of the prior baseline that the load did not copy (the
 * source deleted it while the table was out), stamped with the load's copy time, and
 * forgets the baseline. When each row went is not known, only that it was before the
 * load: the DELETEs are stamped with the load's earliest copy time (or `notAfter` when
 * earlier; with neither, the current time). A no-op when no reload of the table is
 * pending, so running it
 * again, or after the first captured change already ended the reload, changes nothing.
 *
 * The local engine calls it in the transaction that commits the load; with DMS, the
 * first change DMS applies to the table after its load ends the reload, or the
 * operator runs `audit-trail reload finish` (DMS gives the target no end-of-load signal).
 * @param notAfter the latest time the DELETEs may carry (the engine: its load's snapshot
 *   time), as `timestamp(6)` text in UTC
 * @returns the number of DELETE versions recorded
 * @example
 * await finishReload(client, 'audit', { schema: 'public', table: 'orders' });
 */
export async function finishReload(
  client: pg.ClientBase,
  auditSchema: string,
  source: { readonly schema: string; readonly table: string },
  notAfter?: string,
): Promise<number> {
  const { rows } = await client.query<{ deleted: number }>(
    `SELECT ${quoteQualified(auditSchema, 'finish_reload')}($1, $2, $3::timestamp(6)) AS deleted`,
    [source.schema, source.table, notAfter ?? null],
  );
  return Number(rows[0]?.deleted ?? 0);
}

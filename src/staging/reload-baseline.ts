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

/** Where the reload of a table added back stands (see {@link reloadState}). */
export interface ReloadState {
  /** Keys the history holds live that no load has copied yet: each gets a DELETE at its end. */
  readonly baselineKeys: number;
  /** Rows the reload's load has copied so far (keys of the prior baseline and new ones). */
  readonly copiedRows: number;
}

/**
 * The pending reload of a table added back to the config, or `undefined` when none is
 * pending. A reload whose load has copied no row is not ended by a change (a DMS task
 * running CDC only copies nothing), and `audit-trail reload finish` ends it only when
 * told that every row is gone: `verify` reports it either way.
 * @example
 * const state = await reloadState(client, 'audit', { schema: 'public', table: 'orders' });
 * // { baselineKeys: 3, copiedRows: 0 }: no load yet
 */
export async function reloadState(
  client: pg.ClientBase,
  auditSchema: string,
  source: { readonly schema: string; readonly table: string },
): Promise<ReloadState | undefined> {
  // pg_catalog.count: count(reloaded_at) is count("any"), which a public.count(timestamp)
  // planted by any role (PostgreSQL 13 and 14) matches exactly: counting a copy that never
  // came would let `reload finish` record DELETEs for rows the source still has.
  const { rows } = await client.query<{ baseline: number; copied: number }>(
    `SELECT pg_catalog.count(*) FILTER (WHERE reloaded_at IS NULL)::int AS baseline,
            pg_catalog.count(reloaded_at)::int AS copied
       FROM ${quoteQualified(auditSchema, RELOAD_BASELINE_TABLE)}
      WHERE source_schema = $1 AND source_table = $2`,
    [source.schema, source.table],
  );
  const { baseline = 0, copied = 0 } = rows[0] ?? {};
  return baseline + copied === 0 ? undefined : { baselineKeys: baseline, copiedRows: copied };
}

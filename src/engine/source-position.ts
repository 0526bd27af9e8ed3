import type pg from 'pg';
import { parseLsn, type Lsn } from './lsn';

/** The source's clock in the form staging stores commit times (UTC, microseconds). */
const SOURCE_CLOCK_SQL = "SELECT (clock_timestamp() AT TIME ZONE 'UTC')::timestamp(6)::text AS now";

/**
 * The source's clock now, as staging stores commit times (`timestamp(6)` text, UTC).
 * Read before a slot is created, it precedes the commit of every change the slot streams.
 */
export async function readSourceClock(source: pg.ClientBase): Promise<string> {
  const { rows } = await source.query<{ now: string }>(SOURCE_CLOCK_SQL);
  return rows[0]!.now;
}

/** Where the source is writing WAL now: how far "everything committed so far" reaches. */
export async function currentInsertLsn(source: pg.ClientBase): Promise<Lsn> {
  const { rows } = await source.query<{ lsn: string }>(
    'SELECT pg_current_wal_insert_lsn()::text AS lsn',
  );
  return parseLsn(rows[0]!.lsn);
}

import { sql, type Kysely, type Migration } from 'kysely';
import { CONTEXT_TRANSACTION_COLUMN } from '../../src/config/source-context';
import { quoteQualified } from '../../src/postgres/identifiers';
import { refuseInvalidIndex } from './invalid-index';

/** The index {@link contextRowIndexMigration} creates. */
export const CONTEXT_ROW_INDEX = 'audit_log_context_row_idx';

/**
 * Every version the history API returns looks up the context row its source transaction
 * wrote: an INSERT into the source context table with the same source xid and commit
 * time. Through `audit_log_transaction_idx` that lookup read every row of the
 * transaction from the heap to find the one context row, for each version of a page.
 * This index holds only the rows that can be context rows (INSERT versions keyed by a
 * `transaction_id` column, the context table's key), in the order the lookup asks: by
 * xid and commit time, then id (the first recorded row wins). The capture path only
 * evaluates the predicate for other rows; the index grows by one entry per source
 * transaction that sets context.
 *
 * `IF NOT EXISTS`, and an invalid index refused, as in 0011: on a big log the README has
 * the operator build it CONCURRENTLY before migrate, and this keeps it.
 */
export function contextRowIndexMigration(auditSchema: string): Migration {
  return {
    async up(db: Kysely<unknown>) {
      const index = quoteQualified(auditSchema, CONTEXT_ROW_INDEX);
      await refuseInvalidIndex(db, index);
      await sql`CREATE INDEX IF NOT EXISTS ${sql.id(CONTEXT_ROW_INDEX)}
        ON ${sql.id(auditSchema, 'audit_log')} (transaction_id, commit_timestamp, id)
        WHERE operation = 'INSERT' AND row_key ? ${sql.lit(CONTEXT_TRANSACTION_COLUMN)}`.execute(
        db,
      );
    },
  };
}

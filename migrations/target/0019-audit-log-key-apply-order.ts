import { sql, type Kysely, type Migration } from 'kysely';
import { quoteQualified } from '../../src/postgres/identifiers';
import { refuseInvalidIndex } from './invalid-index';

/** The per-key index {@link auditLogKeyApplyOrderMigration} creates. */
export const KEY_APPLY_ORDER_INDEX = 'audit_log_key_apply_order_idx';

/**
 * The per-key history index in apply order. The history API reads one key's versions by
 * audit id (the order they were applied, #17), but 0006's index held them by commit time
 * and change sequence: every page, and every `asOf`, read all of a key's versions (up to
 * the instant), looked up each one's context, and sorted them, to return 100 or one.
 * Here a key's entries are in id order, so a page is an index range that stops at its
 * limit, and `versionAt` walks back from the newest. `commit_timestamp` is a key column
 * after `id` so that `versionAt`'s `commit_timestamp <= instant` is checked in the index
 * instead of on each newer version fetched from the table. It replaces 0006's index
 * (the audit log keeps four btrees, and each entry is smaller: no change sequence).
 *
 * What else read 0006's index: only its `(source_schema, source_table)` prefix, which
 * this one has too (`latest`, `verify`, `migrate`'s newest version per key scan the
 * table's rows and sort by key themselves).
 *
 * `IF NOT EXISTS`, an invalid index refused, as in 0011: on a big log the README has the
 * operator build it CONCURRENTLY before migrate, and this keeps it.
 */
export function auditLogKeyApplyOrderMigration(auditSchema: string): Migration {
  return {
    async up(db: Kysely<unknown>) {
      await refuseInvalidIndex(db, quoteQualified(auditSchema, KEY_APPLY_ORDER_INDEX));
      await sql`CREATE INDEX IF NOT EXISTS ${sql.id(KEY_APPLY_ORDER_INDEX)}
        ON ${sql.id(auditSchema, 'audit_log')}
        (source_schema, source_table, jsonb_hash_extended(row_key, 0), id, commit_timestamp)`.execute(
        db,
      );
      await sql`DROP INDEX IF EXISTS ${sql.id(auditSchema, 'audit_log_key_hash_history_idx')}`.execute(
        db,
      );
    },
  };
}

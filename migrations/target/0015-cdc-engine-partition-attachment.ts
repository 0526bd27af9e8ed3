import { sql, type Kysely, type Migration } from 'kysely';
import { LOADED_PARTITION_TABLE } from '../../src/engine/partition-loading';

/**
 * Which attachment of a leaf partition the engine loaded, and when it found the leaf
 * detached (src/engine/partition-loading.ts, `leafAttachment`):
 * - `attachment`: the leaf's oid and the xmin of its `pg_inherits` row. DETACH deletes
 *   that row and ATTACH inserts a new one, so a partition detached and attached again
 *   (its rows may have changed meanwhile, unseen by any stream) has another value and
 *   is never taken as loaded. NULL for leaves recorded before this migration: the next
 *   start records what it finds;
 * - `detached_at`: when the engine first found the leaf no longer attached (it says so
 *   once).
 */
export function cdcEnginePartitionAttachmentMigration(auditSchema: string): Migration {
  return {
    async up(db: Kysely<unknown>) {
      await sql`ALTER TABLE ${sql.id(auditSchema, LOADED_PARTITION_TABLE)}
        ADD COLUMN attachment text,
        ADD COLUMN detached_at timestamptz`.execute(db);
    },
  };
}

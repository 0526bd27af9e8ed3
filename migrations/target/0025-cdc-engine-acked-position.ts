import { sql, type Kysely, type Migration } from 'kysely';
import { POSITION_TABLE } from '../../src/engine/position-store';

/**
 * The position the engine last told its replication slot, when past the last applied
 * commit (an idle engine's keepalive acknowledgement). The engine records it before
 * telling the slot, so the slot is never confirmed past what the target records, and a
 * slot found past it means a target behind its slot (restored from a backup).
 *
 * Nullable without a default: a row written before it (by an older engine, which told
 * the slot positions it did not record) holds NULL, which the engine does not refuse.
 */
export function cdcEngineAckedPositionMigration(auditSchema: string): Migration {
  return {
    async up(db: Kysely<unknown>) {
      await sql`ALTER TABLE ${sql.id(auditSchema, POSITION_TABLE)}
        ADD COLUMN acked_lsn pg_lsn`.execute(db);
    },
  };
}

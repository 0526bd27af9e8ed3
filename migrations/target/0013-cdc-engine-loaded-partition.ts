import { sql, type Kysely, type Migration } from 'kysely';
import { LOADED_PARTITION_TABLE } from '../../src/engine/partition-loading';
import { POSITION_TABLE } from '../../src/engine/position-store';

/**
 * Which leaf partitions of each audited partitioned table the local engine has loaded,
 * per slot: a table attached as a partition later is loaded with the rows it held
 * then, consistently with the running stream (src/engine/partition-loading.ts).
 *
 * A slot from before this migration recorded no partitions; `leaves_recorded` false
 * says so, and its next start takes the leaves it finds as loaded (their rows went
 * through the partitioned table's load, or were reported by verify).
 */
export function cdcEngineLoadedPartitionMigration(auditSchema: string): Migration {
  return {
    async up(db: Kysely<unknown>) {
      const table = sql.id(auditSchema, LOADED_PARTITION_TABLE);
      await sql`CREATE TABLE ${table} (
        slot_name text NOT NULL,
        source_schema text NOT NULL,
        source_table text NOT NULL,
        partition_schema text NOT NULL,
        partition_name text NOT NULL,
        loaded_at timestamptz NOT NULL DEFAULT now(),
        PRIMARY KEY (slot_name, partition_schema, partition_name)
      )`.execute(db);
      await sql`REVOKE ALL ON ${table} FROM PUBLIC`.execute(db);
      const position = sql.id(auditSchema, POSITION_TABLE);
      await sql`ALTER TABLE ${position}
        ADD COLUMN leaves_recorded boolean NOT NULL DEFAULT false`.execute(db);
      await sql`ALTER TABLE ${position} ALTER COLUMN leaves_recorded SET DEFAULT true`.execute(db);
    },
  };
}

import { sql, type Kysely, type Migration } from 'kysely';
import { PARTITION_CHANGE_TABLE, schemaChangeIds } from '../../src/engine/partition-changes';
import { LOADED_PARTITION_TABLE } from '../../src/engine/partition-loading';

/**
 * The schema-change log's partition entries (#17 item 21): a leaf partition attached to
 * or detached from an audited partitioned table, as the local engine sees it.
 * - `partition_change`: which leaf, ATTACH or DETACH, its bound (`pg_get_expr` of
 *   `relpartbound`: `FOR VALUES IN ('US')`, `DEFAULT`; NULL when not known), and the
 *   source WAL position it committed at or before. Append-only
 *   (triggers/schema-change-log.sql). Its ids come from `schema_change`'s sequence, so
 *   one id orders column and partition changes in the order they were seen;
 * - `cdc_engine_loaded_partition.bound`: the bound of the attachment a slot loaded, so
 *   a DETACH (after which the catalog has none) is logged with it. NULL for leaves
 *   recorded before this migration until the engine's next start records it.
 */
export function partitionChangeMigration(auditSchema: string): Migration {
  return {
    async up(db: Kysely<unknown>) {
      const table = sql.id(auditSchema, PARTITION_CHANGE_TABLE);
      const ids = await schemaChangeIds(db, auditSchema);
      await sql`CREATE TABLE ${table} (
        id bigint PRIMARY KEY DEFAULT nextval(${sql.lit(ids)}::regclass),
        source_schema text NOT NULL,
        source_table text NOT NULL,
        partition_schema text NOT NULL,
        partition_name text NOT NULL,
        change text NOT NULL CHECK (change IN ('ATTACH', 'DETACH')),
        bound text,
        -- The attachment (leaf oid / xmin of its pg_inherits row) attached or detached: one
        -- event is logged once, whoever sees it again.
        attachment text,
        source_lsn pg_lsn,
        commit_timestamp timestamptz(6),
        detected_by text NOT NULL CHECK (detected_by IN ('migrate', 'engine')),
        slot_name text,
        detected_at timestamptz(6) NOT NULL DEFAULT clock_timestamp(),
        UNIQUE (source_schema, source_table, partition_schema, partition_name, change, attachment)
      )`.execute(db);
      await sql`CREATE INDEX partition_change_table_idx ON ${table}
        (source_schema, source_table, id)`.execute(db);
      await sql`REVOKE ALL ON ${table} FROM PUBLIC`.execute(db);
      await sql`ALTER TABLE ${sql.id(auditSchema, LOADED_PARTITION_TABLE)}
        ADD COLUMN bound text`.execute(db);
    },
  };
}

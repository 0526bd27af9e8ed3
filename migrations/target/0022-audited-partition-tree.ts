import { sql, type Kysely, type Migration } from 'kysely';
import { AUDITED_PARTITION_TREE_TABLE } from '../../src/migrate/partition-log';

/**
 * `audited_partition_tree`: the leaf partitions of each audited table as `migrate` last
 * saw them on the source (schema, name, attachment and bound), so that a later run logs
 * the partitions attached and detached since in the schema-change log
 * (`partition_change`, detected by `migrate`): the AWS DMS path's partition entries
 * (src/migrate/partition-log.ts). A table without a row has no baseline yet: its next
 * migrate records the leaves it finds and logs none of them (they are the table as it
 * was first audited, or as it was when this migration was applied).
 */
export function auditedPartitionTreeMigration(auditSchema: string): Migration {
  return {
    async up(db: Kysely<unknown>) {
      const table = sql.id(auditSchema, AUDITED_PARTITION_TREE_TABLE);
      await sql`CREATE TABLE ${table} (
        source_schema text NOT NULL,
        source_table text NOT NULL,
        -- [{"schema", "name", "attachment", "bound"}], one per leaf partition (none for a
        -- table that is not partitioned).
        leaves jsonb NOT NULL,
        seen_at timestamptz(6) NOT NULL DEFAULT clock_timestamp(),
        PRIMARY KEY (source_schema, source_table)
      )`.execute(db);
      await sql`REVOKE ALL ON ${table} FROM PUBLIC`.execute(db);
    },
  };
}

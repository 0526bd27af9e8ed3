import { sql, type Kysely, type Migration } from 'kysely';

/**
 * The schema-change log and what it is computed from:
 * - `schema_change`: one row per column added, dropped, renamed or retyped on an audited
 *   source table, with the column's definition before and after, and when it was seen
 *   (the source WAL position it happened at or before; the commit time where the engine
 *   knows it). Append-only (triggers/schema-change-log.sql);
 * - `audited_column`: the source columns of each audited table as migrate last saw them,
 *   by `attnum` (stable across RENAME), so a rename is not taken for a drop plus an add.
 * Installs from before this migration have no baseline: their first run compares staging
 * with the source by name.
 */
export function schemaChangeLogMigration(auditSchema: string): Migration {
  return {
    async up(db: Kysely<unknown>) {
      await sql`CREATE TABLE ${sql.id(auditSchema, 'schema_change')} (
        id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        source_schema text NOT NULL,
        source_table text NOT NULL,
        change text NOT NULL CHECK (change IN ('ADD', 'DROP', 'RENAME', 'RETYPE')),
        -- The column's name after the change (before it, for DROP).
        column_name text NOT NULL,
        -- {"name", "type", "attnum"}: NULL before an ADD and after a DROP.
        old_definition jsonb,
        new_definition jsonb,
        -- The source WAL position the change happened at or before, and its commit time
        -- where known (the engine sees it in the stream; migrate only bounds it).
        source_lsn pg_lsn,
        commit_timestamp timestamptz(6),
        detected_by text NOT NULL CHECK (detected_by IN ('migrate', 'engine')),
        detected_at timestamptz(6) NOT NULL DEFAULT clock_timestamp()
      )`.execute(db);
      await sql`CREATE INDEX schema_change_table_idx ON ${sql.id(auditSchema, 'schema_change')}
        (source_schema, source_table, id)`.execute(db);
      await sql`CREATE TABLE ${sql.id(auditSchema, 'audited_column')} (
        source_schema text NOT NULL,
        source_table text NOT NULL,
        attnum smallint NOT NULL,
        name text NOT NULL,
        type text NOT NULL,
        PRIMARY KEY (source_schema, source_table, attnum)
      )`.execute(db);
      for (const table of ['schema_change', 'audited_column']) {
        await sql`REVOKE ALL ON ${sql.id(auditSchema, table)} FROM PUBLIC`.execute(db);
      }
    },
  };
}

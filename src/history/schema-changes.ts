import { sql, type Kysely } from 'kysely';
import { SCHEMA_CHANGE_POSITION_TABLE } from '../engine/schema-change-positions';
import { parseRowJson } from './row-json';

/** A source column as the schema-change log records it. */
export interface SchemaColumn {
  readonly name: string;
  /** The column's type as staging holds it (`format_type`; source-only types are `text`). */
  readonly type: string;
  /** The source `pg_attribute.attnum`: one column keeps it across renames. Null when unknown. */
  readonly attnum: number | null;
  /**
   * ADD only: the value the rows that existed then got in the new column (null for SQL
   * NULL, a constant default's value otherwise), as history records values. No version
   * records it (the source wrote no change); versions from before the ADD do not have
   * the column at all (an absent key, which is not SQL NULL).
   */
  readonly existingRows?: unknown;
}

/** One column added, dropped, renamed or retyped on an audited source table. */
export interface SchemaChange {
  /** Log id: increases in the order changes were seen. */
  readonly id: string;
  readonly schema: string;
  readonly table: string;
  readonly change: 'ADD' | 'DROP' | 'RENAME' | 'RETYPE';
  /** The column's name after the change (before it, for DROP). */
  readonly column: string;
  /** The column before the change; null for ADD. */
  readonly before: SchemaColumn | null;
  /** The column after the change; null for DROP. */
  readonly after: SchemaColumn | null;
  /**
   * Source WAL position the change committed at or before (null when unknown). Where the
   * local engine applied the table's changes across it: the commit LSN of the first
   * source transaction written in the new shape (the change committed in that
   * transaction or before it, after every change in the old shape); otherwise the
   * source's position when `migrate` saw it (an upper bound, as with AWS DMS).
   */
  readonly sourceLsn: string | null;
  /**
   * Commit time (ISO-8601 UTC, µs) of the source transaction at `sourceLsn` where the
   * engine saw it: the first one in the new shape. Null where only migrate's bound is known.
   */
  readonly commitTimestamp: string | null;
  /** `migrate` (found comparing the source with staging) or `engine` (seen in the stream). */
  readonly detectedBy: 'migrate' | 'engine';
  /** When the kit saw it, ISO-8601 UTC. */
  readonly detectedAt: string;
}

interface SchemaChangeRow {
  id: string;
  source_schema: string;
  source_table: string;
  change: SchemaChange['change'];
  column_name: string;
  old_definition: string | null;
  new_definition: string | null;
  source_lsn: string | null;
  commit_timestamp: string | null;
  detected_by: SchemaChange['detectedBy'];
  detected_at: string;
}

const isoUtc = (column: string) =>
  sql.raw(`to_char(${column} AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')`);

/** Every logged column change of one source table, oldest first. */
export async function readSchemaChanges(
  db: Kysely<any>, // eslint-disable-line @typescript-eslint/no-explicit-any -- any database: the audit schema is reached by name
  auditSchema: string,
  schema: string,
  table: string,
): Promise<SchemaChange[]> {
  // The engine's position is a row of its own: the log is append-only, and migrate writes
  // an entry before the engine can apply anything in its new shape.
  const { rows } = await sql<SchemaChangeRow>`
    SELECT c.id::text AS id, c.source_schema, c.source_table, c.change, c.column_name,
           c.old_definition::text AS old_definition, c.new_definition::text AS new_definition,
           coalesce(p.commit_lsn, c.source_lsn)::text AS source_lsn,
           ${isoUtc('coalesce(p.commit_timestamp, c.commit_timestamp)')} AS commit_timestamp,
           c.detected_by, ${isoUtc('c.detected_at')} AS detected_at
    FROM ${sql.id(auditSchema, 'schema_change')} AS c
    LEFT JOIN ${sql.id(auditSchema, SCHEMA_CHANGE_POSITION_TABLE)} AS p
      ON p.schema_change_id = c.id AND p.commit_lsn IS NOT NULL
    WHERE c.source_schema = ${schema} AND c.source_table = ${table}
    ORDER BY c.id`.execute(db);
  return rows.map((row) => ({
    id: row.id,
    schema: row.source_schema,
    table: row.source_table,
    change: row.change,
    column: row.column_name,
    // Parsed losslessly, as row documents are (a default of 1.50 stays 1.50).
    before: definitionOf(row.old_definition),
    after: definitionOf(row.new_definition),
    sourceLsn: row.source_lsn,
    commitTimestamp: row.commit_timestamp,
    detectedBy: row.detected_by,
    detectedAt: row.detected_at,
  }));
}

function definitionOf(json: string | null): SchemaColumn | null {
  return json === null ? null : (parseRowJson(json) as unknown as SchemaColumn);
}

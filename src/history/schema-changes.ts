import { sql, type Kysely } from 'kysely';
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
  /** Source WAL position the change happened at or before (null when unknown). */
  readonly sourceLsn: string | null;
  /** Source commit time of the change, ISO-8601 UTC, where known (the engine sees it). */
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
  const { rows } = await sql<SchemaChangeRow>`
    SELECT id::text AS id, source_schema, source_table, change, column_name,
           old_definition::text AS old_definition, new_definition::text AS new_definition,
           source_lsn::text AS source_lsn,
           ${isoUtc('commit_timestamp')} AS commit_timestamp, detected_by,
           ${isoUtc('detected_at')} AS detected_at
    FROM ${sql.id(auditSchema, 'schema_change')}
    WHERE source_schema = ${schema} AND source_table = ${table}
    ORDER BY id`.execute(db);
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

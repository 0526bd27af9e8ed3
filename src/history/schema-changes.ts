import { sql, type Kysely } from 'kysely';
import { PARTITION_CHANGE_TABLE } from '../engine/partition-changes';
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
  /**
   * ADD only: true when `existingRows` is null because the rows got a `jsonb` column's
   * JSON `null` literal (`DEFAULT 'null'`), not SQL NULL; absent otherwise.
   */
  readonly existingRowsJsonNull?: true;
}

/** When and by whom a schema change was seen: what every entry of the log carries. */
interface LoggedChange {
  /** Log id: increases in the order changes were seen (column and partition changes alike). */
  readonly id: string;
  readonly schema: string;
  readonly table: string;
  /**
   * Source WAL position the change committed at or before (null when unknown). For a
   * column change, where the local engine applied the table's changes across it: the
   * commit LSN of the first source transaction written in the new shape (the change
   * committed in that transaction or before it, after every change in the old shape);
   * otherwise the source's position when `migrate` saw it (an upper bound, as with AWS
   * DMS). For a partition change, the source's position when the engine found it (an
   * upper bound).
   */
  readonly sourceLsn: string | null;
  /**
   * Commit time (ISO-8601 UTC, µs) of the source transaction at `sourceLsn` where the
   * engine saw it: the first one in the new shape. Null where only a bound is known
   * (always, for a partition change: an ATTACH or DETACH writes no row change).
   */
  readonly commitTimestamp: string | null;
  /** `migrate` (found comparing the source with staging) or `engine` (seen in the stream). */
  readonly detectedBy: 'migrate' | 'engine';
  /** When the kit saw it, ISO-8601 UTC. */
  readonly detectedAt: string;
}

/** One column added, dropped, renamed or retyped on an audited source table. */
export interface ColumnSchemaChange extends LoggedChange {
  readonly change: 'ADD' | 'DROP' | 'RENAME' | 'RETYPE';
  /** The column's name after the change (before it, for DROP). */
  readonly column: string;
  /** The column before the change; null for ADD. */
  readonly before: SchemaColumn | null;
  /** The column after the change; null for DROP. */
  readonly after: SchemaColumn | null;
}

/**
 * A leaf partition attached to (`CREATE TABLE ... PARTITION OF` included) or detached
 * from an audited partitioned table (at any depth), as the local engine found it. The
 * rows it held are not in this entry: see README, "Partitions that come and go".
 */
export interface PartitionSchemaChange extends LoggedChange {
  readonly change: 'ATTACH' | 'DETACH';
  readonly partition: {
    readonly schema: string;
    readonly name: string;
    /**
     * Its bound as PostgreSQL prints it (`FOR VALUES IN ('US')`, `FOR VALUES FROM (...)
     * TO (...)`, `DEFAULT`): the one attached, or the one it had when detached. Null when
     * not known (a leaf the engine recorded before the kit kept bounds, detached since).
     */
    readonly bound: string | null;
  };
}

/** An entry of the schema-change log: tell them apart by `change`. */
export type SchemaChange = ColumnSchemaChange | PartitionSchemaChange;

interface SchemaChangeRow {
  id: string;
  source_schema: string;
  source_table: string;
  change: SchemaChange['change'];
  column_name: string | null;
  old_definition: string | null;
  new_definition: string | null;
  partition_schema: string | null;
  partition_name: string | null;
  bound: string | null;
  source_lsn: string | null;
  commit_timestamp: string | null;
  detected_by: SchemaChange['detectedBy'];
  detected_at: string;
}

const isoUtc = (column: string) =>
  sql.raw(`to_char(${column} AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')`);

/** Every logged column and partition change of one source table, oldest first. */
export async function readSchemaChanges(
  db: Kysely<any>, // eslint-disable-line @typescript-eslint/no-explicit-any -- any database: the audit schema is reached by name
  auditSchema: string,
  schema: string,
  table: string,
): Promise<SchemaChange[]> {
  // The engine's position is a row of its own: the log is append-only, and migrate writes
  // an entry before the engine can apply anything in its new shape. Partition entries
  // take their ids from the same sequence.
  const { rows } = await sql<SchemaChangeRow>`
    SELECT * FROM (
    SELECT c.id::text AS id, c.source_schema, c.source_table, c.change, c.column_name,
           c.old_definition::text AS old_definition, c.new_definition::text AS new_definition,
           NULL AS partition_schema, NULL AS partition_name, NULL AS bound,
           coalesce(p.commit_lsn, c.source_lsn)::text AS source_lsn,
           ${isoUtc('coalesce(p.commit_timestamp, c.commit_timestamp)')} AS commit_timestamp,
           c.detected_by, ${isoUtc('c.detected_at')} AS detected_at
    FROM ${sql.id(auditSchema, 'schema_change')} AS c
    LEFT JOIN ${sql.id(auditSchema, SCHEMA_CHANGE_POSITION_TABLE)} AS p
      ON p.schema_change_id = c.id AND p.commit_lsn IS NOT NULL
    WHERE c.source_schema = ${schema} AND c.source_table = ${table}
    UNION ALL
    SELECT t.id::text, t.source_schema, t.source_table, t.change, NULL, NULL, NULL,
           t.partition_schema, t.partition_name, t.bound, t.source_lsn::text,
           ${isoUtc('t.commit_timestamp')}, t.detected_by, ${isoUtc('t.detected_at')}
    FROM ${sql.id(auditSchema, PARTITION_CHANGE_TABLE)} AS t
    WHERE t.source_schema = ${schema} AND t.source_table = ${table}
    ) AS logged ORDER BY id::bigint`.execute(db);
  return rows.map((row) => {
    const logged = {
      id: row.id,
      schema: row.source_schema,
      table: row.source_table,
      sourceLsn: row.source_lsn,
      commitTimestamp: row.commit_timestamp,
      detectedBy: row.detected_by,
      detectedAt: row.detected_at,
    };
    if (row.change === 'ATTACH' || row.change === 'DETACH')
      return {
        ...logged,
        change: row.change,
        partition: { schema: row.partition_schema!, name: row.partition_name!, bound: row.bound },
      };
    return {
      ...logged,
      change: row.change,
      column: row.column_name!,
      // Parsed losslessly, as row documents are (a default of 1.50 stays 1.50).
      before: definitionOf(row.old_definition),
      after: definitionOf(row.new_definition),
    };
  });
}

function definitionOf(json: string | null): SchemaColumn | null {
  return json === null ? null : (parseRowJson(json) as unknown as SchemaColumn);
}

import type pg from 'pg';
import type { AuditTrailConfig } from '../config';
import { quoteQualified } from '../postgres/identifiers';
import { HEADER_COLUMN_NAMES, stagingTableName } from '../staging/header-columns';

/** A staging table as the target catalog describes it. */
export interface StagingTable {
  /** The audited source table. */
  readonly source: { readonly schema: string; readonly table: string };
  /** The staging table, quoted for SQL. */
  readonly qualifiedName: string;
  /**
   * Mirror columns (header columns and generated columns' placeholders excluded), in
   * table order, with `format_type` types.
   */
  readonly columns: readonly { readonly name: string; readonly type: string }[];
  /** Primary key columns, in key order. */
  readonly primaryKey: readonly string[];
}

/**
 * Reads every configured table's staging table from the target catalog, so the engine
 * writes exactly the columns and types the migration created: one catalog query for
 * all of them.
 * @throws Error naming the staging table when it is missing (run `migrate` first).
 */
export async function readStagingTables(
  target: pg.ClientBase,
  config: AuditTrailConfig,
): Promise<StagingTable[]> {
  const qualifiedNames = config.tables.map((table) =>
    quoteQualified(config.auditSchema, stagingTableName(table.table)),
  );
  // Every value is read as text on the engine's target connection.
  const { rows } = await target.query<{
    table_index: string;
    name: string;
    type: string;
    key_position: string | null;
    placeholder: string;
  }>(
    `SELECT (t.ord - 1)::text AS table_index, a.attname AS name,
            format_type(a.atttypid, a.atttypmod) AS type,
            array_position(i.indkey::int2[], a.attnum)::text AS key_position,
            -- A generated source column's placeholder (src/staging/generated-placeholders.ts):
            -- pgoutput sends no value for it, so the engine neither writes nor checks it.
            (a.attname = ANY (coalesce(r.generated_columns, '{}')))::text AS placeholder
       FROM unnest($1::text[], $2::text[], $3::text[]) WITH ORDINALITY AS t(staging, s, n, ord)
       JOIN pg_attribute a ON a.attrelid = to_regclass(t.staging) AND a.attnum > 0 AND NOT a.attisdropped
       LEFT JOIN pg_index i ON i.indrelid = a.attrelid AND i.indisprimary
       LEFT JOIN ${quoteQualified(config.auditSchema, 'audited_table')} r
         ON r.source_schema = t.s AND r.source_table = t.n
      ORDER BY t.ord, a.attnum`,
    [
      qualifiedNames,
      config.tables.map((table) => table.schema),
      config.tables.map((table) => table.table),
    ],
  );
  const byTable = new Map<number, typeof rows>();
  for (const row of rows) {
    const index = Number(row.table_index);
    const columns = byTable.get(index) ?? [];
    columns.push(row);
    byTable.set(index, columns);
  }
  return config.tables.map((table, index) => {
    const stagingName = stagingTableName(table.table);
    const columns = byTable.get(index) ?? [];
    if (columns.length === 0) {
      throw new Error(
        `staging table ${config.auditSchema}.${stagingName} does not exist on the target: run "audit-trail migrate" first`,
      );
    }
    const primaryKey = columns
      .filter((row) => row.key_position !== null)
      .sort((a, b) => Number(a.key_position) - Number(b.key_position))
      .map((row) => row.name);
    if (primaryKey.length === 0) {
      throw new Error(`staging table ${config.auditSchema}.${stagingName} has no primary key`);
    }
    return {
      source: { schema: table.schema, table: table.table },
      qualifiedName: qualifiedNames[index]!,
      columns: columns
        .filter((row) => !HEADER_COLUMN_NAMES.includes(row.name) && row.placeholder !== 'true')
        .map(({ name, type }) => ({ name, type })),
      primaryKey,
    };
  });
}

import { CompiledQuery, sql, type Kysely } from 'kysely';
import type { AuditedTableConfig, AuditTrailConfig } from '../config';
import { HEADER_COLUMN_PREFIX } from '../staging/header-columns';
import { unpublishableReasons, type QueryRunner } from './publishable';
import { AuditTrailError } from '../errors';

/** A source column as the staging table must mirror it. */
export interface SourceColumn {
  /** Column name as spelled in the catalog. */
  readonly name: string;
  /**
   * Type for the staging column: the source's `format_type`, or `text` for types that
   * exist only on the source (enums, extension types), as DMS carries them as text.
   */
  readonly type: string;
  /**
   * The type modifier behind `type` (`atttypmod`: length, precision; -1 for none). The
   * target re-renders the type from its own catalog with it (see resolveTargetTypes):
   * the source's text never reaches DDL.
   */
  readonly typmod: number;
  /** True for numeric and bigint columns (and their arrays), read back as strings. */
  readonly exactNumber: boolean;
  /**
   * True when the source type does not exist on the target (enum, composite, extension
   * types, arrays of them): staging holds its text, and history records that text.
   */
  readonly carriedAsText: boolean;
  /**
   * The column's `pg_attribute.attnum` on the source: stable across RENAME COLUMN, never
   * reused after DROP COLUMN, so migrate tells a renamed column from a dropped one.
   */
  readonly attnum: number;
  /**
   * What the source's rows that existed when the column was added hold in it. `ALTER
   * TABLE ADD COLUMN` writes no row change to the WAL, so neither DMS nor the engine
   * sees those values: `{ text: null }` without a default; `{ text }` for a default
   * evaluated once at the ADD (PostgreSQL stores it as the column's missing value,
   * `atthasmissing`); `'unknown'` when the column has a default but no stored missing
   * value (a volatile default such as `random()` or a serial rewrote the table with a
   * value per row, or the default was set after the ADD). Absent: not read.
   */
  readonly existingRows?: { readonly text: string | null } | 'unknown';
}

/** An audited table as found in the source catalog, with the config applied. */
export interface SourceTable {
  readonly schema: string;
  readonly table: string;
  /** Primary key columns in key order. */
  readonly primaryKey: readonly string[];
  /** Columns in table order. */
  readonly columns: readonly SourceColumn[];
  /** Columns left out of history. */
  readonly ignoreColumns: readonly string[];
  /**
   * Generated columns (`GENERATED ALWAYS AS ...`), in table order: not in `columns` or
   * history, since pgoutput does not send them (before PostgreSQL 18) and their values
   * follow from the others; staging holds a placeholder for each, which AWS DMS fills
   * (see src/staging/generated-placeholders.ts). Migrate remembers them, so that one
   * made plain later (`DROP EXPRESSION`) is not taken for a column just added.
   */
  readonly generatedColumns: readonly GeneratedColumn[];
}

/** A generated source column: its name and `attnum`. */
export interface GeneratedColumn {
  readonly name: string;
  readonly attnum: number;
}

/** A source table that cannot be audited; the message says which and why. */
export class SourceTableError extends AuditTrailError {
  override readonly name = 'SourceTableError';
  constructor(message: string, options: { readonly hint?: string; readonly cause?: unknown } = {}) {
    super(message, { code: 'SOURCE_TABLE', kind: 'finding', ...options });
  }
}

interface ColumnRow {
  name: string;
  attnum: number;
  generated: boolean;
  type: string;
  typmod: number;
  builtin: boolean;
  exact_number: boolean;
  existing_rows: 'value' | 'null' | 'unknown';
  existing_text: string | null;
}

/**
 * Reads each configured table's columns, types and primary key from the source.
 * @throws SourceTableError for a missing table, a table without a primary key (DMS
 *   would silently drop its updates and deletes), a configured key that is not the
 *   table's primary key, or a table logical replication cannot publish exactly or whose
 *   publication would make source writes fail (see `unpublishableReasons` in src/migrate/publishable.ts).
 */
export async function introspectSourceTables(
  source: Kysely<unknown>,
  config: AuditTrailConfig,
): Promise<SourceTable[]> {
  const tables: SourceTable[] = [];
  for (const table of config.tables) tables.push(await introspectTable(source, table));
  const run: QueryRunner = async <Row>(text: string, values: readonly unknown[]) =>
    (await source.executeQuery(CompiledQuery.raw(text, [...values]))).rows as Row[];
  const reasons = await unpublishableReasons(run, config.tables);
  if (reasons.length > 0) {
    throw new SourceTableError(`cannot audit: ${reasons.join('; ')}`);
  }
  return tables;
}

async function introspectTable(
  source: Kysely<unknown>,
  table: AuditedTableConfig,
): Promise<SourceTable> {
  const label = `${table.schema}.${table.table}`;
  const oid = await findTableOid(source, table.schema, table.table);
  if (oid === undefined) throw new SourceTableError(`source table ${label} does not exist`);
  const { columns, generatedColumns } = await readColumns(source, oid);
  // Generated columns too: staging holds a placeholder for each, under its name.
  const reserved = [...columns, ...generatedColumns].filter((column) =>
    column.name.startsWith(HEADER_COLUMN_PREFIX),
  );
  if (reserved.length > 0) {
    throw new SourceTableError(
      `source table ${label} has column(s) ${reserved.map((column) => column.name).join(', ')}: ` +
        `names starting with ${HEADER_COLUMN_PREFIX} are the DMS header columns the kit adds to ` +
        `staging, so the source's values could not be told from the change headers; rename ` +
        `the column on the source to audit this table`,
    );
  }
  const primaryKey = await readPrimaryKey(source, oid);
  if (primaryKey.length === 0) {
    throw new SourceTableError(
      `source table ${label} has no primary key: DMS would silently drop its UPDATEs and DELETEs; add one before auditing it`,
    );
  }
  const generatedKey = primaryKey.filter((name) => generatedColumns.some((c) => c.name === name));
  if (generatedKey.length > 0) {
    throw new SourceTableError(
      `source table ${label} has generated primary-key column(s) ${generatedKey.join(', ')}: ` +
        `history leaves generated columns out, and the local engine's stream (pgoutput) does ` +
        `not carry them, so a row could not be found by its key; audit the table with a ` +
        `primary key of plain columns`,
    );
  }
  if (table.primaryKey && table.primaryKey.join('\u0000') !== primaryKey.join('\u0000')) {
    throw new SourceTableError(
      `tables: ${label} primaryKey [${table.primaryKey.join(', ')}] does not match the source primary key [${primaryKey.join(', ')}]`,
    );
  }
  const unknownIgnored = table.ignoreColumns.filter(
    (name) => !columns.some((column) => column.name === name),
  );
  if (unknownIgnored.length > 0) {
    throw new SourceTableError(
      `tables: ${label} ignoreColumns names columns the table lacks: ${unknownIgnored.join(', ')}`,
    );
  }
  return {
    schema: table.schema,
    table: table.table,
    primaryKey,
    columns,
    ignoreColumns: table.ignoreColumns,
    generatedColumns,
  };
}

async function findTableOid(
  source: Kysely<unknown>,
  schema: string,
  table: string,
): Promise<number | undefined> {
  const { rows } = await sql<{ oid: number }>`
    SELECT c.oid::int AS oid FROM pg_catalog.pg_class c
    JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
    WHERE n.nspname = ${schema} AND c.relname = ${table} AND c.relkind IN ('r', 'p')`.execute(
    source,
  );
  return rows[0]?.oid;
}

async function readColumns(
  source: Kysely<unknown>,
  oid: number,
): Promise<{ columns: SourceColumn[]; generatedColumns: GeneratedColumn[] }> {
  // Types outside pg_catalog (enums, extension types) do not exist on the target;
  // domains are replaced by their base type. Generated columns are set apart: pgoutput
  // does not send them (before PostgreSQL 18), and their values follow from the others.
  const { rows } = await sql<ColumnRow>`
    SELECT a.attname AS name, a.attnum::int AS attnum, a.attgenerated <> '' AS generated,
           pg_catalog.format_type(coalesce(nullif(t.typbasetype, 0::pg_catalog.oid), a.atttypid),
                       CASE WHEN t.typbasetype OPERATOR(pg_catalog.<>) 0 THEN t.typtypmod ELSE a.atttypmod END) AS type,
           CASE WHEN t.typbasetype OPERATOR(pg_catalog.<>) 0 THEN t.typtypmod ELSE a.atttypmod END AS typmod,
           bt.typnamespace OPERATOR(pg_catalog.=) 'pg_catalog'::pg_catalog.regnamespace AS builtin,
           bt.oid IN ('numeric'::pg_catalog.regtype::pg_catalog.oid, 'int8'::pg_catalog.regtype::pg_catalog.oid, '_numeric'::pg_catalog.regtype::pg_catalog.oid, '_int8'::pg_catalog.regtype::pg_catalog.oid) AS exact_number,
           CASE WHEN a.atthasmissing THEN 'value' WHEN a.atthasdef THEN 'unknown' ELSE 'null' END AS existing_rows,
           CASE WHEN a.atthasmissing THEN pg_catalog.array_to_string(a.attmissingval, '') END AS existing_text
    FROM pg_catalog.pg_attribute a
    JOIN pg_catalog.pg_type t ON t.oid = a.atttypid
    JOIN pg_catalog.pg_type bt ON bt.oid = coalesce(nullif(t.typbasetype, 0::pg_catalog.oid), a.atttypid)
    WHERE a.attrelid = ${oid} AND a.attnum > 0 AND NOT a.attisdropped
    ORDER BY a.attnum`.execute(source);
  const generatedColumns = rows
    .filter((row) => row.generated)
    .map((row) => ({ name: row.name, attnum: row.attnum }));
  const columns = rows
    .filter((row) => !row.generated)
    .map((row): SourceColumn => ({
      name: row.name,
      type: row.builtin ? row.type : 'text',
      typmod: row.builtin ? row.typmod : -1,
      exactNumber: row.exact_number,
      carriedAsText: !row.builtin,
      attnum: row.attnum,
      existingRows:
        row.existing_rows === 'unknown'
          ? 'unknown'
          : { text: row.existing_rows === 'value' ? row.existing_text : null },
    }));
  return { columns, generatedColumns };
}

async function readPrimaryKey(source: Kysely<unknown>, oid: number): Promise<string[]> {
  const { rows } = await sql<{ name: string }>`
    SELECT a.attname AS name
    FROM pg_catalog.pg_index i
    CROSS JOIN LATERAL pg_catalog.unnest(i.indkey::int2[]) WITH ORDINALITY AS k(attnum, position)
    JOIN pg_catalog.pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum
    WHERE i.indrelid = ${oid} AND i.indisprimary
    ORDER BY k.position`.execute(source);
  return rows.map((row) => row.name);
}

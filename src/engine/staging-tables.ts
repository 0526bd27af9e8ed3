import pg from 'pg';
import type { AuditTrailConfig } from '../config';
import { quoteQualified } from '../postgres/identifiers';
import { keyColumnTypes } from '../migrate/key-types';
import { HEADER_COLUMN_NAMES, stagingTableName } from '../staging/header-columns';
import { keyTextEquality, type KeyTextEquality } from './key-identity';

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
  /**
   * How the writer tells key values apart from their texts, per primary-key column
   * (`2` and `2.00` are one numeric key); null when a key column's type is not a
   * supported key type (src/migrate/key-types.ts): each change is then applied alone.
   */
  readonly keyEquality: readonly KeyTextEquality[] | null;
}

/**
 * Reads every configured table's staging table from the target catalog, so the engine
 * writes exactly the columns and types the migration created.
 * @throws Error naming the staging table when it is missing (run `migrate` first).
 */
export async function readStagingTables(
  target: pg.ClientBase,
  config: AuditTrailConfig,
): Promise<StagingTable[]> {
  const tables: StagingTable[] = [];
  for (const table of config.tables) {
    const stagingName = stagingTableName(table.table);
    const qualifiedName = quoteQualified(config.auditSchema, stagingName);
    const { rows } = await target.query<{
      name: string;
      type: string;
      key_position: string | null;
    }>(
      `SELECT a.attname AS name, format_type(a.atttypid, a.atttypmod) AS type,
              array_position(i.indkey::int2[], a.attnum)::text AS key_position
         FROM pg_attribute a
         LEFT JOIN pg_index i ON i.indrelid = a.attrelid AND i.indisprimary
        WHERE a.attrelid = to_regclass($1) AND a.attnum > 0 AND NOT a.attisdropped
        ORDER BY a.attnum`,
      [qualifiedName],
    );
    if (rows.length === 0) {
      throw new Error(
        `staging table ${config.auditSchema}.${stagingName} does not exist on the target: run "audit-trail migrate" first`,
      );
    }
    const placeholders = await generatedPlaceholders(target, config.auditSchema, table);
    const primaryKey = rows
      .filter((row) => row.key_position !== null)
      .sort((a, b) => Number(a.key_position) - Number(b.key_position))
      .map((row) => row.name);
    if (primaryKey.length === 0) {
      throw new Error(`staging table ${config.auditSchema}.${stagingName} has no primary key`);
    }
    tables.push({
      source: { schema: table.schema, table: table.table },
      qualifiedName,
      columns: rows
        .filter((row) => !HEADER_COLUMN_NAMES.includes(row.name) && !placeholders.has(row.name))
        .map(({ name, type }) => ({ name, type })),
      primaryKey,
      keyEquality: await keyEqualityOf(target, config.auditSchema, stagingName),
    });
  }
  return tables;
}

/**
 * The staging table's placeholders of generated source columns (see
 * src/staging/generated-placeholders.ts): pgoutput sends no value for them, so the
 * engine neither writes nor checks them, and a generated column renamed or dropped on
 * the source needs nothing before the engine's next change.
 */
async function generatedPlaceholders(
  target: pg.ClientBase,
  auditSchema: string,
  table: { schema: string; table: string },
): Promise<Set<string>> {
  // One row per name: the engine's target connection reads every value as text.
  const { rows } = await target.query<{ name: string }>(
    `SELECT unnest(generated_columns) AS name FROM ${quoteQualified(auditSchema, 'audited_table')}
      WHERE source_schema = $1 AND source_table = $2`,
    [table.schema, table.table],
  );
  return new Set(rows.map((row) => row.name));
}

/**
 * The staging key's equality per column, from the target's catalog (the staging key's
 * `=` is what ON CONFLICT and the apply statements' key join use); null when a column's
 * type is not one the writer knows.
 */
async function keyEqualityOf(
  target: pg.ClientBase,
  schema: string,
  table: string,
): Promise<KeyTextEquality[] | null> {
  // The engine's target connection reads every value as text: this read parses them.
  const columns = await keyColumnTypes(
    async <Row>(text: string, values: readonly unknown[]) =>
      (await target.query({ text, values: [...values], types: pg.types })).rows as Row[],
    { schema, table },
  );
  const equalities = columns.map(keyTextEquality);
  return equalities.every((equality) => equality !== null) ? equalities : null;
}

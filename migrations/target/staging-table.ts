import type { SourceTable } from '../../src/migrate/introspect';
import { quoteIdent, quoteQualified } from '../../src/postgres/identifiers';
import { HEADER_COLUMNS, stagingTableName } from '../../src/staging/header-columns';
import { stagingColumnsOf } from '../../src/staging/generated-placeholders';

/**
 * Release 0.1.0 created each staging table in a kysely migration named
 * `0100-staging ["schema","table"]`. Staging tables now follow the config (created by
 * the sync step when missing), so those names stay in `kysely_migration` on old
 * installs only; migrate declares them as done so kysely does not call them missing.
 */
export const LEGACY_STAGING_MIGRATION_PREFIX = '0100-staging ';

/**
 * `CREATE TABLE` for the staging table DMS writes into for one audited table: the
 * source's columns and types, a placeholder per generated column (see
 * src/staging/generated-placeholders.ts), the same primary key, and the DMS header
 * columns. No NOT NULL or defaults beyond the key: staging takes whatever DMS applies.
 * Every identifier quoted.
 */
export function createStagingTableSql(auditSchema: string, table: SourceTable): string {
  const columns = [
    ...stagingColumnsOf(table).map((column) => `${quoteIdent(column.name)} ${column.type}`),
    ...HEADER_COLUMNS.map((column) => `${column.name} ${column.postgresType}`),
    `PRIMARY KEY (${table.primaryKey.map(quoteIdent).join(', ')})`,
  ];
  return `CREATE TABLE ${quoteQualified(auditSchema, stagingTableName(table.table))} (\n  ${columns.join(',\n  ')}\n)`;
}

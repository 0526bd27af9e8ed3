import { sql, type Kysely, type Migration } from 'kysely';
import type { SourceTable } from '../../src/migrate/introspect';
import { quoteIdent, quoteQualified } from '../../src/postgres/identifiers';
import { HEADER_COLUMNS, stagingTableName } from '../../src/staging/header-columns';

/**
 * Creates the staging table DMS writes into for one audited table: the source's
 * columns and types, the same primary key, and the DMS header columns. No NOT NULL
 * or defaults beyond the key: staging takes whatever DMS applies.
 * The trigger and registry entry are kept current by the sync step that follows.
 */
export function stagingTableMigration(auditSchema: string, table: SourceTable): Migration {
  return {
    async up(db: Kysely<unknown>) {
      await sql.raw(createStagingTableSql(auditSchema, table)).execute(db);
    },
  };
}

/** The migration name for a table's staging table; unambiguous for any identifiers. */
export function stagingMigrationName(table: Pick<SourceTable, 'schema' | 'table'>): string {
  return `0100-staging ${JSON.stringify([table.schema, table.table])}`;
}

/** `CREATE TABLE` for the staging table; every identifier quoted. */
export function createStagingTableSql(auditSchema: string, table: SourceTable): string {
  const columns = [
    ...table.columns.map((column) => `${quoteIdent(column.name)} ${column.type}`),
    ...HEADER_COLUMNS.map((column) => `${column.name} ${column.postgresType}`),
    `PRIMARY KEY (${table.primaryKey.map(quoteIdent).join(', ')})`,
  ];
  return `CREATE TABLE ${quoteQualified(auditSchema, stagingTableName(table.table))} (\n  ${columns.join(',\n  ')}\n)`;
}

import { PARTITION_CHANGE_TABLE } from '../engine/partition-changes';
import { LOADED_PARTITION_TABLE } from '../engine/partition-loading';
import { LOADED_TABLE_TABLE, POSITION_TABLE } from '../engine/position-store';
import { SCHEMA_CHANGE_POSITION_TABLE } from '../engine/schema-change-positions';
import { quoteIdent, quoteQualified } from '../postgres/identifiers';

/** Privileges a kit role holds on one table of the audit schema, or on some of its columns. */
export interface TableGrant {
  readonly privileges: readonly ('SELECT' | 'INSERT' | 'UPDATE')[];
  /** The table's name in the audit schema. */
  readonly table: string;
  /** Only these columns (unquoted names); the whole table when absent. */
  readonly columns?: readonly string[];
}

/**
 * What the engine role (the local engine's login holds it beside writer; DMS's login
 * never does) is granted on the audit schema's tables: the one list `secureInstall`
 * grants from and the engine's permission diagnosis checks against. Besides these it
 * holds USAGE on the sequence of schema_change's ids, which `secureInstall` looks up.
 */
export const ENGINE_TABLE_GRANTS: readonly TableGrant[] = [
  // Its position in the stream.
  { privileges: ['SELECT', 'INSERT', 'UPDATE'], table: POSITION_TABLE },
  // Which tables and partitions it has loaded, and where in the stream each logged column
  // change first showed.
  { privileges: ['SELECT', 'INSERT'], table: LOADED_TABLE_TABLE },
  { privileges: ['SELECT', 'INSERT'], table: LOADED_PARTITION_TABLE },
  { privileges: ['SELECT', 'INSERT'], table: SCHEMA_CHANGE_POSITION_TABLE },
  // Which attachment of a leaf it loaded (and its bound), and when it found the leaf detached.
  {
    privileges: ['UPDATE'],
    table: LOADED_PARTITION_TABLE,
    columns: ['attachment', 'bound', 'detached_at'],
  },
  // The partitions it saw attached and detached (the log's ids are schema_change's).
  { privileges: ['SELECT', 'INSERT'], table: PARTITION_CHANGE_TABLE },
  { privileges: ['SELECT'], table: 'schema_change' },
  // Which staging columns are generated columns' placeholders, which it never writes
  // (src/staging/generated-placeholders.ts).
  {
    privileges: ['SELECT'],
    table: 'audited_table',
    columns: ['source_schema', 'source_table', 'generated_columns'],
  },
  // Which tables a slot loaded before loads were recorded had audit rows recorded before
  // that migration was applied (src/engine/legacy-loads.ts): evidence a staging writer
  // cannot make. When each table's rows were recorded, and when each migration ran; none
  // of the rows' contents.
  {
    privileges: ['SELECT'],
    table: 'audit_log',
    columns: ['source_schema', 'source_table', 'recorded_at'],
  },
  { privileges: ['SELECT'], table: 'kysely_migration', columns: ['name', 'timestamp'] },
];

/**
 * The GRANT statement for `grant` in `auditSchema` to `role` (quoted here).
 *
 * @example
 * grantStatement('audit', { privileges: ['SELECT'], table: 'kysely_migration', columns: ['name'] }, 'audit_trail_engine');
 * // GRANT SELECT ("name") ON "audit"."kysely_migration" TO "audit_trail_engine"
 */
export function grantStatement(auditSchema: string, grant: TableGrant, role: string): string {
  const columns = grant.columns ? ` (${grant.columns.map(quoteIdent).join(', ')})` : '';
  return (
    `GRANT ${grant.privileges.join(', ')}${columns} ` +
    `ON ${quoteQualified(auditSchema, grant.table)} TO ${quoteIdent(role)}`
  );
}

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
 * The function that ends the reload of a table added back to the config
 * (src/staging/reload-baseline.ts), as name(argument types) in the audit schema.
 */
export const FINISH_RELOAD = 'finish_reload(text, text, timestamp without time zone)';

/** Where in the audit schema the engine uses a privilege. */
export type EngineObject =
  | { readonly kind: 'schema' }
  | ({ readonly kind: 'table' } & Omit<TableGrant, 'privileges'>)
  /** The staging table of each configured source table. */
  | { readonly kind: 'staging' }
  /** The sequence behind a serial column (`pg_get_serial_sequence`). */
  | { readonly kind: 'sequence'; readonly table: string; readonly column: string }
  /** A function, as name(argument types). */
  | { readonly kind: 'function'; readonly signature: string };

/** Privileges the engine uses on one object, and the kit role `secureInstall` grants them to. */
export interface EngineGrant {
  readonly role: 'writer' | 'engine';
  readonly privileges: readonly string[];
  readonly on: EngineObject;
}

/**
 * What the engine role (the local engine's login holds it beside writer; DMS's login
 * never does) is granted on the audit schema's tables: part of {@link ENGINE_GRANTS}.
 */
const ENGINE_TABLE_GRANTS: readonly TableGrant[] = [
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
 * Every privilege the local engine uses on the target, by the kit role that holds it:
 * the one list `secureInstall` grants from (DMS's extra writer privileges apart) and the
 * engine's permission diagnosis checks against, so a REVOKE of any of them stops the
 * engine with the GRANT that puts it back (src/trust/engine-login.ts).
 */
export const ENGINE_GRANTS: readonly EngineGrant[] = [
  // writer (its login is DMS's or the engine's): the schema, staging DML, and ending the
  // reload of a table added back, in the transaction that commits its load.
  { role: 'writer', privileges: ['USAGE'], on: { kind: 'schema' } },
  { role: 'writer', privileges: ['SELECT', 'INSERT', 'UPDATE'], on: { kind: 'staging' } },
  { role: 'writer', privileges: ['EXECUTE'], on: { kind: 'function', signature: FINISH_RELOAD } },
  // engine: its bookkeeping, and the ids of the partitions it saw change (partition_change
  // takes them from schema_change's sequence).
  ...ENGINE_TABLE_GRANTS.map(({ privileges, ...table }): EngineGrant => ({
    role: 'engine',
    privileges,
    on: { kind: 'table', ...table },
  })),
  {
    role: 'engine',
    privileges: ['USAGE'],
    on: { kind: 'sequence', table: 'schema_change', column: 'id' },
  },
];

/** The names of what only the target knows: {@link EngineObject}s it resolves. */
export interface EngineGrantNames {
  /** The staging tables' names in the audit schema. */
  readonly staging: readonly string[];
  /** A sequence's name, quoted and qualified, for `table.column` of the audit schema. */
  readonly sequence: (table: string, column: string) => string;
}

/**
 * The GRANT statement for `grant` in `auditSchema` to `role` (quoted here); none for
 * staging tables when there are none.
 * @example
 * engineGrantStatement('audit', { role: 'engine', privileges: ['SELECT'], on: { kind: 'table',
 *   table: 'kysely_migration', columns: ['name'] } }, 'audit_trail_engine', names);
 * // GRANT SELECT ("name") ON "audit"."kysely_migration" TO "audit_trail_engine"
 */
export function engineGrantStatement(
  auditSchema: string,
  grant: EngineGrant,
  role: string,
  names: EngineGrantNames,
): string | null {
  const privileges = grant.privileges.join(', ');
  const to = quoteIdent(role);
  const on = grant.on;
  switch (on.kind) {
    case 'schema':
      return `GRANT ${privileges} ON SCHEMA ${quoteIdent(auditSchema)} TO ${to}`;
    case 'table': {
      const columns = on.columns ? ` (${on.columns.map(quoteIdent).join(', ')})` : '';
      return `GRANT ${privileges}${columns} ON ${quoteQualified(auditSchema, on.table)} TO ${to}`;
    }
    case 'staging':
      return names.staging.length === 0
        ? null
        : `GRANT ${privileges} ON ${names.staging.map((table) => quoteQualified(auditSchema, table)).join(', ')} TO ${to}`;
    case 'sequence':
      return `GRANT ${privileges} ON SEQUENCE ${names.sequence(on.table, on.column)} TO ${to}`;
    case 'function':
      return `GRANT ${privileges} ON FUNCTION ${quoteIdent(auditSchema)}.${on.signature} TO ${to}`;
  }
}

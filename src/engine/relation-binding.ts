import type pg from 'pg';
import { AuditTrailError } from '../errors';
import { HEADER_COLUMN_NAMES } from '../staging/header-columns';
import type { Lsn } from './lsn';
import { UNCHANGED_TOAST, type RelationMessage, type TupleValue } from './pgoutput';
import type { StagingTable } from './staging-tables';

/**
 * The source's table no longer has the shape of its staging table (a column added,
 * dropped, renamed or retyped while the engine ran). Applying its changes would drop,
 * leave stale, round or truncate values, so the engine stops: everything committed on
 * the source before the first such change is applied, nothing after it, and a restart
 * after `audit-trail migrate` resumes exactly there.
 */
export class SchemaChangeError extends AuditTrailError {
  override readonly name = 'SchemaChangeError';
  constructor(message: string) {
    super(message, {
      code: 'SCHEMA_CHANGE',
      kind: 'finding',
      hint: 'run audit-trail migrate, then start the engine again: it resumes at that change',
    });
  }
}

/** How the columns of one pgoutput relation map onto its staging table. */
export interface RelationBinding {
  readonly table: StagingTable;
  /** `schema.table` of the source table. */
  readonly name: string;
  /** Staging column index for each relation column. */
  readonly stagingIndex: readonly number[];
  /** Relation column index of each staging primary-key column. */
  readonly keyIndex: readonly number[];
  /**
   * The relation's columns (the shape its changes were written in), by name, with their
   * staging type: the source's for built-in types, staging's for types carried as text.
   */
  readonly columns: ReadonlyMap<string, string>;
}

/** A relation whose changes must not be applied; `mismatch` says why and what to run. */
export interface RelationMismatch {
  /** `schema.table` of the source table. */
  readonly name: string;
  readonly mismatch: string;
}

/**
 * The staging type a source column of type `typeOid`/`typeModifier` gets from
 * `migrate` (src/migrate/introspect.ts): domains become their base type; types outside
 * pg_catalog are carried as text, so they are not compared.
 *
 * This and CURRENT_COLUMNS_SQL run on the engine's source session, on the replication
 * login's search_path: their calls and operators name pg_catalog, since a lookalike in
 * public (any role may create one on PostgreSQL 13 and 14) matching more exactly than
 * pg_catalog's (oid = integer, oid = regnamespace, oid = regclass, format(text, text,
 * text)) would run there with that login's rights (test/engine/source-planted-functions).
 */
const STAGING_TYPE_SQL = `
  SELECT pg_catalog.format_type(coalesce(nullif(t.typbasetype, 0::pg_catalog.oid), t.oid),
                     CASE WHEN t.typbasetype <> 0::pg_catalog.oid THEN t.typtypmod ELSE $2::int END) AS type,
         bt.typnamespace OPERATOR(pg_catalog.=) 'pg_catalog'::pg_catalog.regnamespace AS builtin
    FROM pg_catalog.pg_type t
    JOIN pg_catalog.pg_type bt ON bt.oid = coalesce(nullif(t.typbasetype, 0::pg_catalog.oid), t.oid)
   WHERE t.oid = $1::oid`;

/** Columns the source table has now, to tell a dropped column from one not added yet. */
const CURRENT_COLUMNS_SQL = `
  SELECT a.attname AS name FROM pg_catalog.pg_attribute a
   WHERE a.attrelid OPERATOR(pg_catalog.=)
           pg_catalog.to_regclass(pg_catalog.format('%I.%I', $1::text, $2::text))
     AND a.attnum > 0 AND NOT a.attisdropped`;

/**
 * Binds a pgoutput Relation message (sent before a table's first change in a session
 * and again after each DDL) to its staging table, or says why its changes cannot be
 * applied exactly:
 *
 * - a column staging lacks (added on the source, or named like a header column);
 * - a column whose type differs from staging's (`numeric(10,2)` → `(12,4)`,
 *   `varchar(5)` → `(20)`, `int` → `bigint`): staging would round, truncate or fail;
 * - a staging column the source no longer has (dropped or renamed): it would keep a
 *   stale value in every later version.
 *
 * A staging column the relation lacks but the source has now is a column added after
 * this (older) change: it did not exist then, so the change leaves it alone.
 */
export async function bindRelation(
  source: pg.ClientBase,
  relation: RelationMessage,
  table: StagingTable,
): Promise<RelationBinding | RelationMismatch> {
  const name = `${relation.schema}.${relation.table}`;
  const stagingIndex = relation.columns.map((column) =>
    table.columns.findIndex((c) => c.name === column.name),
  );
  const problems: string[] = [];
  const columns = new Map<string, string>();
  for (const [index, column] of relation.columns.entries()) {
    const target = stagingIndex[index]!;
    if (target < 0) {
      problems.push(
        HEADER_COLUMN_NAMES.includes(column.name)
          ? `column "${column.name}" has the name of a staging header column and cannot be audited; rename it on the source`
          : `column "${column.name}" is not in staging`,
      );
      continue;
    }
    const expected = await stagingTypeOf(source, column.typeOid, column.typeModifier);
    const staged = table.columns[target]!.type;
    columns.set(column.name, expected ?? staged);
    if (expected !== null && expected !== staged) {
      problems.push(
        `column "${column.name}" is ${expected} on the source but ${staged} in staging`,
      );
    }
  }
  const sent = new Set(relation.columns.map((column) => column.name));
  const unsent = table.columns.filter((column) => !sent.has(column.name));
  if (unsent.length > 0) {
    const { rows } = await source.query<{ name: string }>(CURRENT_COLUMNS_SQL, [
      relation.schema,
      relation.table,
    ]);
    const current = new Set(rows.map((row) => row.name));
    for (const column of unsent.filter((c) => !current.has(c.name))) {
      problems.push(
        `staging column "${column.name}" is no longer on the source (dropped or renamed)`,
      );
    }
  }
  if (problems.length > 0) {
    return {
      name,
      mismatch:
        `source table ${name} changed shape: ${problems.join('; ')}. Nothing after this point ` +
        'was applied: run "audit-trail migrate" to bring staging in line, then start the ' +
        'engine again; it resumes exactly here',
    };
  }
  const keyIndex = table.primaryKey.map((key) => {
    const index = relation.columns.findIndex((column) => column.name === key);
    if (index < 0)
      throw new SchemaChangeError(
        `source table ${name} has no column "${key}" (staging primary key)`,
      );
    return index;
  });
  return { table, name, stagingIndex, keyIndex, columns };
}

/** True when binding failed. */
export function isMismatch(
  binding: RelationBinding | RelationMismatch,
): binding is RelationMismatch {
  return 'mismatch' in binding;
}

async function stagingTypeOf(
  source: pg.ClientBase,
  typeOid: number,
  typeModifier: number,
): Promise<string | null> {
  const { rows } = await source.query<{ type: string; builtin: boolean }>(STAGING_TYPE_SQL, [
    typeOid,
    typeModifier,
  ]);
  const row = rows[0];
  return row?.builtin ? row.type : null;
}

/** Staging values of a tuple; columns the relation lacks get `absent`. */
export function stagingValues(
  binding: RelationBinding,
  tuple: readonly TupleValue[],
  absent: null | undefined,
): (string | null | undefined)[] {
  const values = new Array<string | null | undefined>(binding.table.columns.length).fill(absent);
  tuple.forEach((value, index) => {
    const target = binding.stagingIndex[index] ?? -1;
    if (target >= 0) values[target] = value === UNCHANGED_TOAST ? undefined : value;
  });
  return values;
}

/** The staging primary key of a tuple (new row, old key or whole old row). */
export function stagingKey(
  binding: RelationBinding,
  tuple: readonly TupleValue[],
): (string | null)[] {
  return binding.keyIndex.map((index) => {
    const value = tuple[index];
    if (value === UNCHANGED_TOAST || value === undefined) {
      throw new Error(`pgoutput: key column of ${binding.name} was not sent`);
    }
    return value;
  });
}

/**
 * Thrown inside the applier when a change meets a {@link RelationMismatch}: the target
 * transaction was rolled back, so source transactions grouped into it before `commitLsn`
 * must be applied again before the engine stops.
 */
export class SchemaChangeStop extends Error {
  override readonly name = 'SchemaChangeStop';
  constructor(
    message: string,
    /** Commit LSN of the source transaction that met the change: apply everything before it. */
    readonly commitLsn: Lsn,
  ) {
    super(message);
  }
}

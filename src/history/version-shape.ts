import { quoteLiteral, quoteQualified } from '../postgres/identifiers';

/**
 * Reading old versions in a table's current shape.
 *
 * A version's row holds the columns its table had when it was recorded, as recorded:
 * a column added later is **absent** from it (not SQL NULL: the column did not exist),
 * a column dropped later is still there, a renamed one is under its old name. The
 * history API returns versions that way. To compare a version with today's source row
 * (verify), or to find all versions of one row after its key column was renamed, the
 * logged schema changes after the version are applied to it:
 * - RENAME: the value moves to the new name (keys too: one history per row);
 * - DROP: the column goes;
 * - ADD: the column gets the value the existing rows got on the source (`existingRows`
 *   in the log: NULL, or a default PostgreSQL evaluated once); without one it stays
 *   absent, so verify reports the row rather than guess;
 * - RETYPE to a numeric type: the value is converted as the source converted it
 *   (`1.23` becomes `1.2300` in `numeric(12,4)`); other widenings keep every value as is.
 */

/** A logged column change as the projection needs it (see `schema_change`). */
export interface ShapeChange {
  readonly change: 'ADD' | 'DROP' | 'RENAME' | 'RETYPE';
  /** The column's name after the change (before it, for DROP). */
  readonly column: string;
  /** RENAME: the name before. */
  readonly previousName: string | null;
  /** RETYPE: the type after. */
  readonly newType: string | null;
  /** ADD: the existing rows' value as jsonb text (`null` for SQL NULL); null when not known. */
  readonly existingRows: string | null;
  /** ADD: that `null` is a jsonb column's JSON null literal (`DEFAULT 'null'::jsonb`). */
  readonly existingRowsJsonNull: boolean;
  /** Versions with an id up to this one have the shape before the change. */
  readonly lastAuditId: string | null;
  /** For changes logged before `last_audit_id` existed: versions recorded before this. */
  readonly detectedAt: string;
}

/** The columns of `schema_change` that make a {@link ShapeChange}. */
export const SHAPE_CHANGE_COLUMNS = `change, column_name AS "column",
  old_definition ->> 'name' AS "previousName", new_definition ->> 'type' AS "newType",
  (new_definition -> 'existingRows')::text AS "existingRows",
  coalesce((new_definition ->> 'existingRowsJsonNull')::boolean, false) AS "existingRowsJsonNull",
  last_audit_id::text AS "lastAuditId", detected_at::text AS "detectedAt"`;

/** Reads a table's logged changes, oldest first (`$1` schema, `$2` table). */
export function shapeChangesSql(auditSchema: string): string {
  return `SELECT ${SHAPE_CHANGE_COLUMNS} FROM ${quoteQualified(auditSchema, 'schema_change')}
           WHERE source_schema = $1 AND source_table = $2
           ORDER BY id`;
}

/**
 * Every spelling a key (`key`, SQL for a jsonb key in today's names) had: today's, then
 * with each renamed key column's earlier name, newest rename first.
 */
export function keySpellings(key: string, changes: readonly ShapeChange[]): string[] {
  const spellings = [key];
  for (const change of [...changes].reverse()) {
    if (change.change !== 'RENAME' || change.previousName === null) continue;
    const e = `(${spellings.at(-1)!})`;
    const now = quoteLiteral(change.column);
    const before = quoteLiteral(change.previousName);
    spellings.push(
      `CASE WHEN ${e} ? ${now} THEN (${e} - ${now}) || pg_catalog.jsonb_build_object(${before}, ${e} -> ${now}) ELSE ${e} END`,
    );
  }
  return spellings;
}

/**
 * SQL for `row` (a version's jsonb row or key, of the audit_log row aliased `alias`) in
 * the table's current shape. `keyOnly`: only renames apply (a key has no other columns).
 */
export function currentShapeSql(
  row: string,
  alias: string,
  changes: readonly ShapeChange[],
  options: { readonly keyOnly?: boolean } = {},
): string {
  let expression = row;
  for (const change of changes) {
    const older = recordedBefore(change, alias);
    const name = quoteLiteral(change.column);
    const r = `(${expression})`;
    if (change.change === 'RENAME' && change.previousName !== null) {
      const before = quoteLiteral(change.previousName);
      expression = `CASE WHEN ${older} AND ${r} ? ${before} THEN (${r} - ${before}) || pg_catalog.jsonb_build_object(${name}, ${r} -> ${before}) ELSE ${r} END`;
    } else if (options.keyOnly) {
      continue;
    } else if (change.change === 'DROP') {
      expression = `CASE WHEN ${older} THEN ${r} - ${name} ELSE ${r} END`;
    } else if (change.change === 'ADD' && change.existingRows !== null) {
      expression = `CASE WHEN ${older} AND NOT ${r} ? ${name} THEN ${r} || pg_catalog.jsonb_build_object(${name}, ${quoteLiteral(change.existingRows)}::jsonb) ELSE ${r} END`;
    } else if (change.change === 'RETYPE' && change.newType && isScalarNumeric(change.newType)) {
      // Only to types the kit itself rendered (format_type of a widening it applied).
      expression = `CASE WHEN ${older} AND jsonb_typeof(${r} -> ${name}) = 'number' THEN pg_catalog.jsonb_set(${r}, ARRAY[${name}], pg_catalog.to_jsonb((${r} ->> ${name})::${change.newType})) ELSE ${r} END`;
    }
  }
  return expression;
}

/** SQL for "the audit_log row aliased `alias` has the shape from before `change`". */
function recordedBefore(change: ShapeChange, alias: string): string {
  return change.lastAuditId !== null
    ? `${alias}.id <= ${quoteLiteral(change.lastAuditId)}::bigint`
    : `${alias}.recorded_at <= ${quoteLiteral(change.detectedAt)}::timestamptz`;
}

function isScalarNumeric(type: string): boolean {
  return /^numeric(\(\d+,-?\d+\))?$/.test(type);
}

/**
 * SQL for `list` (a version's text[] of column names, `new_json_nulls` of the audit_log
 * row aliased `alias`) in the table's current shape, as {@link currentShapeSql} puts its
 * row: a renamed column under its new name, a dropped one gone, a jsonb column added
 * with the JSON null literal as its existing rows' value (`existingRowsJsonNull`) listed
 * for versions from before it; sorted by name in byte order again, NULL when none is left.
 */
export function currentShapeListSql(
  list: string,
  alias: string,
  changes: readonly ShapeChange[],
): string {
  let expression = list;
  for (const change of changes) {
    const older = recordedBefore(change, alias);
    const name = `${quoteLiteral(change.column)}::text`;
    const e = `(${expression})`;
    if (change.change === 'RENAME' && change.previousName !== null) {
      const before = `${quoteLiteral(change.previousName)}::text`;
      expression = `CASE WHEN ${older} THEN pg_catalog.array_replace(${e}, ${before}, ${name}) ELSE ${e} END`;
    } else if (change.change === 'DROP') {
      expression = `CASE WHEN ${older} THEN pg_catalog.array_remove(${e}, ${name}) ELSE ${e} END`;
    } else if (change.change === 'ADD' && change.existingRowsJsonNull) {
      expression = `CASE WHEN ${older} AND NOT coalesce(${name} = ANY (${e}), false) THEN pg_catalog.array_append(${e}, ${name}) ELSE ${e} END`;
    }
  }
  if (expression === list) return list;
  return `(SELECT pg_catalog.array_agg(n ORDER BY n COLLATE pg_catalog."C") FROM pg_catalog.unnest(${expression}) AS n)`;
}

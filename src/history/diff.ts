import type { ColumnChange, Version } from './types';

/** The row a version leaves behind: its new row, or null after a DELETE. */
export function rowAfter<Row>(version: Version<Row> | null): Row | null {
  return version?.newRow ?? null;
}

/**
 * The columns that differ between the row states left by two versions (or two rows),
 * sorted by column name (as `changedColumns` is). A missing row (before an INSERT, after a DELETE)
 * counts as every column being absent (`undefined`). Between two versions (or a version
 * and a missing row), a `jsonb` column going between SQL NULL and the JSON `null`
 * literal is a change too, marked with `jsonNull` (both values read `null`).
 */
export function diff<Row extends object>(
  from: Version<Row> | Row | null,
  to: Version<Row> | Row | null,
): ColumnChange[] {
  const before = toState(from);
  const after = toState(to);
  // JSON nulls are known only where both sides are versions (or missing rows).
  const withJsonNulls = before.jsonNulls !== undefined && after.jsonNulls !== undefined;
  const columns = [...new Set([...Object.keys(before.row ?? {}), ...Object.keys(after.row ?? {})])];
  return columns.sort().flatMap((column): ColumnChange[] => {
    const change = {
      column,
      from: valueOf(before.row, column),
      to: valueOf(after.row, column),
    };
    const jsonNull = withJsonNulls
      ? { from: before.jsonNulls!.has(column), to: after.jsonNulls!.has(column) }
      : undefined;
    const marked = jsonNull !== undefined && (jsonNull.from || jsonNull.to);
    if (sameJson(change.from, change.to) && (!marked || jsonNull.from === jsonNull.to)) return [];
    return [marked ? { ...change, jsonNull } : change];
  });
}

/** A row state: the row, and its JSON-null columns when known (from a version). */
interface RowState {
  readonly row: Record<string, unknown> | null;
  readonly jsonNulls: ReadonlySet<string> | undefined;
}

const NO_JSON_NULLS: ReadonlySet<string> = new Set();

function toState<Row extends object>(value: Version<Row> | Row | null): RowState {
  if (value === null) return { row: null, jsonNulls: NO_JSON_NULLS };
  if (isVersion(value)) {
    const row = (value.newRow as Record<string, unknown> | null) ?? null;
    // Versions from before the lists existed (a caller's own objects) have none.
    const listed = value.newRowJsonNulls as readonly string[] | undefined;
    return { row, jsonNulls: row === null || !listed ? NO_JSON_NULLS : new Set(listed) };
  }
  return { row: value as Record<string, unknown>, jsonNulls: undefined };
}

function isVersion(value: object): value is Version<never> {
  return 'operation' in value && 'commitTimestamp' in value && 'newRow' in value;
}

function valueOf(row: Record<string, unknown> | null, column: string): unknown {
  return row === null ? undefined : row[column];
}

function sameJson(a: unknown, b: unknown): boolean {
  return JSON.stringify(canonical(a)) === JSON.stringify(canonical(b));
}

/** JSON with object keys sorted, so `{a,b}` equals `{b,a}` (jsonb does not keep key order). */
function canonical(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(canonical);
  if (value !== null && typeof value === 'object') {
    return Object.fromEntries(
      Object.keys(value)
        .sort()
        .map((key) => [key, canonical((value as Record<string, unknown>)[key])]),
    );
  }
  return value;
}

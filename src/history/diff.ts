import type { ColumnChange, Version } from './types';

/** The row a version leaves behind: its new row, or null after a DELETE. */
export function rowAfter<Row>(version: Version<Row> | null): Row | null {
  return version?.newRow ?? null;
}

/**
 * The columns that differ between the row states left by two versions (or two rows),
 * sorted by column name (as `changedColumns` is). A missing row (before an INSERT, after a DELETE)
 * counts as every column being absent (`undefined`).
 */
export function diff<Row extends object>(
  from: Version<Row> | Row | null,
  to: Version<Row> | Row | null,
): ColumnChange[] {
  const before = toRow(from);
  const after = toRow(to);
  const columns = [...new Set([...Object.keys(before ?? {}), ...Object.keys(after ?? {})])].sort();
  return columns
    .map((column) => ({ column, from: valueOf(before, column), to: valueOf(after, column) }))
    .filter((change) => !sameJson(change.from, change.to));
}

function toRow<Row extends object>(
  value: Version<Row> | Row | null,
): Record<string, unknown> | null {
  if (value === null) return null;
  if (isVersion(value)) return (value.newRow as Record<string, unknown> | null) ?? null;
  return value as Record<string, unknown>;
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

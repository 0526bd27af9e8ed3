import type { KeyColumnType } from '../migrate/key-types';
import type { StagingTable } from './staging-tables';

/**
 * How the engine tells a primary-key column's values apart from their texts, so that
 * two keys it holds apart are never equal under the staging key's `=` (the equality
 * `ON CONFLICT` and the apply statements' key join use):
 *
 * - `exact`: equal values have one text each. Every supported key type but the number
 *   types (src/migrate/key-types.ts: integers, text under a deterministic collation,
 *   uuid, dates and times with TimeZone and DateStyle pinned, bytea in hex, enums, ...).
 * - `numeric`: `2`, `2.0` and `2.00` are one value (and `-0.00` is `0`): the trailing
 *   zeros of the scale are dropped.
 * - `float`: `-0` and `0` are one value. Otherwise the pinned `extra_float_digits`
 *   prints the shortest exact text, one per value (every NaN prints `NaN`, and NaNs are
 *   equal in btree).
 *
 * A text is only ever compared with texts the same connection printed, under the same
 * settings, within one schema of the table (a schema change stops the engine first).
 */
export type KeyTextEquality = 'exact' | 'numeric' | 'float';

/** The equality of a key column, or null when its type is not a supported key type. */
export function keyTextEquality(column: KeyColumnType): KeyTextEquality | null {
  if (column.unsupported !== null) return null;
  switch (column.builtin) {
    case 'numeric':
      return 'numeric';
    case 'float4':
    case 'float8':
      return 'float';
    default:
      return 'exact';
  }
}

type Key = readonly (string | null | undefined)[];

/** A key as text that tells every key apart (JSON keeps `null` apart from `'null'`). */
export function keyText(key: Key): string {
  return JSON.stringify(key);
}

/**
 * A function giving one text per key value under the key's equality, for keys in
 * primary-key order: {@link keyText} when every column is `exact`.
 */
export function keyIdentity(equalities: readonly KeyTextEquality[]): (key: Key) => string {
  if (equalities.every((equality) => equality === 'exact')) return keyText;
  const normalisers = equalities.map((equality) => NORMALISERS[equality]);
  return (key) =>
    keyText(key.map((value, index) => (value == null ? value : normalisers[index]!(value))));
}

/** One text per key value, for keys in primary-key order (see {@link keyIdentity}). */
export type KeyIdentity = ReturnType<typeof keyIdentity>;

const tableIdentities = new WeakMap<StagingTable, KeyIdentity | null>();

/**
 * The key identity of a staging table (built once per table): what the writer and the
 * attached-partition filter tell keys apart by. Null when a key column's type is not a
 * supported key type (`keyEquality` is null).
 */
export function stagingKeyIdentity(table: StagingTable): KeyIdentity | null {
  let identity = tableIdentities.get(table);
  if (identity === undefined) {
    identity = table.keyEquality === null ? null : keyIdentity(table.keyEquality);
    tableIdentities.set(table, identity);
  }
  return identity;
}

const NORMALISERS: Readonly<Record<KeyTextEquality, (text: string) => string>> = {
  exact: (text) => text,
  numeric: numericKeyText,
  float: (text) => (text === '-0' ? '0' : text),
};

/**
 * numeric's text without the trailing zeros of its scale. numeric_out prints no
 * exponent, no `+` and no leading zeros, so what is left is one text per value
 * (`NaN`, `Infinity` and `-Infinity` have no point and pass as they are).
 */
export function numericKeyText(text: string): string {
  if (!text.includes('.')) return text === '-0' ? '0' : text;
  const trimmed = text.replace(/\.?0+$/, '');
  return trimmed === '-0' ? '0' : trimmed;
}

import { LosslessNumber, parse, stringify } from 'lossless-json';

/**
 * Row documents (old and new rows, keys) as JSON text from the audit log, parsed
 * without losing a digit. `JSON.parse` turns every number into a double: 1.10 becomes
 * 1.1, 9007199254740993 becomes ...992, 123456789012345678901234567890 becomes
 * 1.2345678901234568e+29. Here a number whose double prints back as the same text stays
 * a `number`; any other becomes a {@link LosslessNumber} holding the exact text
 * (`.value`, `.toString()`; `Number(n)` when a double is acceptable).
 * numeric and bigint columns are already strings (`exact_row`); this covers numbers
 * inside json and jsonb values and floats with many digits.
 *
 * lossless-json rather than hand-written parsing or json-bigint: it keeps decimals too
 * (json-bigint only integers), is typed, and its `stringify` writes LosslessNumbers back
 * as their exact text.
 */
export function parseRowJson<T = Record<string, unknown>>(text: string): T {
  return parse(text, null, parseNumber) as T;
}

function parseNumber(text: string): number | LosslessNumber {
  const value = Number(text);
  return String(value) === text ? value : new LosslessNumber(text);
}

/** JSON text for values from {@link parseRowJson}: LosslessNumbers as their exact text. */
export function stringifyRowJson(value: unknown, space?: number): string {
  return stringify(value, null, space) ?? 'null';
}

export { LosslessNumber };

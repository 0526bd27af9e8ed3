import { isLosslessNumber } from 'lossless-json';

/**
 * Puts the numbers of a table's numeric and bigint columns (the registry's
 * `exact_number_columns`) into a row document as strings, in place: a top-level number
 * becomes its exact text ("19.990", "9007199254740993"), and so does each number element
 * of a top-level array (numeric[] and bigint[] columns). Nested values are left alone.
 * Returns the document.
 *
 * This is the SQL function `exact_row` (triggers/api-row.sql) done in the client, on a
 * document already parsed by `parseRowJson` (row-json.ts): the history API used to call
 * `exact_row` three times per version read, and those PL/pgSQL calls were most of a
 * history page's server time. It is exact because the parse keeps every number's text:
 * a `number` only when it prints back as the same text, a `LosslessNumber` otherwise.
 *
 * ```ts
 * exactNumbers(parseRowJson('{"id": 9007199254740993, "price": 1.50, "qty": 2}'), ['id', 'price']);
 * // { id: '9007199254740993', price: '1.50', qty: 2 }
 * ```
 */
export function exactNumbers<T>(document: T, columns: readonly string[]): T {
  if (document === null || typeof document !== 'object' || Array.isArray(document)) return document;
  const row = document as Record<string, unknown>;
  for (const name of columns) {
    if (!Object.prototype.hasOwnProperty.call(row, name)) continue;
    const value = row[name];
    if (Array.isArray(value)) {
      row[name] = value.map((element) => numberText(element) ?? element);
    } else {
      const text = numberText(value);
      // An own property (checked above), so even `__proto__` is a plain assignment.
      if (text !== undefined) row[name] = text;
    }
  }
  return document;
}

/** The exact text of a parsed JSON number; undefined for anything else. */
function numberText(value: unknown): string | undefined {
  if (typeof value === 'number') return String(value);
  if (isLosslessNumber(value)) return value.value;
  return undefined;
}

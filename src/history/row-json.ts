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
  // JSON.parse (native, about 4 times faster) gives the same value whenever every number
  // in the text prints back as itself: then parseNumber would return it as a number too.
  return (everyNumberRoundTrips(text) ? JSON.parse(text) : parse(text, null, parseNumber)) as T;
}

/**
 * True when each number of a JSON text is the shortest text of its double. A scan by
 * hand (strings skipped with their escapes, number characters collected outside them):
 * a regular expression's match objects cost more than the parse this avoids.
 */
function everyNumberRoundTrips(text: string): boolean {
  let start = -1;
  for (let i = 0; i <= text.length; i++) {
    const code = i < text.length ? text.charCodeAt(i) : 0x20;
    if (isNumberChar(code)) {
      if (start < 0) start = i;
      continue;
    }
    if (start >= 0) {
      const token = text.slice(start, i);
      if (String(Number(token)) !== token) return false;
      start = -1;
    }
    if (code === 0x22) i = closingQuote(text, i);
  }
  return true;
}

/** Digits, sign, decimal point and exponent: what a JSON number is made of. */
function isNumberChar(code: number): boolean {
  return (
    (code >= 0x30 && code <= 0x39) ||
    code === 0x2d ||
    code === 0x2b ||
    code === 0x2e ||
    code === 0x65 ||
    code === 0x45
  );
}

/** The index of the quote that ends the string opened at `open`. */
function closingQuote(text: string, open: number): number {
  for (let i = open + 1; i < text.length; i++) {
    const code = text.charCodeAt(i);
    if (code === 0x5c) i++;
    else if (code === 0x22) return i;
  }
  return text.length;
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

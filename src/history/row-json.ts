import { isLosslessNumber, LosslessNumber, parse, stringify } from 'lossless-json';
import { exactNumbers } from './exact-numbers';

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
  const inexact = inexactNumbers(text, NO_COLUMNS);
  // A string of the text starts with the marker: marking would be ambiguous.
  if (inexact === undefined) return parse(text, null, parseNumber) as T;
  // JSON.parse (native, several times faster) gives the same value for every number that
  // prints back as itself: parseNumber would return it as that number too.
  if (inexact === 0) return JSON.parse(text) as T;
  return restoreMarked(JSON.parse(markNumbers(text, inexact))) as T;
}

/**
 * `exactNumbers(parseRowJson(text), exactColumns)` for a row document as jsonb prints it
 * (an object, no key twice): the same value, made with less garbage. An exact column's
 * number that JSON.parse would round (a numeric's `2.50`: half of the bench log's
 * documents) ends as its text; parseRowJson made it a string with a marker, a
 * LosslessNumber and its text again, and walked the document for the markers. Here such
 * a number, a member of the top-level object, is left to JSON.parse and its member then
 * set to its text, sliced from the document; only other inexact numbers are marked.
 */
export function parseRowDocument(text: string, exactColumns: readonly string[]): unknown {
  const inexact = inexactNumbers(text, exactColumns);
  if (inexact === undefined) return exactNumbers(parse(text, null, parseNumber), exactColumns);
  if (inexact === 0) return exactNumbers(JSON.parse(text), exactColumns);
  let marked = 0;
  for (let n = 0; n < inexact; n++) if (inexactColumns[n] === NOT_EXACT) marked++;
  const parsed = (
    marked === 0 ? JSON.parse(text) : restoreMarked(JSON.parse(markNumbers(text, inexact)))
  ) as Record<string, unknown>;
  // The offsets again: restoreMarked runs no scan. A top-level member (checked by the
  // scan), so even `__proto__` is a plain assignment.
  for (let n = 0; n < inexact; n++) {
    const column = inexactColumns[n]!;
    if (column !== NOT_EXACT) {
      parsed[exactColumns[column]!] = text.slice(inexactBounds[2 * n], inexactBounds[2 * n + 1]);
    }
  }
  return exactNumbers(parsed, exactColumns);
}

/** No exact columns: parseRowJson's scan. */
const NO_COLUMNS: readonly string[] = Object.freeze([]);

/**
 * The numbers of a JSON text that do not print back as themselves (what `JSON.parse`
 * would round): how many, their start and end offsets left in {@link inexactBounds};
 * undefined when a string of the text begins with {@link MARKER}, which markNumbers puts
 * before each of them. A scan by hand (strings skipped with their escapes): a regular
 * expression's match objects cost more than the parse this saves. A number starts with
 * `-` or a digit: the `e` of `true` and `false` is not one.
 *
 * For each number also, in {@link inexactColumns}, which of `exactColumns` it is the value
 * of when it is a member of the top-level object, else NOT_EXACT. In that object a
 * number's name is the last string before it at depth 1 (a member's value follows its
 * name). A name is compared as written, and only with a column without a backslash: a
 * name written without escapes is its own text.
 */
function inexactNumbers(text: string, exactColumns: readonly string[]): number | undefined {
  let found = 0;
  // Members are named only inside a top-level object, and only when there are exact columns.
  const named = exactColumns.length > 0 && text.charCodeAt(0) === OPEN_BRACE;
  let depth = 0;
  let nameStart = 0;
  let nameEnd = 0;
  for (let i = 0; i < text.length; i++) {
    const code = text.charCodeAt(i);
    if (code === QUOTE) {
      // startsWith only for a string that starts with an escape: a call per string was a
      // tenth of the scan.
      if (text.charCodeAt(i + 1) === BACKSLASH && text.startsWith(MARKER_ESCAPE, i + 1))
        return undefined;
      const close = closingQuote(text, i);
      if (depth === 1) {
        nameStart = i + 1;
        nameEnd = close;
      }
      i = close;
    } else if (code === MINUS || (code >= DIGIT_0 && code <= DIGIT_9)) {
      const end = numberEnd(text, i + 1);
      if (!printsBack(text, i, end)) {
        inexactBounds[2 * found] = i;
        inexactBounds[2 * found + 1] = end;
        inexactColumns[found] =
          named && depth === 1 ? columnNamed(text, nameStart, nameEnd, exactColumns) : NOT_EXACT;
        found++;
      }
      i = end - 1;
    } else if (code === OPEN_BRACE || code === OPEN_BRACKET) depth++;
    else if (code === CLOSE_BRACE || code === CLOSE_BRACKET) depth--;
  }
  return found;
}

/** The index of the column whose name is the text [start, end), or NOT_EXACT. */
function columnNamed(text: string, start: number, end: number, columns: readonly string[]): number {
  for (let c = 0; c < columns.length; c++) {
    const column = columns[c]!;
    if (column.length === end - start && text.startsWith(column, start) && !column.includes('\\')) {
      return c;
    }
  }
  return NOT_EXACT;
}

/** Which exact column each inexact number is the value of (inexactNumbers), reused. */
const inexactColumns: number[] = [];
const NOT_EXACT = -1;

/**
 * The offsets inexactNumbers found (start, end, ...), read by markNumbers right after:
 * one array for every document, reused, rather than a new one per document with an
 * inexact number (a numeric column's trailing zero: half of a first page's documents in
 * the bench's log, 19 KiB of a page's garbage, BENCHMARKS 4). Nothing runs between the
 * scan and its reader.
 */
const inexactBounds: number[] = [];

/** Where the number whose first character is before `from` ends. */
function numberEnd(text: string, from: number): number {
  let end = from;
  while (end < text.length && isNumberChar(text.charCodeAt(end))) end++;
  return end;
}

/**
 * Whether the number at [start, end) prints back as itself from a double. The numbers a row
 * mostly holds are settled without making strings ({@link plainVerdict}); others (`-0`,
 * `007`, exponents, more than 15 digits) go through Number and String.
 */
function printsBack(text: string, start: number, end: number): boolean {
  const verdict = plainVerdict(text, start, end);
  if (verdict !== undefined) return verdict;
  const token = text.slice(start, end);
  return String(Number(token)) === token;
}

/**
 * printsBack for plain numbers, by their digits alone; undefined for any other number.
 * - An integer of up to 15 digits without a leading zero (keys, counts): true.
 * - A decimal `I.F` (no exponent) whose last digit is 0 (`2.50`, a numeric column's
 *   scale): false, String never writes a fraction's trailing zero.
 * - Any other decimal of up to 15 significant digits, with `I` without a leading zero or
 *   a lone 0, and then at most five zeros leading `F` (String writes 1e-7 so): true.
 *   Distinct decimals of at most 15 significant digits are distinct doubles (DBL_DIG), so
 *   the shortest text that reads back as the double, which String writes, is this one.
 */
function plainVerdict(text: string, start: number, end: number): boolean | undefined {
  const digits = text.charCodeAt(start) === MINUS ? start + 1 : start;
  let point = -1;
  for (let i = digits; i < end; i++) {
    const code = text.charCodeAt(i);
    if (code === POINT && point === -1) point = i;
    else if (code < DIGIT_0 || code > DIGIT_9) return undefined;
  }
  const leadingZero = text.charCodeAt(digits) === DIGIT_0;
  if (point === -1) {
    const length = end - digits;
    if (length < 1 || length > 15) return undefined;
    // `0` is true; `-0` (String writes 0) and `007` are for String to settle.
    return leadingZero ? (length === 1 && digits === start ? true : undefined) : true;
  }
  if (point === digits || point === end - 1) return undefined;
  if (text.charCodeAt(end - 1) === DIGIT_0) return false;
  let significant = digits;
  if (leadingZero) {
    if (point !== digits + 1) return undefined;
    significant = point + 1;
    while (text.charCodeAt(significant) === DIGIT_0) significant++;
    if (significant - point - 1 > 5) return undefined;
  }
  return end - significant - (significant < point ? 1 : 0) <= 15 ? true : undefined;
}

/**
 * What markNumbers puts before the text of each number JSON.parse would round, making it
 * a string: U+0000, which no string of a jsonb document holds (PostgreSQL refuses
 * `\u0000` in jsonb) and no string of a marked text starts with (inexactNumbers checks),
 * so a string starting with it can only be such a number.
 */
const MARKER = '\u0000';
/** {@link MARKER} as written inside a JSON string. */
const MARKER_ESCAPE = '\\u0000';

/**
 * `text` with its first `count` inexact numbers ({@link inexactBounds}) marked as strings,
 * but those of an exact column ({@link inexactColumns}: parseRowDocument sets them).
 */
function markNumbers(text: string, count: number): string {
  let marked = '';
  let from = 0;
  for (let r = 0; r < 2 * count; r += 2) {
    if (inexactColumns[r / 2] !== NOT_EXACT) continue;
    const start = inexactBounds[r]!;
    const end = inexactBounds[r + 1]!;
    marked += `${text.slice(from, start)}"${MARKER_ESCAPE}${text.slice(start, end)}"`;
    from = end;
  }
  return marked + text.slice(from);
}

/** The marked strings of a parsed value turned back into LosslessNumbers, in place. */
function restoreMarked(value: unknown): unknown {
  if (typeof value === 'string') {
    return value.startsWith(MARKER) ? new LosslessNumber(value.slice(MARKER.length)) : value;
  }
  if (value === null || typeof value !== 'object') return value;
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) value[i] = restoreMarked(value[i]);
    return value;
  }
  const object = value as Record<string, unknown>;
  // Own properties only (JSON.parse makes even `__proto__` one), so the assignment is plain.
  for (const key of Object.keys(object)) object[key] = restoreMarked(object[key]);
  return value;
}

const QUOTE = 0x22;
const OPEN_BRACE = 0x7b;
const CLOSE_BRACE = 0x7d;
const OPEN_BRACKET = 0x5b;
const CLOSE_BRACKET = 0x5d;
const BACKSLASH = 0x5c;
const MINUS = 0x2d;
const POINT = 0x2e;
const DIGIT_0 = 0x30;
const DIGIT_9 = 0x39;

/** Digits, sign, decimal point and exponent: what a JSON number is made of. */
function isNumberChar(code: number): boolean {
  return (
    (code >= DIGIT_0 && code <= DIGIT_9) ||
    code === MINUS ||
    code === 0x2b ||
    code === 0x2e ||
    code === 0x65 ||
    code === 0x45
  );
}

/**
 * The index of the quote that ends the string opened at `open`: the first quote after it
 * that an odd run of backslashes does not escape (a run's first backslash is never escaped
 * itself: the character before the run is not a backslash). indexOf is native: a loop over
 * every character of the string was most of the scan.
 */
function closingQuote(text: string, open: number): number {
  for (
    let quote = text.indexOf('"', open + 1);
    quote !== -1;
    quote = text.indexOf('"', quote + 1)
  ) {
    let backslashes = 0;
    while (text.charCodeAt(quote - 1 - backslashes) === BACKSLASH) backslashes++;
    if (backslashes % 2 === 0) return quote;
  }
  return text.length;
}

function parseNumber(text: string): number | LosslessNumber {
  const value = Number(text);
  return String(value) === text ? value : new LosslessNumber(text);
}

/**
 * A deep copy of a value from {@link parseRowJson} (after `exactNumbers` too): the same
 * value, sharing no object or array with the original, LosslessNumbers copied as
 * LosslessNumbers. Cheaper than parsing the same text again (no number scan, no parse)
 * when a document's text was already parsed for another version: the copy keeps one
 * version's row from changing when a caller changes another's.
 */
export function copyRowJson<T>(value: T): T {
  return copyValue(value) as T;
}

function copyValue(value: unknown): unknown {
  if (value === null || typeof value !== 'object') return value;
  if (Array.isArray(value)) return value.map(copyValue);
  if (isLosslessNumber(value)) return new LosslessNumber(value.value);
  // A spread defines each own member (even `__proto__`, as JSON.parse made it), in order;
  // then only the members that hold objects are copied again. for...in rather than
  // Object.keys: no list of names per copy (a version's key is copied for each version of
  // a page); it also visits enumerable members of Object.prototype, hence the own check.
  const copy: Record<string, unknown> = { ...(value as Record<string, unknown>) };
  for (const key in copy) {
    if (!Object.prototype.hasOwnProperty.call(copy, key)) continue;
    const member = copy[key];
    // An own member, so even `__proto__` is a plain assignment.
    if (member !== null && typeof member === 'object') copy[key] = copyValue(member);
  }
  return copy;
}

/** JSON text for values from {@link parseRowJson}: LosslessNumbers as their exact text. */
export function stringifyRowJson(value: unknown, space?: number): string {
  return stringify(value, null, space) ?? 'null';
}

export { LosslessNumber };

import pg from 'pg';

/** The `text[]` type's OID: the parser node-postgres applies to such a column. */
const TEXT_ARRAY_OID = 1009;

/**
 * A `text[]` value from its text, as PostgreSQL prints it (`array_out`, also what
 * `::text` of an array gives): the same array node-postgres's own `text[]` parser gives,
 * which it would have applied had the column been sent as `text[]`.
 *
 * That parser (postgres-array) makes an object for every character and joins the
 * characters of each element again: for a version's `{price,qty,updated_at}` about a
 * kilobyte of garbage, a fifth of all a 100-version history page allocated (BENCHMARKS
 * 4). Most arrays the history reads are column names that `array_out` prints bare: a
 * one-dimensional array whose elements hold no quote, backslash, brace, comma or
 * whitespace and are not empty. Those are split at the commas here; an element printed
 * bare as `NULL` is SQL NULL (a column named NULL is printed quoted). Any other text,
 * with quotes, escapes, dimensions or nesting, goes to node-postgres's parser.
 *
 * ```ts
 * parseTextArray('{price,qty}'); // ['price', 'qty']
 * parseTextArray('{"a b",NULL}'); // ['a b', null] (node-postgres's parser)
 * ```
 */
export function parseTextArray(text: string): (string | null)[] {
  if (!printedBare(text)) return pgTextArray(text) as (string | null)[];
  if (text.length === 2) return [];
  const elements: (string | null)[] = text.slice(1, -1).split(',');
  for (let i = 0; i < elements.length; i++) if (elements[i] === 'NULL') elements[i] = null;
  return elements;
}

/**
 * Whether `text` is `{...}` with no element `array_out` would quote and no nesting:
 * nothing between the braces but the characters of bare elements and commas. A bare
 * element is never empty (an empty text is quoted), so `{,}` is not one.
 */
function printedBare(text: string): boolean {
  const last = text.length - 1;
  if (last < 1 || text.charCodeAt(0) !== OPEN_BRACE || text.charCodeAt(last) !== CLOSE_BRACE)
    return false;
  let previous = OPEN_BRACE;
  for (let i = 1; i < last; i++) {
    const code = text.charCodeAt(i);
    if (
      code === QUOTE ||
      code === BACKSLASH ||
      code === OPEN_BRACE ||
      code === CLOSE_BRACE ||
      isArraySpace(code) ||
      (code === COMMA && previous === COMMA)
    )
      return false;
    previous = code;
  }
  // `{,a}` or `{a,}`: not what array_out prints.
  return last === 1 || (text.charCodeAt(1) !== COMMA && previous !== COMMA);
}

/** The whitespace `array_out` quotes an element for (array_isspace). */
function isArraySpace(code: number): boolean {
  return code === 0x20 || (code >= 0x09 && code <= 0x0d);
}

// pg-types' TypeId lists no array types; its parsers do hold them.
const pgTextArray = pg.types.getTypeParser(
  TEXT_ARRAY_OID as unknown as Parameters<typeof pg.types.getTypeParser>[0],
  'text',
) as (text: string) => unknown;

const OPEN_BRACE = 0x7b;
const CLOSE_BRACE = 0x7d;
const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const COMMA = 0x2c;

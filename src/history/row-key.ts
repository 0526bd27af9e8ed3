/**
 * The row key `row_key_of(schema, table, values)` returns, built in the client where that
 * is exact without asking the server: `row_key_of` runs dynamic SQL (`EXECUTE format(...)`)
 * per key column on every query, about 0.25 ms of server time each time.
 *
 * Only values already in their type's canonical output text qualify, for the types below:
 * then the value's JSON is the text itself (integers) or the text as a JSON string (text,
 * uuid), exactly as `to_jsonb(value::type)` and `key_of` leave it. Anything else (`007`,
 * `-0`, ` 42`, `+1`, an upper-case uuid, a value out of range, a NUL, a lone surrogate, a
 * type not listed, a domain) returns null and the caller asks `row_key_of`, so the server
 * keeps deciding every non-trivial cast and every error message.
 *
 * Hand-written rather than a library: the rule is PostgreSQL's own output format for five
 * built-in types, and the test compares it with `row_key_of` itself.
 */

/** Inclusive ranges of PostgreSQL's integer types. */
const INTEGER_RANGES: Readonly<Record<string, readonly [bigint, bigint]>> = {
  smallint: [-(2n ** 15n), 2n ** 15n - 1n],
  integer: [-(2n ** 31n), 2n ** 31n - 1n],
  bigint: [-(2n ** 63n), 2n ** 63n - 1n],
};

/** int2/int4/int8 output text: no sign but `-`, no leading zero, no `-0`. */
const CANONICAL_INTEGER = /^(?:0|-?[1-9]\d{0,19})$/;

/** uuid output text: lower-case hex, 8-4-4-4-12. */
const CANONICAL_UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/** A UTF-16 surrogate without its pair (`String.prototype.isWellFormed` is ES2024). */
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

/**
 * The JSON of one key value of a column of `type`, as `row_key_of` makes it, or null when
 * the client cannot be sure (then `row_key_of` decides).
 *
 * @example
 * ```ts
 * canonicalKeyValueJson('bigint', '42'); // '42'
 * canonicalKeyValueJson('bigint', '042'); // null: PostgreSQL reads it as 42; ask it
 * canonicalKeyValueJson('text', 'ü "x"'); // '"ü \\"x\\""'
 * ```
 */
export function canonicalKeyValueJson(type: string, text: string): string | null {
  const range = INTEGER_RANGES[type];
  if (range !== undefined) {
    if (!CANONICAL_INTEGER.test(text)) return null;
    const value = BigInt(text);
    return value >= range[0] && value <= range[1] ? text : null;
  }
  if (type === 'uuid') return CANONICAL_UUID.test(text) ? JSON.stringify(text) : null;
  if (type === 'text') {
    // PostgreSQL text holds no NUL, and node-postgres would send a lone surrogate as
    // U+FFFD: leave both to the server (an error, or what it makes of them).
    return text.includes('\u0000') || LONE_SURROGATE.test(text) ? null : JSON.stringify(text);
  }
  return null;
}

/**
 * The row key as jsonb text for the key column values `values` (text, in key order), or
 * null when any value is not canonical for its column's type.
 *
 * @example
 * ```ts
 * clientRowKey(['region', 'id'], ['text', 'bigint'], ['EU', '7']); // '{"region":"EU","id":7}'
 * ```
 */
export function clientRowKey(
  columns: readonly string[],
  types: readonly string[],
  values: readonly string[],
): string | null {
  if (columns.length !== values.length || types.length !== columns.length) return null;
  const members: string[] = [];
  for (const [i, column] of columns.entries()) {
    const json = canonicalKeyValueJson(types[i]!, values[i]!);
    if (json === null) return null;
    members.push(`${JSON.stringify(column)}:${json}`);
  }
  return `{${members.join(',')}}`;
}

/**
 * The canonical forms the hash chain is built from, in one place: the capture path
 * (triggers/trust.sql, rendered with these expressions) and `verify --integrity` (which
 * selects them and hashes them itself, outside the database) use the same text.
 *
 * Only pg_catalog built-ins, schema-qualified, with every setting-dependent rendering
 * pinned (timestamps as UTC text with microseconds, jsonb's own text form), so the text
 * is the same whatever the session's time zone, DateStyle or bytea_output.
 */

const UTC_MICROS = `'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'`;

/**
 * A timestamptz as UTC text with microseconds. The zone as a zero offset (an interval
 * constant), not the name 'UTC': the same timestamp, without looking the name up on
 * every call (the seal prints two per audit row).
 */
function utcText(column: string): string {
  return `pg_catalog.to_char(pg_catalog.timezone('00:00'::pg_catalog.interval, ${column}), ${UTC_MICROS})`;
}

/**
 * How a canonical column is printed: a jsonb `document` as its own text, a `timestamp`
 * as UTC text, a `string` (text, varchar) and an `array` (text[]) as jsonb prints them.
 */
type CanonicalKind = 'document' | 'timestamp' | 'string' | 'array';

/**
 * The audit row's columns in canonical order (every column but `id`: the row's place in
 * the chain is fixed by the block that lists its id), with how each is printed. The one
 * list both forms below are built from.
 */
const CANONICAL_ROW_COLUMNS: readonly (readonly [string, CanonicalKind])[] = [
  ['source_schema', 'string'],
  ['source_table', 'string'],
  ['row_key', 'document'],
  ['operation', 'string'],
  ['commit_timestamp', 'timestamp'],
  ['change_seq', 'string'],
  ['transaction_id', 'string'],
  ['stream_position', 'string'],
  ['old_row', 'document'],
  ['new_row', 'document'],
  ['changed_columns', 'array'],
  ['recorded_at', 'timestamp'],
];

/**
 * Columns printed after {@link CANONICAL_ROW_COLUMNS} only when one of them is not NULL:
 * added with migration 0024, so every row recorded before (and every row since without
 * a JSON null literal in a jsonb column) prints, and hashes, as it did.
 */
const CANONICAL_OPTIONAL_COLUMNS = ['old_json_nulls', 'new_json_nulls'] as const;

/** SQL: whether audit row `alias` prints its optional columns. */
function optionalColumnsPresent(alias: string): string {
  return CANONICAL_OPTIONAL_COLUMNS.map((column) => `${alias}.${column} IS NOT NULL`).join(' OR ');
}

/** Each canonical column of audit row `alias` as the SQL expression printed. */
function canonicalRowValues(alias: string) {
  return CANONICAL_ROW_COLUMNS.map(([column, kind]) => ({
    value: kind === 'timestamp' ? utcText(`${alias}.${column}`) : `${alias}.${column}`,
    kind,
  }));
}

/**
 * The text jsonb prints for one canonical value, without building a jsonb where the text
 * is known otherwise (the seal prints each audit row once, so this is per row):
 * - a document is jsonb already: its own text;
 * - a string is what to_json prints: jsonb and json escape a string by the same routine
 *   (escape_json), and to_json skips the conversion to binary jsonb and back;
 * - a timestamp's UTC text (digits, `-`, `:`, `.`, `T`, `Z`: nothing to escape) is
 *   quoted as it stands, NULL (to_char of infinity) staying NULL;
 * - an array stays with to_jsonb: json prints `["a","b"]`, jsonb `["a", "b"]`.
 * `test/trust/canonical.test.ts` holds every form equal to jsonb_build_array's text.
 */
function canonicalElementSql(value: string, kind: CanonicalKind): string {
  switch (kind) {
    case 'document':
      return value;
    case 'string':
      return `pg_catalog.to_json(${value})`;
    case 'timestamp':
      return `'"' OPERATOR(pg_catalog.||) ${value} OPERATOR(pg_catalog.||) '"'`;
    case 'array':
      return `pg_catalog.to_jsonb(${value})`;
  }
}

/**
 * Canonical text of audit row `alias`. `row_hash = sha256(utf8(text))`.
 *
 * The text is what `jsonb_build_array(<the columns>)::text` prints (the chain's rows were
 * hashed from that form), put together element by element: `[`, each element as jsonb
 * prints it ({@link canonicalElementSql}; SQL NULL as `null`), `, ` between them, `]`.
 * jsonb_build_array copied each document into a new jsonb before printing it, the
 * largest part of sealing a row; `test/trust/canonical.test.ts` holds the two forms
 * equal on the server.
 */
export function canonicalRowSql(alias: string): string {
  const element = (value: string) => `COALESCE((${value})::pg_catalog.text, 'null')`;
  const elements = canonicalRowValues(alias).map(({ value, kind }) =>
    element(canonicalElementSql(value, kind)),
  );
  const optional = CANONICAL_OPTIONAL_COLUMNS.map(
    (column) => `', ', ${element(`pg_catalog.to_jsonb(${alias}.${column})`)}`,
  );
  return (
    `pg_catalog.concat('[', ${elements.join(", ', ', ")}, ` +
    `CASE WHEN ${optionalColumnsPresent(alias)} THEN pg_catalog.concat(${optional.join(', ')}) END, ']')`
  );
}

/**
 * The form the chain's row hashes were first computed from, which
 * {@link canonicalRowSql} prints exactly: kept for the test that holds the two equal.
 */
export function canonicalRowAsArraySql(alias: string): string {
  const values = canonicalRowValues(alias).map(({ value }) => value);
  const optional = CANONICAL_OPTIONAL_COLUMNS.map((column) => `${alias}.${column}`);
  return (
    `CASE WHEN ${optionalColumnsPresent(alias)} ` +
    `THEN pg_catalog.jsonb_build_array(${[...values, ...optional].join(', ')})::text ` +
    `ELSE pg_catalog.jsonb_build_array(${values.join(', ')})::text END`
  );
}

/**
 * Canonical header text of chain block `alias`. The block hash is
 * `sha256(prev_hash || sha256(utf8(header)) || row_hashes...)`.
 */
export function canonicalBlockHeaderSql(alias: string): string {
  const c = (column: string) => `${alias}.${column}`;
  return `pg_catalog.jsonb_build_array(${c('block_no')}, ${c('kind')}, ${c('row_ids')}, ${c('last_row_id')}, ${c('pruned_through')}, ${c('actor')}, ${utcText(c('recorded_at'))})::text`;
}

/**
 * The header of {@link canonicalBlockHeaderSql} in three parts, so a block listing more
 * rows than one answer may carry (the Data API's 64 KB row) is hashed from a stream of
 * its row ids: `prefix` is the text before the `row_ids` element, `suffix` the text after
 * it, and {@link blockHeaderText} puts them back together exactly as jsonb prints them.
 */
export function canonicalBlockHeaderPartsSql(alias: string): { prefix: string; suffix: string } {
  const c = (column: string) => `${alias}.${column}`;
  return {
    prefix: `pg_catalog.rtrim(pg_catalog.jsonb_build_array(${c('block_no')}, ${c('kind')})::text, ']')`,
    suffix: `pg_catalog.ltrim(pg_catalog.jsonb_build_array(${c('last_row_id')}, ${c('pruned_through')}, ${c('actor')}, ${utcText(c('recorded_at'))})::text, '[')`,
  };
}

/**
 * The pieces of a block header's text in order, given its row ids (bigint text) one by
 * one: jsonb prints an array as `[` elements joined by `, ` `]`, and a bigint as its
 * digits, so `prefix, [id, id], suffix` is the text {@link canonicalBlockHeaderSql} makes.
 */
export const blockHeaderText = {
  open: (prefix: string) => `${prefix}, [`,
  id: (id: string, first: boolean) => (first ? id : `, ${id}`),
  close: (suffix: string) => `], ${suffix}`,
};

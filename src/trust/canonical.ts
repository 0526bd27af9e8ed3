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

function utcText(column: string): string {
  return `pg_catalog.to_char(pg_catalog.timezone('UTC', ${column}), ${UTC_MICROS})`;
}

/**
 * The audit row's columns in canonical order (every column but `id`: the row's place in
 * the chain is fixed by the block that lists its id), with how each is printed: a jsonb
 * `document` as its own text, a `timestamp` as UTC text, any other `value` as jsonb
 * prints it. The one list both forms below are built from.
 */
const CANONICAL_ROW_COLUMNS: readonly (readonly [string, 'value' | 'document' | 'timestamp'])[] = [
  ['source_schema', 'value'],
  ['source_table', 'value'],
  ['row_key', 'document'],
  ['operation', 'value'],
  ['commit_timestamp', 'timestamp'],
  ['change_seq', 'value'],
  ['transaction_id', 'value'],
  ['stream_position', 'value'],
  ['old_row', 'document'],
  ['new_row', 'document'],
  ['changed_columns', 'value'],
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
    document: kind === 'document',
  }));
}

/**
 * Canonical text of audit row `alias`. `row_hash = sha256(utf8(text))`.
 *
 * The text is what `jsonb_build_array(<the columns>)::text` prints (the chain's rows were
 * hashed from that form), put together element by element: `[`, each element as jsonb
 * prints it (a document as its own text, a string or an array through to_jsonb, SQL
 * NULL as `null`), `, ` between them, `]`. jsonb_build_array copied each document into a
 * new jsonb before printing it, the largest part of sealing a row;
 * `test/trust/canonical.test.ts` holds the two forms equal on the server.
 */
export function canonicalRowSql(alias: string): string {
  const element = (value: string) => `COALESCE(${value}::pg_catalog.text, 'null')`;
  const elements = canonicalRowValues(alias).map(({ value, document }) =>
    element(document ? value : `pg_catalog.to_jsonb(${value})`),
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

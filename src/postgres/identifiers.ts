import { escapeIdentifier, escapeLiteral } from 'pg';

/**
 * Quotes one identifier for SQL text (`my "t"` → `"my ""t"""`). Every schema,
 * table, column and role name the kit puts into SQL goes through this or through
 * kysely's `sql.id`/`sql.table`, never through string concatenation.
 */
export function quoteIdent(name: string): string {
  return escapeIdentifier(name);
}

/** Quotes `schema.name` as two identifiers. */
export function quoteQualified(schema: string, name: string): string {
  return `${quoteIdent(schema)}.${quoteIdent(name)}`;
}

/** Quotes a string literal for SQL text that cannot take bind parameters (DDL). */
export function quoteLiteral(value: string): string {
  return escapeLiteral(value);
}

/**
 * The text form of a text[] value, `{"id","code"}`, with every element quoted; quote it
 * with {@link quoteLiteral} to put it in DDL such as trigger arguments.
 */
export function formatTextArray(values: readonly string[]): string {
  return `{${values.map((value) => `"${value.replace(/(["\\])/g, '\\$1')}"`).join(',')}}`;
}

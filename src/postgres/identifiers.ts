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

/** A text[] literal such as `'{"id","code"}'`, for DDL such as trigger arguments. */
export function quoteTextArray(values: readonly string[]): string {
  const elements = values.map((value) => `"${value.replace(/(["\\])/g, '\\$1')}"`);
  return quoteLiteral(`{${elements.join(',')}}`);
}

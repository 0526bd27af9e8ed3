import type { SourceColumn, SourceTable } from '../migrate/introspect';
import { quoteIdent, quoteLiteral } from '../postgres/identifiers';

/**
 * The row document: how one row is recorded in the audit log (and compared by verify).
 * It is `to_jsonb(row)` without the ignored columns, except where jsonb would lose what
 * the source holds:
 * - a `json` column (or array of json) is its exact text, as a JSON string: jsonb would
 *   drop whitespace and duplicate keys (the JSON `null` literal is the string `"null"`;
 *   SQL NULL is JSON null);
 * - a `jsonb` column holding the JSON `null` literal is JSON null, as SQL NULL is: the
 *   audit log lists such columns beside the row (`old_json_nulls`, `new_json_nulls`),
 *   and {@link sourceRowDocumentSql} gives the same list;
 * - a float `-0` (`real`, `double precision`, or in an array of them) is the string
 *   `"-0"`, as NaN and Infinity are strings: jsonb numbers have no -0;
 * - an array whose lower bound is not 1 (in any dimension) is its exact text, as a JSON
 *   string (`"[0:1]={5,6}"`): jsonb arrays have no bounds;
 * - a `json[]` or `jsonb[]` array with an element that is the JSON `null` literal or a
 *   JSON array is its exact text, as a JSON string (`"{\"null\",NULL}"`,
 *   `"{\"[1, 2]\"}"`): JSON renders the one as null, as it renders a NULL element, and
 *   the other as it renders a dimension (`{{1,2}}`);
 * - a column of a type the target does not have (enum, composite, hstore and other
 *   extension types, arrays of them) is staged as text (what DMS carries), so its value
 *   is that text.
 * The capture trigger builds it with `exact_document` (triggers/capture-change.sql)
 * from the staging row; verify builds it with {@link sourceRowDocumentSql} from the
 * source row. A row key is built from plain `to_jsonb` with numbers normalised (see
 * `key_of`), so 2 and 2.00 are one key.
 */
export interface RowDocumentColumns {
  /** json and json[] columns, recorded as exact text. */
  readonly json: readonly string[];
  /** Scalar jsonb columns (domains over jsonb too): their JSON `null` literals are listed. */
  readonly jsonb: readonly string[];
  /** real and double precision columns (and arrays of them), -0 kept. */
  readonly float: readonly string[];
  /** Columns staged as the text of a type the target lacks. */
  readonly text: readonly string[];
  /** Array columns staged as arrays: their text where a lower bound is not 1. */
  readonly array: readonly string[];
  /** json[] and jsonb[] columns: their text where an element is JSON null or an array. */
  readonly jsonArray: readonly string[];
}

const JSON_TYPES = new Set(['json']);
const JSON_ARRAY_TYPES = new Set(['json[]', 'jsonb[]']);
const FLOAT_TYPES = new Set(['real', 'double precision']);

function elementType(column: SourceColumn): string {
  return column.type.replace(/(\[\])+$/, '');
}

/** The columns of a table whose row-document value is not plain `to_jsonb`. */
export function rowDocumentColumns(table: SourceTable): RowDocumentColumns {
  const recorded = table.columns.filter((column) => !table.ignoreColumns.includes(column.name));
  return {
    json: recorded.filter((c) => JSON_TYPES.has(elementType(c))).map((c) => c.name),
    // A domain's column has its base type here (introspect), and arrays are not listed
    // (an element that is JSON null and a NULL element look the same: a known gap).
    jsonb: recorded.filter((c) => !c.carriedAsText && c.type === 'jsonb').map((c) => c.name),
    float: recorded.filter((c) => FLOAT_TYPES.has(elementType(c))).map((c) => c.name),
    text: recorded.filter((c) => c.carriedAsText).map((c) => c.name),
    array: recorded.filter((c) => !c.carriedAsText && c.type.endsWith('[]')).map((c) => c.name),
    jsonArray: recorded
      .filter((c) => !c.carriedAsText && JSON_ARRAY_TYPES.has(c.type))
      .map((c) => c.name),
  };
}

/**
 * SQL for "this json[] or jsonb[] value is recorded as its text": an element is the JSON
 * `null` literal or a JSON array (each element's text: `null` for the literal, NULL for a
 * NULL element; an array's begins with `[`, json's after whitespace). The capture
 * trigger's `bounded_arrays` applies the same rule to staging rows.
 */
export function jsonArrayNeedsTextSql(value: string): string {
  return `EXISTS (SELECT FROM pg_catalog.unnest(${value}::text[]) AS e(t) WHERE e.t = 'null' OR e.t ~ '^[ \\t\\n\\r]*\\[')`;
}

/**
 * A query over the source table giving each row's key and row document as text, built
 * exactly as the capture trigger builds them from staging. Every identifier is quoted;
 * user columns are referenced only qualified, so any column name works.
 * Outputs `key` and `row` (jsonb text), and `json_nulls`: the jsonb columns holding the
 * JSON `null` literal as a JSON array, sorted by name in byte order, or NULL for none
 * (the audit log's `new_json_nulls` of the row).
 */
export function sourceRowDocumentSql(table: SourceTable, qualifiedSource: string): string {
  const columns = rowDocumentColumns(table);
  const textOverrides = columns.text
    .map(
      (name) =>
        ` || pg_catalog.jsonb_build_object(${quoteLiteral(name)}, pg_catalog.to_jsonb(src.${quoteIdent(name)}::text))`,
    )
    .join('');
  const slice = (name: string) => `(s.ar_json -> ${quoteLiteral(name)})::text`;
  const jsonOverrides = columns.json.map(
    (name) =>
      ` || pg_catalog.jsonb_build_object(${quoteLiteral(name)}, coalesce(pg_catalog.to_jsonb(nullif(${slice(name)}, 'null')), 'null'::jsonb))`,
  );
  const jsonNulls =
    columns.jsonb.length === 0
      ? 'NULL::text'
      : `(SELECT pg_catalog.to_jsonb(pg_catalog.array_agg(n ORDER BY n COLLATE pg_catalog."C"))::text
            FROM pg_catalog.unnest(ARRAY[${columns.jsonb
              .map(
                (name) =>
                  `CASE WHEN pg_catalog.jsonb_typeof(src.${quoteIdent(name)}) = 'null' THEN ${quoteLiteral(name)} END`,
              )
              .join(', ')}]::text[]) AS n
           WHERE n IS NOT NULL)`;
  const floatOverrides = columns.float.map(
    (name) =>
      ` || CASE WHEN ${slice(name)} ~ '(^|[[,])-0([],]|$)' THEN pg_catalog.jsonb_build_object(${quoteLiteral(name)}, ` +
      `pg_catalog.regexp_replace(${slice(name)}, '(^|[[,])-0(?=[],]|$)', '\\1"-0"', 'g')::jsonb) ELSE '{}'::jsonb END`,
  );
  // The JSON null literal of a json column is its exact text, the string "null"
  // (json_null_texts): row_to_json renders it as SQL NULL is, so its text tells. (An
  // array's text is never `null`, nor has whitespace around it.) Merged over the json
  // overrides, as the trigger merges it.
  // Likewise a json text with whitespace around it, which `->` drops (json_spaced_texts).
  const jsonNullTexts = columns.json
    .map(
      (name) =>
        ` || CASE WHEN src.${quoteIdent(name)}::text = 'null' ` +
        `OR src.${quoteIdent(name)}::text ~ '^[ \\t\\n\\r]|[ \\t\\n\\r]$' ` +
        `THEN pg_catalog.jsonb_build_object(${quoteLiteral(name)}, src.${quoteIdent(name)}::text) ELSE '{}'::jsonb END`,
    )
    .join('');
  // Merged last, as the capture trigger merges bounded_arrays over exact_document.
  const bounded = columns.array
    .map((name) => {
      const column = `src.${quoteIdent(name)}`;
      const jsonElements = columns.jsonArray.includes(name)
        ? ` OR ${jsonArrayNeedsTextSql(column)}`
        : '';
      return (
        ` || CASE WHEN ${column}::text LIKE '[%'${jsonElements} ` +
        `THEN pg_catalog.jsonb_build_object(${quoteLiteral(name)}, ${column}::text) ELSE '{}'::jsonb END`
      );
    })
    .join('');
  const ignored = `ARRAY[${table.ignoreColumns.map(quoteLiteral).join(', ')}]::text[]`;
  const keys = table.primaryKey.map(
    (name) =>
      `${quoteLiteral(name)}, CASE WHEN pg_catalog.jsonb_typeof(s.ar_doc -> ${quoteLiteral(name)}) = 'number' ` +
      `THEN pg_catalog.to_jsonb(pg_catalog.trim_scale((s.ar_doc -> ${quoteLiteral(name)})::numeric)) ELSE s.ar_doc -> ${quoteLiteral(name)} END`,
  );
  return `SELECT pg_catalog.jsonb_build_object(${keys.join(', ')})::text AS key,
       ((s.ar_doc - ${ignored})${jsonOverrides.join('')}${floatOverrides.join('')}
        || s.ar_bounded || s.ar_json_null_texts)::text AS row,
       s.ar_json_nulls AS json_nulls
  FROM (SELECT pg_catalog.to_jsonb(src.*)${textOverrides} AS ar_doc,
               pg_catalog.row_to_json(src.*) AS ar_json,
               '{}'::jsonb${bounded} AS ar_bounded,
               '{}'::jsonb${jsonNullTexts} AS ar_json_null_texts,
               ${jsonNulls} AS ar_json_nulls
          FROM ${qualifiedSource} AS src) AS s`;
}

import type pg from 'pg';
import { quoteIdent, quoteQualified } from '../../../src/postgres/identifiers';

/**
 * The schema holding the reference trigger and its event log on the source. The kit
 * never audits it: it is the independent witness history is compared with.
 */
export const ORACLE_SCHEMA = 'history_oracle';

/** A source table the oracle watches. */
export interface OracleTable {
  readonly schema: string;
  readonly table: string;
}

/**
 * Output settings the reference trigger and the decoder run under, whatever the
 * session that writes the source has set: the same text for the same value, always.
 */
const PINNED_SETTINGS = `
SET search_path = pg_catalog, pg_temp
SET DateStyle = 'ISO, MDY'
SET IntervalStyle = 'postgres'
SET extra_float_digits = 3
SET TimeZone = 'UTC'
SET bytea_output = 'hex'`;

const SETUP_SQL = `
CREATE SCHEMA IF NOT EXISTS ${ORACLE_SCHEMA};
CREATE TABLE IF NOT EXISTS ${ORACLE_SCHEMA}.event (
  seq bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  table_schema text NOT NULL,
  table_name text NOT NULL,
  -- The relation the row is in (TG_TABLE_NAME): a partitioned table's leaf partition.
  relation_name text NOT NULL,
  operation text NOT NULL,
  xid bigint NOT NULL,
  -- to_jsonb of the old and new row (for reading; values are compared as text).
  old_row jsonb,
  new_row jsonb,
  -- Each column's output text (NULL for SQL NULL), under the pinned settings.
  old_text jsonb,
  new_text jsonb,
  -- Each column's type at the time of the change (format_type without typmod).
  column_types jsonb NOT NULL
);
-- The json[] text of row_to_json's rendering of one (a JSON array's text): its elements
-- split at the top level's commas, each kept exactly as written, whitespace included (json
-- keeps it: ' 1 ' is not '1'; array_to_json puts nothing between elements but the comma),
-- then quoted; a piece that is 'null' is a NULL element and one that opens with '[' a
-- dimension (the kit records a value where an element could read as either as its array
-- text instead). Walked character by character rather than through json_array_elements,
-- which drops the whitespace around elements.
CREATE OR REPLACE FUNCTION ${ORACLE_SCHEMA}.json_array_text(value text)
RETURNS text
LANGUAGE plpgsql
${PINNED_SETTINGS}
AS $oracle$
DECLARE
  inner_text text := substr(value, 2, length(value) - 2);
  pieces text[] := '{}';
  depth int := 0;
  in_string boolean := false;
  escaped boolean := false;
  piece_start int := 1;
  c text;
BEGIN
  IF left(value, 1) <> '[' OR right(value, 1) <> ']' THEN
    RAISE EXCEPTION 'not a JSON array: %', value;
  END IF;
  IF inner_text = '' THEN
    RETURN '{}';
  END IF;
  FOR i IN 1 .. length(inner_text) LOOP
    c := substr(inner_text, i, 1);
    IF in_string THEN
      IF escaped THEN
        escaped := false;
      ELSIF c = '\\' THEN
        escaped := true;
      ELSIF c = '"' THEN
        in_string := false;
      END IF;
    ELSIF c = '"' THEN
      in_string := true;
    ELSIF c IN ('[', '{') THEN
      depth := depth + 1;
    ELSIF c IN (']', '}') THEN
      depth := depth - 1;
    ELSIF c = ',' AND depth = 0 THEN
      pieces := pieces || substr(inner_text, piece_start, i - piece_start);
      piece_start := i + 1;
    END IF;
  END LOOP;
  pieces := pieces || substr(inner_text, piece_start);
  RETURN '{' || (
    SELECT string_agg(CASE WHEN p = 'null' THEN 'NULL'
                           WHEN left(p, 1) = '[' THEN ${ORACLE_SCHEMA}.json_array_text(p)
                           ELSE '"' || replace(replace(p, '\\', '\\\\'), '"', '\\"') || '"' END,
                      ',' ORDER BY n)
      FROM unnest(pieces) WITH ORDINALITY AS x(p, n)) || '}';
END
$oracle$;
-- Turns a value of the kit's row JSON back into the source type's output text, so both
-- sides are compared as the text PostgreSQL prints for the value.
CREATE OR REPLACE FUNCTION ${ORACLE_SCHEMA}.decode(value jsonb, type_name text)
RETURNS text
LANGUAGE plpgsql
${PINNED_SETTINGS}
AS $oracle$
DECLARE
  result text;
BEGIN
  IF value IS NULL OR jsonb_typeof(value) = 'null' THEN
    RETURN NULL;
  END IF;
  -- The kit records a json column as its exact text, in a JSON string.
  IF type_name = 'json' AND jsonb_typeof(value) = 'string' THEN
    RETURN value #>> '{}';
  END IF;
  -- A json[] column too: row_to_json's text (a JSON array) unless it holds bounds or an
  -- element JSON would not keep, then the array's own text (read by the cast below).
  IF type_name = 'json[]' AND jsonb_typeof(value) = 'string' AND value #>> '{}' LIKE '[%'
     AND value #>> '{}' !~ '^\\[-?[0-9]+:' THEN
    RETURN format('%s', ${ORACLE_SCHEMA}.json_array_text(value #>> '{}')::json[]);
  END IF;
  EXECUTE format('SELECT format(''%%s'', x.v) FROM jsonb_to_record($1) AS x(v %s)', type_name)
    INTO result USING jsonb_build_object('v', value);
  RETURN result;
EXCEPTION WHEN others THEN
  RETURN format('<undecodable %s as %s: %s>', value, type_name, SQLERRM);
END
$oracle$;
`;

/**
 * Installs the oracle on the source: its event log and a row-level AFTER trigger on
 * each table, recording every change with `txid_current()` and each column's output
 * text. Needs `track_commit_timestamp = on` (commit times are read at comparison time).
 * Run {@link refreshOracle} after DDL on a watched table, so the trigger knows the new
 * columns.
 */
export async function installOracle(
  source: pg.ClientBase,
  tables: readonly OracleTable[],
): Promise<void> {
  const { rows } = await source.query<{ on: string }>(
    `SELECT current_setting('track_commit_timestamp') AS on`,
  );
  if (rows[0]?.on !== 'on')
    throw new Error('the history oracle needs track_commit_timestamp = on on the source server');
  await source.query(SETUP_SQL);
  for (const table of tables) await refreshOracle(source, table);
}

interface ColumnInfo {
  name: string;
  type: string;
  /** json or jsonb (or a domain over one): its JSON null literal is not SQL NULL. */
  jsonish: boolean;
}

/**
 * SQL for "the value of `record`.`column` is SQL NULL". `to_jsonb` renders a composite
 * whose fields are all NULL apart from SQL NULL (where `IS NULL` would not), but renders
 * a json or jsonb value that is the JSON null literal as it renders SQL NULL: for those
 * `IS NULL` is exact. (Inside an array, a JSON null element and a NULL element print
 * differently in the array's text: the generator writes no json arrays, see contract 4.)
 */
function sqlNullTest(record: string, json: string, column: ColumnInfo): string {
  return column.jsonish
    ? `${record}.${quoteIdent(column.name)} IS NULL`
    : `jsonb_typeof(${json} -> ${literal(column.name)}) = 'null'`;
}

/** The `jsonish` column of {@link ColumnInfo}, read from the attribute `a`. */
const JSONISH_SQL = `(SELECT coalesce(nullif(t.typbasetype, 0), t.oid) FROM pg_catalog.pg_type AS t
                       WHERE t.oid = a.atttypid) IN ('json'::regtype, 'jsonb'::regtype) AS jsonish`;

/** A table's current columns and the types their values decode as (see {@link decodeValues}). */
async function readColumns(source: pg.ClientBase, table: OracleTable): Promise<ColumnInfo[]> {
  const { rows } = await source.query<ColumnInfo>(
    // Without typmod, so decoding never rounds or truncates; character and bit without
    // a length would mean length 1, so they decode as their unbounded relatives.
    `SELECT a.attname AS name,
            CASE format_type(a.atttypid, NULL)
              WHEN 'character' THEN 'bpchar' WHEN 'character[]' THEN 'bpchar[]'
              WHEN 'bit' THEN 'bit varying' WHEN 'bit[]' THEN 'bit varying[]'
              ELSE format_type(a.atttypid, NULL) END AS type,
            ${JSONISH_SQL}
       FROM pg_attribute a
      WHERE a.attrelid = $1::regclass AND a.attnum > 0 AND NOT a.attisdropped
      ORDER BY a.attnum`,
    [quoteQualified(table.schema, table.table)],
  );
  return rows;
}

/** Each current column's type, as the oracle's events record it. */
export async function readColumnTypes(
  source: pg.ClientBase,
  table: OracleTable,
): Promise<Record<string, string>> {
  return Object.fromEntries((await readColumns(source, table)).map((c) => [c.name, c.type]));
}

/** (Re)creates the reference trigger of one table for its current columns. */
export async function refreshOracle(source: pg.ClientBase, table: OracleTable): Promise<void> {
  const qualified = quoteQualified(table.schema, table.table);
  const columns = await readColumns(source, table);
  const { rows: oidRows } = await source.query<{ oid: string }>(`SELECT $1::regclass::oid AS oid`, [
    qualified,
  ]);
  const functionName = `${ORACLE_SCHEMA}.capture_${oidRows[0]!.oid}`;
  const types = Object.fromEntries(columns.map((c) => [c.name, c.type]));
  const textOf = (record: 'OLD' | 'NEW') =>
    columns.length === 0
      ? `'{}'::jsonb`
      : chunks(columns, 40)
          .map(
            (part) =>
              `jsonb_build_object(${part
                .map(
                  (c) =>
                    `${literal(c.name)}, CASE WHEN ${sqlNullTest(record, `${record.toLowerCase()}_json`, c)} THEN NULL ELSE format('%s', ${record}.${quoteIdent(c.name)}) END`,
                )
                .join(', ')})`,
          )
          .join(' || ');
  await source.query(`
    CREATE OR REPLACE FUNCTION ${functionName}() RETURNS trigger
    LANGUAGE plpgsql
    ${PINNED_SETTINGS}
    AS $oracle$
    DECLARE
      old_json jsonb;
      new_json jsonb;
    BEGIN
      IF TG_OP <> 'INSERT' THEN old_json := to_jsonb(OLD); END IF;
      IF TG_OP <> 'DELETE' THEN new_json := to_jsonb(NEW); END IF;
      INSERT INTO ${ORACLE_SCHEMA}.event
        (table_schema, table_name, relation_name, operation, xid, old_row, new_row, old_text, new_text, column_types)
      VALUES (${literal(table.schema)}, ${literal(table.table)}, TG_TABLE_NAME, TG_OP, txid_current(),
        old_json, new_json,
        CASE WHEN TG_OP <> 'INSERT' THEN ${textOf('OLD')} END,
        CASE WHEN TG_OP <> 'DELETE' THEN ${textOf('NEW')} END,
        ${literal(JSON.stringify(types))}::jsonb);
      RETURN NULL;
    END
    $oracle$`);
  // One query string runs as one transaction; PostgreSQL 13 has no CREATE OR REPLACE TRIGGER.
  await source.query(
    `DROP TRIGGER IF EXISTS history_oracle ON ${qualified};
     CREATE TRIGGER history_oracle AFTER INSERT OR UPDATE OR DELETE ON ${qualified}
       FOR EACH ROW EXECUTE FUNCTION ${functionName}()`,
  );
}

/**
 * The rows a table holds now, each column as its output text under the oracle's pinned
 * settings (what a full load reads; events would give a row written before a DROP or
 * RENAME COLUMN its old shape).
 */
export async function readSourceRows(
  source: pg.ClientBase,
  table: OracleTable,
): Promise<Record<string, string | null>[]> {
  const qualified = quoteQualified(table.schema, table.table);
  const { rows: columns } = await source.query<ColumnInfo>(
    `SELECT attname::text AS name, '' AS type, ${JSONISH_SQL} FROM pg_catalog.pg_attribute AS a
      WHERE attrelid = $1::regclass AND attnum > 0 AND NOT attisdropped ORDER BY attnum`,
    [qualified],
  );
  const text =
    columns.length === 0
      ? `'{}'::jsonb`
      : chunks(columns, 40)
          .map(
            (part) =>
              `jsonb_build_object(${part
                .map(
                  (c) =>
                    `${literal(c.name)}, CASE WHEN ${sqlNullTest('r', 'to_jsonb(r)', c)} THEN NULL ELSE format('%s', r.${quoteIdent(c.name)}) END`,
                )
                .join(', ')})`,
          )
          .join(' || ');
  await source.query('BEGIN');
  try {
    for (const line of PINNED_SETTINGS.trim().split('\n'))
      await source.query(line.trim().replace(/^SET /, 'SET LOCAL '));
    const { rows } = await source.query<{ row: Record<string, string | null> }>(
      `SELECT ${text} AS row FROM ${qualified} AS r`,
    );
    return rows.map((r) => r.row);
  } finally {
    await source.query('COMMIT');
  }
}

/** The newest event's sequence number (0 when none): marks a point in the source's history. */
export async function oracleMark(source: pg.ClientBase): Promise<number> {
  const { rows } = await source.query<{ seq: string }>(
    `SELECT coalesce(max(seq), 0) AS seq FROM ${ORACLE_SCHEMA}.event`,
  );
  return Number(rows[0]!.seq);
}

/** One committed source change as the oracle recorded it. */
export interface OracleEvent {
  readonly seq: number;
  readonly schema: string;
  readonly table: string;
  /** The relation the row was in: the table, or its leaf partition. */
  readonly relation: string;
  readonly operation: 'INSERT' | 'UPDATE' | 'DELETE';
  /** The 32-bit transaction id, as pgoutput and DMS report it. */
  readonly xid: string;
  /** Commit time, UTC, `YYYY-MM-DD HH:MI:SS.US`. */
  readonly commitTimestamp: string;
  readonly oldText: Readonly<Record<string, string | null>> | null;
  readonly newText: Readonly<Record<string, string | null>> | null;
  readonly columnTypes: Readonly<Record<string, string>>;
}

/** Every committed event, in the order the changes were made. */
export async function readOracleEvents(source: pg.ClientBase): Promise<OracleEvent[]> {
  const { rows } = await source.query<{
    seq: string;
    table_schema: string;
    table_name: string;
    relation_name: string;
    operation: OracleEvent['operation'];
    xid: string;
    commit_ts: string | null;
    old_text: Record<string, string | null> | null;
    new_text: Record<string, string | null> | null;
    column_types: Record<string, string>;
  }>(
    `SELECT seq, table_schema, table_name, relation_name, operation, (xid % 4294967296)::text AS xid,
            to_char(pg_xact_commit_timestamp((xid % 4294967296)::text::xid) AT TIME ZONE 'UTC',
                    'YYYY-MM-DD HH24:MI:SS.US') AS commit_ts,
            old_text, new_text, column_types
       FROM ${ORACLE_SCHEMA}.event ORDER BY seq`,
  );
  return rows.map((row) => {
    if (row.commit_ts === null)
      throw new Error(
        `oracle: no commit timestamp for xid ${row.xid} (track_commit_timestamp off?)`,
      );
    return {
      seq: Number(row.seq),
      schema: row.table_schema,
      table: row.table_name,
      relation: row.relation_name,
      operation: row.operation,
      xid: row.xid,
      commitTimestamp: row.commit_ts,
      oldText: row.old_text,
      newText: row.new_text,
      columnTypes: row.column_types,
    };
  });
}

/** One value of a row JSON (kept as text: JSON.parse would round numbers) to decode. */
export interface EncodedValue {
  /** The row JSON as text. */
  readonly rowJson: string;
  readonly column: string;
  /** Source type to decode the value as. */
  readonly type: string;
}

/** Decodes values of the kit's row JSON to the source types' output text, in one round trip. */
export async function decodeValues(
  source: pg.ClientBase,
  values: readonly EncodedValue[],
): Promise<(string | null)[]> {
  if (values.length === 0) return [];
  const { rows } = await source.query<{ text: string | null }>(
    `SELECT ${ORACLE_SCHEMA}.decode(r::jsonb -> c, t) AS text
       FROM unnest($1::text[], $2::text[], $3::text[]) WITH ORDINALITY AS u(r, c, t, n) ORDER BY n`,
    [values.map((v) => v.rowJson), values.map((v) => v.column), values.map((v) => v.type)],
  );
  return rows.map((row) => row.text);
}

function literal(text: string): string {
  return `'${text.replace(/'/g, "''")}'`;
}

function chunks<T>(items: readonly T[], size: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size));
  return out;
}

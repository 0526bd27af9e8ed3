-- The audit triggers on every staging table. DMS (or the local engine) writes staging
-- exactly as it applies changes; these functions turn each applied change into audit
-- rows. History comes from the DMS header columns, never from now() or
-- txid_current(): those describe the apply, not the source commit.
--
-- They are statement-level triggers with transition tables: one set-based INSERT into
-- the audit log per staging statement, whether DMS applies one row per statement or
-- the local engine applies thousands.
--
-- Arguments (set per staging table by the migrations):
--   TG_ARGV[0] source schema, TG_ARGV[1] source table,
--   TG_ARGV[2] primary key columns (text[] literal, key order),
--   TG_ARGV[3] columns kept out of row JSON: DMS header columns + ignored columns
--              + generated columns' placeholders (src/staging/generated-placeholders.ts),
--   TG_ARGV[4] json columns (recorded as their exact text, see exact_document),
--   TG_ARGV[5] float columns (their -0 kept, see exact_document).
--
-- Values are compared as jsonb text, not as jsonb: jsonb equality is numeric, so
-- 1.10 -> 1.100 (a real change of the stored value) would otherwise be lost.
--
-- User columns may have any name, including every name used here. So a query that
-- reads a transition table names nothing but `alias.*` and the qualified ar_h_*
-- columns, in an inner query whose outputs are the kit's own names; variables (all
-- arg_* or v_*) and everything else appear only in the outer query, where no user
-- column is in scope. (An unqualified `to_jsonb(n)` would read a column `n`, and a
-- variable would be ambiguous with a column of the same name.)
--
-- {{audit_schema}} is replaced by the quoted audit schema before this file runs.

-- One key column's value as a row key holds it. Normalised by the key type's equality,
-- so one row has one history: a number loses trailing zeros of its scale (numeric 2 and
-- 2.00 are one key; float -0 and 0 are already one in jsonb). A number of scale 0 (an
-- integer key, nearly every one) has none and is kept as it is: to_jsonb would print it
-- and parse it back into the same value, per row side. A SQL expression with no
-- SET clause, so the planner inlines it into its callers; schema-qualified, as an
-- inlined body is parsed under the caller's search_path. STABLE, as to_jsonb is: an
-- IMMUTABLE SQL function whose body calls a STABLE one is not inlined (nor is
-- captured_key, for jsonb_build_object).
CREATE OR REPLACE FUNCTION {{audit_schema}}.key_value(value jsonb)
RETURNS jsonb
LANGUAGE sql
STABLE PARALLEL SAFE
AS $function$
  SELECT CASE WHEN pg_catalog.jsonb_typeof(value) OPERATOR(pg_catalog.=) 'number'
                AND pg_catalog.scale(value::pg_catalog.numeric) OPERATOR(pg_catalog.>) 0
              THEN pg_catalog.to_jsonb(pg_catalog.trim_scale(value::pg_catalog.numeric))
              ELSE value END
$function$;

-- The key of a row: the key columns of its JSON, as an object, each value as key_value
-- leaves it.
-- PL/pgSQL rather than SQL: these run per row, and a SQL function that cannot be
-- inlined is planned again in every statement that calls it.
-- The row helpers here (key_of, bounded_arrays, changed_columns) have no SET clause: a
-- SET clause saves and restores the setting (and search_path's lookups) on every call,
-- per captured row. Every type, function and operator in them is schema-qualified
-- instead, so no caller's search_path changes what they do (readers call key_of).
CREATE OR REPLACE FUNCTION {{audit_schema}}.key_of(row_json jsonb, key_columns text[])
RETURNS jsonb
LANGUAGE plpgsql
IMMUTABLE STRICT PARALLEL SAFE
AS $function$
DECLARE
  key_json pg_catalog.jsonb := '{}';
  name pg_catalog.text;
  value pg_catalog.jsonb;
BEGIN
  FOREACH name IN ARRAY key_columns LOOP
    value := {{audit_schema}}.key_value(row_json OPERATOR(pg_catalog.->) name);
    key_json := key_json OPERATOR(pg_catalog.||) pg_catalog.jsonb_build_object(name, value);
  END LOOP;
  RETURN key_json;
END
$function$;

-- key_of as the capture functions' set queries compute it for each row: a key of one
-- column (nearly every table's) as one expression in the query, inlined like key_value;
-- a longer key through key_of. The same jsonb either way ('{}' || an object is that
-- object).
CREATE OR REPLACE FUNCTION {{audit_schema}}.captured_key(row_json jsonb, key_columns text[])
RETURNS jsonb
LANGUAGE sql
STABLE PARALLEL SAFE
AS $function$
  SELECT CASE WHEN pg_catalog.cardinality(key_columns) OPERATOR(pg_catalog.=) 1
              THEN pg_catalog.jsonb_build_object(key_columns[1],
                     {{audit_schema}}.key_value(row_json OPERATOR(pg_catalog.->) key_columns[1]))
              ELSE {{audit_schema}}.key_of(row_json, key_columns) END
$function$;

-- The row JSON with the values to_jsonb cannot keep put back from row_to_json, which
-- renders every value as its type's output text:
-- - a json column is its exact text, as a JSON string (jsonb would drop whitespace and
--   duplicate keys, so changes of only those would leave no audit row); a value whose
--   text is `null` (the JSON null literal) looks like SQL NULL here, and the capture
--   functions merge json_null_texts over this result for it;
-- - a float -0 (scalar or in an array) becomes the string "-0", as NaN and Infinity
--   are strings (jsonb numbers have no -0).
-- The same rule is built as plain SQL for the source side of verify
-- (src/staging/row-document.ts); a test compares both.
-- No SET clause (called per row side, as key_of): every name is schema-qualified.
CREATE OR REPLACE FUNCTION {{audit_schema}}.exact_document(
  doc jsonb, row_json json, json_columns text[], float_columns text[])
RETURNS jsonb
LANGUAGE plpgsql
IMMUTABLE PARALLEL SAFE
AS $function$
DECLARE
  name pg_catalog.text;
  slice pg_catalog.text;
BEGIN
  FOREACH name IN ARRAY json_columns LOOP
    slice := (row_json OPERATOR(pg_catalog.->) name)::pg_catalog.text;
    IF slice IS NOT NULL AND slice OPERATOR(pg_catalog.<>) 'null' THEN
      doc := pg_catalog.jsonb_set(doc, ARRAY[name], pg_catalog.to_jsonb(slice), false);
    END IF;
  END LOOP;
  FOREACH name IN ARRAY float_columns LOOP
    slice := (row_json OPERATOR(pg_catalog.->) name)::pg_catalog.text;
    IF slice OPERATOR(pg_catalog.~) '(^|[[,])-0([],]|$)' THEN
      doc := pg_catalog.jsonb_set(doc, ARRAY[name],
                                  pg_catalog.regexp_replace(slice, '(^|[[,])-0(?=[],]|$)', '\1"-0"', 'g')::pg_catalog.jsonb,
                                  false);
    END IF;
  END LOOP;
  RETURN doc;
END
$function$;

-- Whether a row's text (record_out) may hold a json or jsonb value printed as `null`: an
-- unquoted `null` field (SQL NULL is an empty one). json_null_columns reads a row again
-- only then, and the capture functions call it only then. SQL with no SET clause: inlined
-- into its callers (one test, one place).
CREATE OR REPLACE FUNCTION {{audit_schema}}.may_hold_json_null(row_text text)
RETURNS boolean
LANGUAGE sql
IMMUTABLE PARALLEL SAFE
AS $function$
  SELECT pg_catalog.strpos(row_text, 'null') OPERATOR(pg_catalog.>) 0
         AND row_text OPERATOR(pg_catalog.~) '[(,]null[,)]'
$function$;

-- Whether a row's text may hold a json value with whitespace around it: a quoted field
-- that begins or ends with whitespace (JSON's four: space, tab, newline, return).
-- json_spaced_texts reads a row again only then, and the capture functions call it only
-- then. Inlined, as may_hold_json_null.
CREATE OR REPLACE FUNCTION {{audit_schema}}.may_hold_spaced_json(row_text text)
RETURNS boolean
LANGUAGE sql
IMMUTABLE PARALLEL SAFE
AS $function$
  SELECT row_text OPERATOR(pg_catalog.~) '[(,]"[ \t\n\r]|[ \t\n\r]"[,)]'
$function$;

-- The columns of a row whose value prints as exactly `null`, sorted by name in byte order
-- (the order the audit log keeps them in); NULL when none. Only json and jsonb values
-- print so: the JSON null literal (a json value whose text is `null`, any jsonb JSON null).
-- In a row document they are JSON null, as SQL NULL is: row_to_json and to_jsonb render
-- the two alike. The row's text (record_out) does not: the literal is an unquoted `null`
-- field, SQL NULL an empty one. So a row whose text has no such field (nearly every row)
-- is settled by its text alone; another is read again as its table's row type (dynamic
-- SQL, as bounded_arrays), its json and jsonb columns by name. `excluded`: columns not
-- recorded (header, ignored and placeholder columns). The capture functions call it only
-- for tables with a json or jsonb column; json_null_texts and jsonb_nulls split the result.
CREATE OR REPLACE FUNCTION {{audit_schema}}.json_null_columns(row_text text, relation regclass, excluded text[])
RETURNS text[]
LANGUAGE plpgsql
STABLE PARALLEL SAFE
AS $function$
DECLARE
  tests pg_catalog.text;
  result pg_catalog.text[];
BEGIN
  IF NOT coalesce({{audit_schema}}.may_hold_json_null(row_text), false) THEN
    RETURN NULL;
  END IF;
  -- 114 json, 3802 jsonb (fixed oids): one test per column, by name, quoted.
  SELECT pg_catalog.string_agg(
           pg_catalog.format('CASE WHEN (s.r).%I::pg_catalog.text OPERATOR(pg_catalog.=) ''null'' THEN %L END',
                             a.attname, a.attname),
           ', ' ORDER BY a.attname COLLATE pg_catalog."C")
    INTO tests
    FROM pg_catalog.pg_attribute AS a
   WHERE a.attrelid OPERATOR(pg_catalog.=) relation AND a.attnum OPERATOR(pg_catalog.>) 0
     AND NOT a.attisdropped
     AND a.atttypid OPERATOR(pg_catalog.=) ANY ('{114,3802}'::pg_catalog.oid[])
     AND a.attname::pg_catalog.text OPERATOR(pg_catalog.<>) ALL (excluded);
  IF tests IS NULL THEN
    RETURN NULL;
  END IF;
  -- regclass output names the schema unless the caller's search_path finds the table by
  -- its bare name, which then means the same table.
  EXECUTE pg_catalog.format(
    'SELECT pg_catalog.array_remove(ARRAY[%s]::pg_catalog.text[], NULL) FROM (SELECT $1::%s AS r) AS s',
    tests, relation)
    INTO result USING row_text;
  RETURN NULLIF(result, '{}'::pg_catalog.text[]);
END
$function$;

-- The json columns of a row whose text begins or ends with whitespace, each with its
-- exact text as a JSON string; '{}' for none. Merged over exact_document's result, which
-- reads a json value through row_to_json and `->`, and `->` returns a value from its first
-- token to its last: the whitespace around it is lost there, so a change of only that
-- would leave no audit row. In the row's text (record_out) such a value is a quoted field
-- that begins or ends with whitespace (JSON's four: space, tab, newline, return); a row
-- with no such field (nearly every row) is settled by its text, another read again as its
-- table's row type (dynamic SQL, as bounded_arrays), its json columns by name.
CREATE OR REPLACE FUNCTION {{audit_schema}}.json_spaced_texts(row_text text, relation regclass, json_columns text[])
RETURNS jsonb
LANGUAGE plpgsql
STABLE PARALLEL SAFE
AS $function$
DECLARE
  tests pg_catalog.text;
  result pg_catalog.jsonb;
BEGIN
  IF pg_catalog.cardinality(json_columns) OPERATOR(pg_catalog.=) 0
     OR NOT coalesce({{audit_schema}}.may_hold_spaced_json(row_text), false) THEN
    RETURN '{}';
  END IF;
  -- 114: json (a fixed oid); json[] values print as arrays, never with whitespace around.
  SELECT pg_catalog.string_agg(
           pg_catalog.format('CASE WHEN (s.r).%I::pg_catalog.text OPERATOR(pg_catalog.~) ''^[ \t\n\r]|[ \t\n\r]$'' '
                             'THEN pg_catalog.jsonb_build_object(%L, (s.r).%I::pg_catalog.text) '
                             'ELSE ''{}''::pg_catalog.jsonb END', a.attname, a.attname, a.attname),
           ' OPERATOR(pg_catalog.||) ')
    INTO tests
    FROM pg_catalog.pg_attribute AS a
   WHERE a.attrelid OPERATOR(pg_catalog.=) relation AND a.attnum OPERATOR(pg_catalog.>) 0
     AND NOT a.attisdropped AND a.atttypid OPERATOR(pg_catalog.=) 114
     AND a.attname::pg_catalog.text OPERATOR(pg_catalog.=) ANY (json_columns);
  IF tests IS NULL THEN
    RETURN '{}';
  END IF;
  EXECUTE pg_catalog.format('SELECT %s FROM (SELECT $1::%s AS r) AS s', tests, relation)
    INTO result USING row_text;
  RETURN result;
END
$function$;

-- The json columns among json_null_columns' result, each with the JSON string "null": a
-- json value is recorded as its exact text (exact_document), and the literal's is `null`.
-- Merged over exact_document's result. An empty object for none. Inlined (no SET clause).
CREATE OR REPLACE FUNCTION {{audit_schema}}.json_null_texts(nulls text[], json_columns text[])
RETURNS jsonb
LANGUAGE sql
IMMUTABLE PARALLEL SAFE
AS $function$
  SELECT coalesce((SELECT pg_catalog.jsonb_object_agg(c, 'null'::pg_catalog.text)
                     FROM pg_catalog.unnest(nulls) AS c
                    WHERE c OPERATOR(pg_catalog.=) ANY (json_columns)), '{}'::pg_catalog.jsonb)
$function$;

-- The jsonb columns among json_null_columns' result (those not json), in its order: what
-- the audit log records as old_json_nulls / new_json_nulls. NULL for none. Inlined.
CREATE OR REPLACE FUNCTION {{audit_schema}}.jsonb_nulls(nulls text[], json_columns text[])
RETURNS text[]
LANGUAGE sql
IMMUTABLE PARALLEL SAFE
AS $function$
  SELECT NULLIF(ARRAY(SELECT u.c FROM pg_catalog.unnest(nulls) WITH ORDINALITY AS u(c, i)
                                  WHERE u.c OPERATOR(pg_catalog.<>) ALL (json_columns) ORDER BY u.i),
                           '{}'::pg_catalog.text[])
$function$;

-- Whether the relation has a json or jsonb column: the capture functions' set queries
-- read each row's text for json_null_columns only then (one catalog query per statement).
CREATE OR REPLACE FUNCTION {{audit_schema}}.has_json_columns(relation regclass)
RETURNS boolean
LANGUAGE sql
STABLE PARALLEL SAFE
AS $function$
  SELECT EXISTS (SELECT FROM pg_catalog.pg_attribute AS a
                  WHERE a.attrelid OPERATOR(pg_catalog.=) relation AND a.attnum OPERATOR(pg_catalog.>) 0
                    AND NOT a.attisdropped
                    AND a.atttypid OPERATOR(pg_catalog.=) ANY ('{114,3802}'::pg_catalog.oid[]))
$function$;

-- The array columns of a relation (type category A, domains over arrays included), by
-- name in column order: the columns whose values bounded_arrays reads again, and whose
-- absence lets the capture functions' set queries skip bounded_arrays altogether. A
-- set-returning SQL function with no SET clause, so the planner inlines it into the
-- calling query; every name is schema-qualified, since an inlined body is parsed under
-- the caller's search_path. Each column's type is read by a correlated subquery, one
-- index probe whatever the caller's planner settings (capture_update runs with
-- enable_nestloop off, under which a join became a hash join over all of pg_type).
CREATE OR REPLACE FUNCTION {{audit_schema}}.array_columns(relation regclass)
RETURNS SETOF name
LANGUAGE sql
STABLE PARALLEL SAFE
AS $function$
  SELECT a.attname FROM pg_catalog.pg_attribute AS a
   WHERE a.attrelid OPERATOR(pg_catalog.=) relation AND a.attnum OPERATOR(pg_catalog.>) 0
     AND NOT a.attisdropped
     AND (SELECT t.typcategory FROM pg_catalog.pg_type AS t WHERE t.oid OPERATOR(pg_catalog.=) a.atttypid)
         OPERATOR(pg_catalog.=) 'A'
   ORDER BY a.attnum
$function$;

-- The json[] and jsonb[] columns of a relation (domains over them too), by name: the
-- array columns whose JSON null and JSON array elements bounded_arrays looks for. Inlined, as
-- array_columns.
CREATE OR REPLACE FUNCTION {{audit_schema}}.json_array_columns(relation regclass)
RETURNS SETOF name
LANGUAGE sql
STABLE PARALLEL SAFE
AS $function$
  SELECT a.attname FROM pg_catalog.pg_attribute AS a
   WHERE a.attrelid OPERATOR(pg_catalog.=) relation AND a.attnum OPERATOR(pg_catalog.>) 0
     AND NOT a.attisdropped
     -- 199 json[], 3807 jsonb[] (fixed oids), or a domain over one.
     AND (SELECT coalesce(NULLIF(t.typbasetype, 0::pg_catalog.oid), t.oid) FROM pg_catalog.pg_type AS t
           WHERE t.oid OPERATOR(pg_catalog.=) a.atttypid)
         OPERATOR(pg_catalog.=) ANY ('{199,3807}'::pg_catalog.oid[])
   ORDER BY a.attnum
$function$;

-- Whether a row's text (record_out) may hold an array value bounded_arrays records as its
-- text: exactly the rows bounded_arrays reads again (its two tests below, in one regex),
-- so a row that fails is one it returns '{}' for. A '[' alone is not enough: json and
-- jsonb values hold arrays ('{"a": [1, 2]}'), and their rows would otherwise each pay a
-- PL/pgSQL call. strpos first: a row whose text has neither a '[' nor a quoted element
-- spelled null (nearly every row of a table without json) needs no regex. SQL with no
-- SET clause: inlined into bounded_arrays, into recorded_document (the set queries) and
-- into the capture functions' one-row paths, which call bounded_arrays only for a row
-- that passes (a PL/pgSQL call per row side costs more than this test).
CREATE OR REPLACE FUNCTION {{audit_schema}}.may_hold_array_text(row_text text)
RETURNS boolean
LANGUAGE sql
IMMUTABLE PARALLEL SAFE
AS $function$
  SELECT (pg_catalog.strpos(row_text, '[') OPERATOR(pg_catalog.>) 0
          AND row_text OPERATOR(pg_catalog.~) '[(,]"?\[-?[0-9]+:|[{,](""[ \t\n\r]*)?\[')
         OR pg_catalog.strpos(row_text, '""null""') OPERATOR(pg_catalog.>) 0
$function$;

-- The array columns of a staging row that to_jsonb and row_to_json cannot keep, each as
-- its exact text, merged over exact_document's result (an empty object for nearly
-- every row):
-- - an array whose lower bound is not 1 ('[0:1]={5,6}'): JSON arrays have no bounds;
-- - a json[] or jsonb[] array with an element that is the JSON null literal or a JSON
--   array ('{"null",NULL}', '{"[1, 2]"}'): JSON renders the one as null, as it renders
--   a NULL element, and the other as it renders a dimension ('{{1,2}}').
-- The row's text (record_out, what a query over a transition table can pass without
-- naming a column) is checked first: a bounds decoration, or an array element that may
-- be either (array text quotes an element spelled null, and the row's text doubles those
-- quotes: `""null""`; an element that is an array follows `{` or `,` with `[`, or
-- quoted, with `""[` after any whitespace: array text quotes an element with a comma or
-- whitespace, and the row's text a field with quotes). Only a row with one of them is
-- read again as the staging table's row type, its array columns by name through
-- dynamic SQL.
-- The same rule is built as plain SQL for the source side of verify
-- (src/staging/row-document.ts).
CREATE OR REPLACE FUNCTION {{audit_schema}}.bounded_arrays(row_text text, relation regclass)
RETURNS jsonb
LANGUAGE plpgsql
STABLE PARALLEL SAFE
AS $function$
DECLARE
  result pg_catalog.jsonb := '{}';
  name pg_catalog.text;
  value_text pg_catalog.text;
  has_bracket pg_catalog.bool;
BEGIN
  IF NOT coalesce({{audit_schema}}.may_hold_array_text(row_text), false) THEN
    RETURN result;
  END IF;
  -- Which of the two it may hold (may_hold_array_text joins these tests).
  has_bracket := pg_catalog.strpos(row_text, '[') OPERATOR(pg_catalog.>) 0;
  IF has_bracket AND row_text OPERATOR(pg_catalog.~) '[(,]"?\[-?[0-9]+:' THEN
    FOR name IN SELECT c.attname FROM {{audit_schema}}.array_columns(relation) AS c(attname) LOOP
      -- regclass output names the schema unless the caller's search_path finds the table by
      -- its bare name, which then means the same table.
      EXECUTE pg_catalog.format('SELECT ($1::%s).%I::pg_catalog.text', relation, name) INTO value_text USING row_text;
      IF value_text OPERATOR(pg_catalog.~~) '[%' THEN
        result := result OPERATOR(pg_catalog.||) pg_catalog.jsonb_build_object(name, value_text);
      END IF;
    END LOOP;
  END IF;
  IF pg_catalog.strpos(row_text, '""null""') OPERATOR(pg_catalog.>) 0
     OR (has_bracket AND row_text OPERATOR(pg_catalog.~) '[{,](""[ \t\n\r]*)?\[') THEN
    FOR name IN SELECT c.attname FROM {{audit_schema}}.json_array_columns(relation) AS c(attname) LOOP
      -- Each element's text: `null` for the literal (json's exact text, jsonb's output),
      -- NULL for a NULL element; a JSON array's begins with `[` (json's after whitespace).
      EXECUTE pg_catalog.format(
        'SELECT CASE WHEN EXISTS (SELECT FROM pg_catalog.unnest(($1::%s).%I::pg_catalog.text[]) AS e(t) '
        'WHERE e.t OPERATOR(pg_catalog.=) ''null'' OR e.t OPERATOR(pg_catalog.~) ''^[ \t\n\r]*\['') '
        'THEN ($1::%s).%I::pg_catalog.text END', relation, name, relation, name)
        INTO value_text USING row_text;
      IF value_text IS NOT NULL THEN
        result := result OPERATOR(pg_catalog.||) pg_catalog.jsonb_build_object(name, value_text);
      END IF;
    END LOOP;
  END IF;
  RETURN result;
END
$function$;

-- The row document of a staging row in the set queries (capture_insert's, and
-- capture_update's old and new sides): to_jsonb's, without the columns not recorded,
-- with exact_document's, bounded_arrays', json_spaced_texts' and json_null_texts' values
-- merged over it in that order (the one-row paths take the same steps one by one). The
-- arguments are what the query has read of the row already, NULL where the table or
-- row needs none: exact_json (row_to_json) without json or float columns, bounds_text
-- (the row's text) without array columns, nulls without a JSON null literal.
-- bounded_arrays is called only for a row whose text passes may_hold_array_text (as on
-- the one-row paths). A SQL function with no SET clause and no subquery, given columns
-- and variables: the planner inlines it into each query (set-path-row-helpers counts no
-- call of it).
CREATE OR REPLACE FUNCTION {{audit_schema}}.recorded_document(
  row_document jsonb, exact_json json, bounds_text text, spaced jsonb, nulls text[],
  relation regclass, excluded text[], json_columns text[], float_columns text[])
RETURNS jsonb
LANGUAGE sql
STABLE PARALLEL SAFE
AS $function$
  SELECT CASE WHEN exact_json IS NOT NULL
              THEN {{audit_schema}}.exact_document(row_document OPERATOR(pg_catalog.-) excluded, exact_json,
                                                   json_columns, float_columns)
              ELSE row_document OPERATOR(pg_catalog.-) excluded END
         OPERATOR(pg_catalog.||) CASE WHEN bounds_text IS NOT NULL AND {{audit_schema}}.may_hold_array_text(bounds_text)
                                      THEN {{audit_schema}}.bounded_arrays(bounds_text, relation) OPERATOR(pg_catalog.-) excluded
                                      ELSE '{}'::pg_catalog.jsonb END
         OPERATOR(pg_catalog.||) spaced
         OPERATOR(pg_catalog.||) CASE WHEN nulls IS NOT NULL THEN {{audit_schema}}.json_null_texts(nulls, json_columns)
                                      ELSE '{}'::pg_catalog.jsonb END
$function$;

-- Columns whose value differs between two row JSONs, sorted, as one row holding the
-- array. Empty exactly when the two documents print the same text (the same keys, each
-- value printed the same), which is what the capture's version decision asks.
-- (A key of either row is in at least one, so at most one side's text is NULL: no
-- IS DISTINCT FROM, whose = would be looked up on the search_path.)
-- A set-returning SQL function with no SET clause, so the planner inlines it into
-- changed_columns. capture_update reads the same list cheaper: its set query over the
-- table's columns (changed_recorded_columns), with no key listing or sort per row; its
-- one-row path by `->>` text (text_changed_keys), calling changed_columns only where that
-- is not settled. test/trust/changed-recorded-columns holds all three equal. Every name is
-- schema-qualified (an inlined body is parsed under the caller's search_path).
CREATE OR REPLACE FUNCTION {{audit_schema}}.changed_column_list(old_row jsonb, new_row jsonb)
RETURNS SETOF text[]
LANGUAGE sql
IMMUTABLE PARALLEL SAFE
AS $function$
  SELECT ARRAY(
    SELECT k FROM pg_catalog.jsonb_object_keys(old_row OPERATOR(pg_catalog.||) new_row) AS k
    WHERE coalesce((new_row OPERATOR(pg_catalog.->) k)::pg_catalog.text
                   OPERATOR(pg_catalog.<>) (old_row OPERATOR(pg_catalog.->) k)::pg_catalog.text, true)
    ORDER BY k)
$function$;

-- The columns every row document of a staging table holds (to_jsonb's keys without the
-- columns not recorded: the merges in recorded_document only put back values of these),
-- sorted as changed_column_list sorts its keys (text in the database's default
-- collation: attname is `name`, whose "C" a plain cast would keep), each with whether it
-- is a jsonb column. For capture_update's set query, once per statement: each row's
-- changed columns are then read over this list (changed_recorded_columns) instead of
-- listing and sorting the keys of both documents again per row.
-- A set-returning SQL function (one row) with no SET clause: inlined into the caller's
-- query (which pins search_path); every name is schema-qualified.
CREATE OR REPLACE FUNCTION {{audit_schema}}.recorded_columns(relation regclass, excluded text[])
RETURNS TABLE (names text[], jsonb_typed boolean[])
LANGUAGE sql
STABLE PARALLEL SAFE
AS $function$
  SELECT coalesce(pg_catalog.array_agg(c.name ORDER BY c.name COLLATE pg_catalog."default"), '{}'),
         coalesce(pg_catalog.array_agg(c.jsonb_typed ORDER BY c.name COLLATE pg_catalog."default"), '{}')
    FROM (SELECT a.attname::pg_catalog.text AS name,
                 -- 3802: jsonb (a fixed oid)
                 a.atttypid OPERATOR(pg_catalog.=) 3802 AS jsonb_typed
            FROM pg_catalog.pg_attribute AS a
           WHERE a.attrelid OPERATOR(pg_catalog.=) relation AND a.attnum OPERATOR(pg_catalog.>) 0
             AND NOT a.attisdropped
             AND a.attname::pg_catalog.text OPERATOR(pg_catalog.<>) ALL (excluded)) AS c
$function$;

-- changed_column_list of two row documents of one staging table whose columns are
-- `names` (recorded_columns: every document of the table holds exactly these keys), in
-- that order: the same list, with no key listing, concatenation or sort per row.
-- A value is compared by its text as `->>` gives it where that text tells the values
-- apart exactly as their jsonb text does, and as jsonb text otherwise:
-- - `->>` prints a number, boolean, array or object as jsonb does, and a string
--   unescaped (escaping is one-to-one), skipping the scalar jsonb `->` builds and
--   prints back; JSON null is SQL NULL.
-- - So two values with the same `->>` text print differently only if one is a string
--   and the other not ("1" and 1). A column other than jsonb never holds both for one
--   text: to_jsonb gives a number (or a string "NaN", "Infinity", "-Infinity", "-0"
--   from exact_document, none a number's text), a boolean, an array (or its text from
--   bounded_arrays, beginning with bounds, `[1:` ..., or `{`, never an array's print),
--   or a string for every other type (a json column's exact text included).
-- - A jsonb column may hold anything: compared as jsonb text (`jsonb_typed`).
-- ORDER BY the ordinality sorts nothing (a function scan's ordinality is known sorted).
-- A set-returning SQL function with no SET clause, inlined into capture_update's set
-- query as changed_column_list was; every name is schema-qualified.
CREATE OR REPLACE FUNCTION {{audit_schema}}.changed_recorded_columns(
  old_row jsonb, new_row jsonb, names text[], jsonb_typed boolean[])
RETURNS SETOF text[]
LANGUAGE sql
IMMUTABLE PARALLEL SAFE
AS $function$
  SELECT ARRAY(
    SELECT u.name FROM ROWS FROM (pg_catalog.unnest(names), pg_catalog.unnest(jsonb_typed)) WITH ORDINALITY
                         AS u(name, jsonb_typed, i)
    WHERE CASE WHEN u.jsonb_typed
               THEN coalesce((new_row OPERATOR(pg_catalog.->) u.name)::pg_catalog.text
                             OPERATOR(pg_catalog.<>) (old_row OPERATOR(pg_catalog.->) u.name)::pg_catalog.text, true)
               ELSE NOT coalesce((new_row OPERATOR(pg_catalog.->>) u.name) OPERATOR(pg_catalog.=) (old_row OPERATOR(pg_catalog.->>) u.name),
                                 (new_row OPERATOR(pg_catalog.->>) u.name) IS NULL
                                 AND (old_row OPERATOR(pg_catalog.->>) u.name) IS NULL) END
    ORDER BY u.i)
$function$;

-- changed_column_list as a scalar, for a caller with two documents in hand: the one-row
-- path of capture_update where text_changed_keys' list is not settled (a jsonb value
-- whose type changed under the same `->>` text).
CREATE OR REPLACE FUNCTION {{audit_schema}}.changed_columns(old_row jsonb, new_row jsonb)
RETURNS text[]
LANGUAGE plpgsql
IMMUTABLE STRICT PARALLEL SAFE
AS $function$
BEGIN
  RETURN (SELECT c.names FROM {{audit_schema}}.changed_column_list(old_row, new_row) AS c(names));
END
$function$;

-- changed_column_list of two documents, read by `->>` text with no scalar jsonb per value
-- and a sort of only the keys found changed, for the one-row path (where the set query's
-- column list, a catalog read and two ordered aggregates per statement, costs more than
-- it saves on one row). `names`: the keys of new_row whose `->>` text differs from
-- old_row's (JSON null and a missing key are both NULL there), sorted as
-- changed_column_list sorts. `settled`: whether that is changed_column_list's list, which
-- the documents with those keys removed being equal as jsonb proves: each key left then
-- has the same `->>` text and, jsonb equality comparing types, the same type on both
-- sides, so the same jsonb text (`->>` prints a non-string as jsonb does and a string
-- unescaped, one-to-one); each removed key differs in text; and the two key sets are
-- equal outside `names`, which new_row holds. Not settled when a key with the same `->>`
-- text has another type on the other side ("1" against 1, only a jsonb column can hold
-- both) or when old_row has a key new_row lacks: the caller then asks changed_columns.
-- A set-returning SQL function (one row) with no SET clause: inlined into the caller's
-- query; every name is schema-qualified.
CREATE OR REPLACE FUNCTION {{audit_schema}}.text_changed_keys(old_row jsonb, new_row jsonb)
RETURNS TABLE (names text[], settled boolean)
LANGUAGE sql
IMMUTABLE PARALLEL SAFE
AS $function$
  SELECT l.names,
         CASE WHEN pg_catalog.cardinality(l.names) OPERATOR(pg_catalog.=) 0
              THEN old_row OPERATOR(pg_catalog.=) new_row
              ELSE (old_row OPERATOR(pg_catalog.-) l.names) OPERATOR(pg_catalog.=) (new_row OPERATOR(pg_catalog.-) l.names) END
    FROM (SELECT ARRAY(
            SELECT k FROM pg_catalog.jsonb_object_keys(new_row) AS k
             WHERE NOT coalesce((new_row OPERATOR(pg_catalog.->>) k) OPERATOR(pg_catalog.=) (old_row OPERATOR(pg_catalog.->>) k),
                                (new_row OPERATOR(pg_catalog.->>) k) IS NULL AND (old_row OPERATOR(pg_catalog.->>) k) IS NULL)
             ORDER BY k)
          -- A level of its own (OFFSET 0): pulled up, the list would be built again for
          -- each of its four references.
          OFFSET 0) AS l(names)
$function$;

-- with_null_changes for a row with a list: the changed columns and the columns listed on
-- one side only, sorted as changed_column_list sorts.
CREATE OR REPLACE FUNCTION {{audit_schema}}.merged_null_changes(changed text[], old_nulls text[], new_nulls text[])
RETURNS text[]
LANGUAGE sql
IMMUTABLE PARALLEL SAFE
AS $function$
  SELECT ARRAY(SELECT k FROM pg_catalog.unnest(changed) AS k
               UNION
               SELECT k FROM pg_catalog.unnest(old_nulls) AS k
                WHERE NOT k OPERATOR(pg_catalog.=) ANY (coalesce(new_nulls, '{}'::pg_catalog.text[]))
               UNION
               SELECT k FROM pg_catalog.unnest(new_nulls) AS k
                WHERE NOT k OPERATOR(pg_catalog.=) ANY (coalesce(old_nulls, '{}'::pg_catalog.text[]))
               ORDER BY 1)
$function$;

-- The changed columns of an UPDATE (changed_column_list's) with the jsonb columns whose
-- JSON null literal came or went (json_null_columns): NULL and the literal are both JSON
-- null in the documents, so only their lists tell such a change. The list as it is when
-- neither side has the literal (nearly every row). A SQL function with no SET clause and
-- no subquery, so the planner inlines it into the set query (a subquery would stop that);
-- the merge, which needs one, is called only for a row with a list.
CREATE OR REPLACE FUNCTION {{audit_schema}}.with_null_changes(changed text[], old_nulls text[], new_nulls text[])
RETURNS text[]
LANGUAGE sql
IMMUTABLE PARALLEL SAFE
AS $function$
  SELECT CASE WHEN old_nulls IS NULL AND new_nulls IS NULL THEN changed
              ELSE {{audit_schema}}.merged_null_changes(changed, old_nulls, new_nulls) END
$function$;

-- What one applied UPDATE of a staging row means for history; NULL for nothing.
-- A change is identified by its change sequence; a full-load row, which has none, by its
-- copy (the copy time in the commit timestamp). An UPDATE that carries the change the
-- row already holds is no change of the source: DMS applying it again after a restart,
-- or a direct edit of staging that left the headers alone (verify reports that row as
-- staging-differs; it must not become a version the source never made).
-- `same_data`: whether the old and new documents print the same text (only ignored or
-- header columns changed), read only where it decides, so a caller may pass NULL for a
-- row flagged deleted. capture_update passes whether the row's changed columns (which it
-- records for an UPDATE) are none: changed_recorded_columns' on the set path,
-- text_changed_keys' (or changed_columns') on the one-row path.
-- No SET clause, so the planner inlines it; it calls only pg_catalog built-ins (both
-- callers pin search_path).
CREATE OR REPLACE FUNCTION {{audit_schema}}.version_operation(
  old_seq text, old_indicator text, old_commit timestamp,
  new_seq text, new_indicator text, new_operation text, new_commit timestamp, same_data boolean)
RETURNS text
LANGUAGE sql
IMMUTABLE PARALLEL SAFE
AS $function$
  SELECT CASE
    -- The same change applied again (DMS replay after a restart), or an edit without one.
    WHEN nullif(new_seq, '') IS NOT NULL AND new_seq = old_seq THEN NULL
    -- The same full-load copy of the row (same copy time), or an edit without a change.
    WHEN nullif(new_seq, '') IS NULL AND nullif(old_seq, '') IS NULL
         AND new_commit IS NOT DISTINCT FROM old_commit THEN NULL
    -- operation_indicator keeps a deleted row and flags it.
    WHEN new_indicator = 'D' THEN CASE WHEN old_indicator = 'D' THEN NULL ELSE 'DELETE' END
    -- Full-load rows carry no change sequence: a re-loaded baseline (a new copy time).
    -- (No load meets a kept row flagged deleted: migrate empties the staging table of a
    -- table added back, src/migrate/readded-tables.ts.)
    WHEN nullif(new_seq, '') IS NULL THEN
      CASE WHEN same_data THEN NULL ELSE 'SNAPSHOT' END
    -- A re-insert of a deleted key arrives as an UPDATE of the flagged row (INSERT_RECORD).
    WHEN old_indicator = 'D' OR new_operation = 'INSERT' THEN 'INSERT'
    WHEN same_data THEN NULL -- only ignored or header columns changed
    ELSE 'UPDATE'
  END
$function$;

-- version_operation of two row documents, compared as text (jsonb equality is numeric:
-- 1.10 -> 1.100 would be lost). No longer called by the capture functions (both paths
-- decide by the changed columns they record); kept, as a capture call already running
-- an older body when migrate replaces it still calls it.
-- The signature before old_commit/new_commit were added is dropped first (CREATE OR
-- REPLACE cannot change arguments).
DROP FUNCTION IF EXISTS {{audit_schema}}.update_version_operation(jsonb, text, text, jsonb, text, text, text);
CREATE OR REPLACE FUNCTION {{audit_schema}}.update_version_operation(
  old_data jsonb, old_seq text, old_indicator text, old_commit timestamp,
  new_data jsonb, new_seq text, new_indicator text, new_operation text, new_commit timestamp)
RETURNS text
LANGUAGE sql
IMMUTABLE PARALLEL SAFE
AS $function$
  SELECT {{audit_schema}}.version_operation(old_seq, old_indicator, old_commit,
    new_seq, new_indicator, new_operation, new_commit, old_data::text = new_data::text)
$function$;

-- The reload of a table added back to the config (#17 item 19). migrate fills
-- reload_baseline with each key's newest live audit version (the prior baseline) and
-- empties the kept staging table; the pipeline then loads the table as it does any new
-- one. Each full-load row is held against its key's baseline (reload_unchanged): the
-- same row leaves no version, any other a SNAPSHOT. Once the load is complete,
-- finish_reload records a DELETE for each baseline key the load did not copy.

-- Whether a full-load row of a table being reloaded equals its key's prior baseline
-- row, and marks that key reloaded (with the row's copy time) either way (a key the
-- baseline lacks is added to it, marked reloaded). Equal means
-- every column the loaded row has is in the baseline row with the same text (as
-- update_version_operation compares rows). A column the baseline row lacks (added or
-- renamed while the table was out, or added with a per-row default that migrate
-- refused until the table was reloaded) holds a value no version records: the row is a
-- SNAPSHOT. A column only the baseline row has was dropped: no version for that.
-- Called by capture_insert (as the capture role) for each SNAPSHOT row, and only while
-- the table has a baseline.
DROP FUNCTION IF EXISTS {{audit_schema}}.reload_unchanged(text, text, jsonb, jsonb, timestamp);
CREATE OR REPLACE FUNCTION {{audit_schema}}.reload_unchanged(
  source_schema_name text, source_table_name text, row_key jsonb, row_data jsonb, row_json_nulls text[],
  copied_at timestamp)
RETURNS boolean
LANGUAGE plpgsql
VOLATILE
SET search_path = pg_catalog, pg_temp
AS $function$
DECLARE
  v_prior jsonb;
  v_prior_nulls text[];
BEGIN
  UPDATE {{audit_schema}}.reload_baseline AS b
     SET reloaded_at = greatest(b.reloaded_at, copied_at)
   WHERE b.source_schema = source_schema_name AND b.source_table = source_table_name
     AND jsonb_hash_extended(b.row_key, 0) = jsonb_hash_extended(reload_unchanged.row_key, 0)
     AND b.row_key = reload_unchanged.row_key
  RETURNING b.row_data, b.row_json_nulls INTO v_prior, v_prior_nulls;
  IF NOT FOUND THEN
    -- A key new to the table: kept, marked copied, so that reload_on_change knows the load
    -- has begun whichever keys it copies, and the load's earliest copy time counts it.
    INSERT INTO {{audit_schema}}.reload_baseline AS b (source_schema, source_table, row_key, row_data, row_json_nulls, reloaded_at)
    VALUES (source_schema_name, source_table_name, reload_unchanged.row_key, reload_unchanged.row_data,
            reload_unchanged.row_json_nulls, copied_at);
    RETURN false;
  END IF;
  -- A jsonb column is the same when its JSON null literal is on both sides or neither.
  RETURN NOT EXISTS (
    SELECT FROM jsonb_each(reload_unchanged.row_data) AS e(name, value)
     WHERE (v_prior -> e.name)::text IS DISTINCT FROM e.value::text
        OR (e.name = ANY (coalesce(reload_unchanged.row_json_nulls, '{}')))
           <> (e.name = ANY (coalesce(v_prior_nulls, '{}'))));
END
$function$;

-- Ends the reload of a table: a DELETE version for each key of its prior baseline that
-- the load did not copy (the source deleted it while the table was out of the config),
-- old row the baseline row; then forgets the baseline. When the row went is not known,
-- only that it was before the load: the DELETE is stamped with the load's earliest copy
-- time, or `not_after` when that is earlier (the commit time of the change that ends the
-- reload, so the DELETE never sorts after a change of the same key), or, with neither,
-- the current time. Returns the
-- number of DELETEs. Nothing to do (0) when no reload of the table is pending, so a
-- second call, a replay, or a call after the first captured change ended it is a no-op.
-- Called when the load is known complete: by the local engine in the transaction that
-- commits the load, by the capture triggers for the first change with a change sequence
-- once the load copied a row (DMS applies a table's changes only after its full load;
-- see reload_on_change), or by the operator (`audit-trail reload finish`, which refuses
-- a load that copied no row unless told that every row is gone). SECURITY DEFINER,
-- owned by the capture role (only it inserts audit rows); EXECUTE is granted to the writer and the owner only (and the
-- capture role), it refuses a login that may not write the table's staging table, and,
-- like the capture functions, it refuses while a foreign trigger sits on the audit
-- tables and for a table the registry does not list as configured.
CREATE OR REPLACE FUNCTION {{audit_schema}}.finish_reload(
  source_schema_name text, source_table_name text, not_after timestamp)
RETURNS integer
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
{{pinned_output_settings}}
AS $function$
DECLARE
  v_staging oid;
  v_stamp timestamp;
  v_deleted integer;
  v_foreign_trigger text;
BEGIN
  IF NOT EXISTS (SELECT FROM {{audit_schema}}.reload_baseline AS b
                  WHERE b.source_schema = source_schema_name AND b.source_table = source_table_name) THEN
    RETURN 0;
  END IF;
  SELECT r.staging_table INTO v_staging FROM {{audit_schema}}.audited_table AS r
   WHERE r.source_schema = source_schema_name AND r.source_table = source_table_name
     AND r.removed_at IS NULL;
  IF v_staging IS NULL THEN
    RAISE EXCEPTION 'finish_reload refused: %.% is not a configured audited table', source_schema_name, source_table_name
      USING ERRCODE = 'insufficient_privilege';
  END IF;
  -- Who: the login must be one that loads the table (the writer, DMS's login, the
  -- owner), even if EXECUTE was granted to someone else by mistake.
  IF NOT has_table_privilege(session_user, v_staging, 'INSERT') THEN
    RAISE EXCEPTION 'finish_reload refused: % may not write %, so it cannot say its load is complete', session_user, v_staging::regclass
      USING ERRCODE = 'insufficient_privilege';
  END IF;
  SELECT f.description INTO v_foreign_trigger FROM {{audit_schema}}.foreign_audit_trigger() AS f LIMIT 1;
  IF v_foreign_trigger IS NOT NULL THEN
    RAISE EXCEPTION 'audit capture refused: foreign trigger % would run inside the capture path', v_foreign_trigger
      USING ERRCODE = 'insufficient_privilege',
            HINT = 'Only the kit''s own triggers may sit on the audit tables; drop it (audit-trail verify --integrity lists them).';
  END IF;
  PERFORM {{audit_schema}}.lock_chain();
  SELECT coalesce(least(min(b.reloaded_at), not_after), clock_timestamp() AT TIME ZONE 'UTC') INTO v_stamp
    FROM {{audit_schema}}.reload_baseline AS b
   WHERE b.source_schema = source_schema_name AND b.source_table = source_table_name;
  PERFORM pg_catalog.set_config('audit_trail.seal_at_commit', 'off', true);
  INSERT INTO {{audit_schema}}.audit_log (
    source_schema, source_table, row_key, operation, commit_timestamp, change_seq,
    transaction_id, stream_position, old_row, new_row, changed_columns, old_json_nulls
  )
  SELECT source_schema_name, source_table_name, b.row_key, 'DELETE', v_stamp AT TIME ZONE 'UTC',
         NULL, NULL, NULL, b.row_data, NULL, NULL, b.row_json_nulls
    FROM {{audit_schema}}.reload_baseline AS b
   WHERE b.source_schema = source_schema_name AND b.source_table = source_table_name
     AND b.reloaded_at IS NULL
   ORDER BY b.row_key::text;
  GET DIAGNOSTICS v_deleted = ROW_COUNT;
  DELETE FROM {{audit_schema}}.reload_baseline AS b
   WHERE b.source_schema = source_schema_name AND b.source_table = source_table_name;
  PERFORM {{audit_schema}}.seal_blocks('capture');
  RETURN v_deleted;
END
$function$;

-- What the rows of a staging statement that carry a change sequence (`changed_rows`,
-- each as to_jsonb of the staging row) mean for the pending reload of their table, and
-- whether it has ended. None: nothing. Once the load copied a row (a baseline row with
-- `reloaded_at` set, one probe of a partial index), the first of them ends the reload
-- (finish_reload), before the change is recorded, so its DELETEs come first: DMS applies
-- a table's changes only after its full load. Before that, none ends it: a DMS task
-- running CDC only, or one that has not loaded the table again, copies nothing, and
-- ending the reload would record a DELETE for every row the history holds live, rows
-- the source may still have. But a row put under a key that the prior
-- baseline holds live (a CDC INSERT, or a key change onto it) means the source deleted
-- that key first, since a key is taken only where no row holds it. So its DELETE (old row:
-- the baseline row) is recorded, stamped with the change's commit time (when it went is
-- not known, only that it was by then), before the change itself, and the key leaves the
-- baseline: no later end of the reload may delete it again. Any other key stays in the
-- baseline. Called by the capture functions (as the capture role) while a reload of the
-- table is pending.
CREATE OR REPLACE FUNCTION {{audit_schema}}.reload_on_change(
  source_schema_name text, source_table_name text, key_columns text[], changed_rows jsonb[])
RETURNS boolean
LANGUAGE plpgsql
VOLATILE
SET search_path = pg_catalog, pg_temp
{{pinned_output_settings}}
AS $function$
DECLARE
  v_first_commit timestamp := (SELECT min((r ->> 'ar_h_commit_timestamp')::timestamp) FROM unnest(changed_rows) AS r);
  v_keys jsonb[];
  v_deleted integer;
BEGIN
  IF cardinality(changed_rows) = 0 THEN
    RETURN false;
  END IF;
  IF EXISTS (SELECT FROM {{audit_schema}}.reload_baseline AS b
              WHERE b.source_schema = source_schema_name AND b.source_table = source_table_name
                AND b.reloaded_at IS NOT NULL) THEN
    PERFORM {{audit_schema}}.finish_reload(source_schema_name, source_table_name, v_first_commit);
    RETURN true;
  END IF;
  v_keys := ARRAY(SELECT {{audit_schema}}.key_of(r, key_columns) FROM unnest(changed_rows) AS r
                   WHERE (r ->> 'ar_h_indicator') IS DISTINCT FROM 'D');
  PERFORM pg_catalog.set_config('audit_trail.seal_at_commit', 'off', true);
  WITH taken AS (
    DELETE FROM {{audit_schema}}.reload_baseline AS b
     WHERE b.source_schema = source_schema_name AND b.source_table = source_table_name
       AND b.reloaded_at IS NULL
       AND jsonb_hash_extended(b.row_key, 0) = ANY (ARRAY(SELECT jsonb_hash_extended(k, 0) FROM unnest(v_keys) AS k))
       AND b.row_key = ANY (v_keys)
    RETURNING b.row_key, b.row_data, b.row_json_nulls)
  INSERT INTO {{audit_schema}}.audit_log (
    source_schema, source_table, row_key, operation, commit_timestamp, change_seq,
    transaction_id, stream_position, old_row, new_row, changed_columns, old_json_nulls
  )
  SELECT source_schema_name, source_table_name, t.row_key, 'DELETE', v_first_commit AT TIME ZONE 'UTC',
         NULL, NULL, NULL, t.row_data, NULL, NULL, t.row_json_nulls
    FROM taken AS t
   ORDER BY t.row_key::text;
  GET DIAGNOSTICS v_deleted = ROW_COUNT;
  IF v_deleted > 0 THEN
    PERFORM {{audit_schema}}.seal_blocks('capture');
  END IF;
  RETURN false;
END
$function$;

-- Whether a reload of the table is pending (a row, or none), for the capture functions to
-- ask together with whether this staging statement carries a change with a change
-- sequence (then reload_on_change decides what the change means for the reload). One
-- index probe per staging statement.
-- A set-returning SQL function with no SET clause: the planner inlines it into the
-- calling query (a scalar one holding a subquery is never inlined, and was planned again
-- on every call). Its callers pin search_path.
DROP FUNCTION IF EXISTS {{audit_schema}}.reload_pending(text, text);
CREATE OR REPLACE FUNCTION {{audit_schema}}.pending_reload(source_schema_name text, source_table_name text)
RETURNS SETOF boolean
LANGUAGE sql
STABLE
AS $function$
  SELECT true FROM {{audit_schema}}.reload_baseline AS b
   WHERE b.source_schema = source_schema_name AND b.source_table = source_table_name
   LIMIT 1
$function$;

-- AFTER INSERT: CDC inserts, full-load rows (empty change sequence: SNAPSHOT), and
-- rows that arrive already flagged deleted.
CREATE OR REPLACE FUNCTION {{audit_schema}}.capture_insert()
RETURNS trigger
LANGUAGE plpgsql
SECURITY DEFINER
-- Pinned so that row JSON (timestamptz, floats, intervals, bytea, money, and the dates in
-- the record text bounded_arrays reads) is identical whatever the session that applies
-- changes has set: DMS's sessions take the target database's and role's settings, which
-- the kit cannot pin as it pins its own connections'. The placeholder below renders
-- PINNED_OUTPUT_SETTINGS (src/postgres/pinned-settings.ts), jit off included: with JIT
-- on (the default where LLVM is present) every statement here would be compiled again on
-- each staging statement, costing seconds instead of milliseconds. search_path: so no
-- object on the applier's search_path is picked up.
SET search_path = pg_catalog, pg_temp
{{pinned_output_settings}}
-- Generic plans: with custom ones (chosen for good here, as a custom plan is estimated
-- cheaper), the set query was planned again on every staging statement, which cost more
-- than recording a hundred rows. Every statement here reads transition tables (no
-- statistics either way), the registry or the chain by equality or key order.
SET plan_cache_mode = force_generic_plan
AS $function$
DECLARE
  arg_source_schema constant text := TG_ARGV[0];
  arg_source_table constant text := TG_ARGV[1];
  arg_key_columns constant text[] := TG_ARGV[2]::text[];
  arg_excluded_columns constant text[] := TG_ARGV[3]::text[];
  arg_json_columns constant text[] := TG_ARGV[4]::text[];
  arg_float_columns constant text[] := TG_ARGV[5]::text[];
  arg_exact constant boolean := cardinality(arg_json_columns) + cardinality(arg_float_columns) > 0;
  arg_json constant boolean := cardinality(arg_json_columns) > 0;
  v_rows bigint;
  v_reloading boolean;
  v_cdc_change boolean;
  v_seal_queued boolean;
  v_arrays boolean;
  v_jsons boolean;
  v_data jsonb; v_json json; v_text text; v_key jsonb; v_operation text; v_nulls text[];
  v_commit_ts timestamptz; v_seq text; v_xid text; v_lsn text; v_commit_raw timestamp;
  v_done text;
BEGIN
  -- Refuse any table but a registered staging table with its registered arguments, and
  -- take the chain lock before ids are allocated (triggers/trust.sql). Assignments, not
  -- PERFORM: a call alone is evaluated as an expression, with no executor start-up.
  v_done := {{audit_schema}}.assert_capture_call(TG_RELID, TG_ARGV);
  v_done := {{audit_schema}}.lock_chain();
  -- What the rest decides on, in one statement (each costs an executor start-up).
  SELECT EXISTS (SELECT FROM {{audit_schema}}.pending_reload(arg_source_schema, arg_source_table)),
         EXISTS (SELECT FROM new_rows AS ins_row WHERE nullif(ins_row.ar_h_change_seq, '') IS NOT NULL),
         (SELECT count(*) FROM new_rows),
         coalesce((SELECT q.queued FROM {{audit_schema}}.seal_queued() AS q(queued)), false)
    INTO v_reloading, v_cdc_change, v_rows, v_seal_queued;
  -- No row: nothing to record or seal. The engine's INSERT ... ON CONFLICT DO UPDATE
  -- fires the UPDATE trigger too, with no row unless a key was taken (and this one with
  -- none when every key was).
  IF v_rows = 0 THEN
    RETURN NULL;
  END IF;
  -- A table added back to the config: full-load rows are held against the prior
  -- baseline, and the first change with a change sequence ends the reload once the load
  -- copied a row (see reload_on_change).
  IF v_reloading AND v_cdc_change THEN
    v_reloading := NOT {{audit_schema}}.reload_on_change(arg_source_schema, arg_source_table, arg_key_columns,
      ARRAY(SELECT to_jsonb(ins_row.*) FROM new_rows AS ins_row WHERE nullif(ins_row.ar_h_change_seq, '') IS NOT NULL));
    v_seal_queued := false; -- reload_on_change sealed every row, if it recorded any
  END IF;
  -- DMS applies one row per statement: its rows are hash-chained once per transaction,
  -- at commit (seal_at_commit is queued for a row inserted while this is on, the first
  -- of the transaction's unsealed rows: seal_queued); a larger statement seals its rows
  -- itself, below.
  v_done := pg_catalog.set_config('audit_trail.seal_at_commit',
              CASE WHEN v_rows = 1 AND NOT v_seal_queued THEN 'on' ELSE 'off' END, true);
  IF v_rows = 1 THEN
    -- One row (DMS): read in one statement and recorded by an INSERT ... VALUES; the set
    -- query below would start its every level for one row. What is recorded is the set
    -- query's, step for step.
    SELECT to_jsonb(ins_row.*), CASE WHEN ar_flags.ar_exact THEN row_to_json(ins_row.*) END,
           record_out(ins_row.*)::text,
           CASE
             WHEN ins_row.ar_h_indicator = 'D' THEN 'DELETE'
             WHEN nullif(ins_row.ar_h_change_seq, '') IS NULL THEN 'SNAPSHOT'
             ELSE 'INSERT'
           END,
           ins_row.ar_h_commit_timestamp AT TIME ZONE 'UTC', nullif(ins_row.ar_h_change_seq, ''),
           nullif(ins_row.ar_h_transaction_id, ''), nullif(ins_row.ar_h_stream_position, ''),
           ins_row.ar_h_commit_timestamp
      INTO v_data, v_json, v_text, v_operation, v_commit_ts, v_seq, v_xid, v_lsn, v_commit_raw
      FROM new_rows AS ins_row
      CROSS JOIN (SELECT arg_exact AS ar_exact) AS ar_flags;
    -- The key and bounded_arrays' first test as expressions of this function (inlined SQL):
    -- a one-column key, and a row with no array text, make no PL/pgSQL call.
    v_key := {{audit_schema}}.captured_key(v_data, arg_key_columns);
    v_data := v_data - arg_excluded_columns;
    IF arg_exact THEN
      v_data := {{audit_schema}}.exact_document(v_data, v_json, arg_json_columns, arg_float_columns);
    END IF;
    IF {{audit_schema}}.may_hold_array_text(v_text) THEN
      v_data := v_data || ({{audit_schema}}.bounded_arrays(v_text, TG_RELID) - arg_excluded_columns);
    END IF;
    -- json text with whitespace around it, and the JSON null literal (a json column's
    -- text, a jsonb column's name in the list). Each call only where the row's text may
    -- hold one: a PL/pgSQL call costs more on this path than the (inlined) test.
    IF arg_json AND {{audit_schema}}.may_hold_spaced_json(v_text) THEN
      v_data := v_data || {{audit_schema}}.json_spaced_texts(v_text, TG_RELID, arg_json_columns);
    END IF;
    IF {{audit_schema}}.may_hold_json_null(v_text) THEN
      v_nulls := {{audit_schema}}.json_null_columns(v_text, TG_RELID, arg_excluded_columns);
      IF v_nulls IS NOT NULL THEN
        v_data := v_data || {{audit_schema}}.json_null_texts(v_nulls, arg_json_columns);
        v_nulls := {{audit_schema}}.jsonb_nulls(v_nulls, arg_json_columns);
      END IF;
    END IF;
    -- Reloading: a full-load row equal to its key's prior baseline is no version.
    IF v_operation <> 'SNAPSHOT' OR NOT v_reloading
       OR NOT {{audit_schema}}.reload_unchanged(arg_source_schema, arg_source_table, v_key, v_data, v_nulls, v_commit_raw) THEN
      INSERT INTO {{audit_schema}}.audit_log (
        source_schema, source_table, row_key, operation, commit_timestamp, change_seq,
        transaction_id, stream_position, old_row, new_row, changed_columns, old_json_nulls, new_json_nulls
      ) VALUES (
        arg_source_schema, arg_source_table, v_key, v_operation, v_commit_ts, v_seq, v_xid, v_lsn,
        CASE WHEN v_operation = 'DELETE' THEN v_data END, CASE WHEN v_operation <> 'DELETE' THEN v_data END, NULL,
        CASE WHEN v_operation = 'DELETE' THEN v_nulls END, CASE WHEN v_operation <> 'DELETE' THEN v_nulls END)
      ON CONFLICT ON CONSTRAINT audit_log_change_key DO NOTHING;
    END IF;
    v_done := pg_catalog.set_config('audit_trail.seal_at_commit', 'off', true);
    RETURN NULL;
  END IF;
  -- Array bounds to keep only if the table has an array column: otherwise a statement of
  -- many rows skips each row's record text and bounded_arrays call (one catalog query
  -- for the statement; the one-row path above asks bounded_arrays, which settles most
  -- rows by their text at once).
  -- Likewise a row's JSON null literals (json_null_columns) only if it has a json or
  -- jsonb column.
  SELECT EXISTS (SELECT FROM {{audit_schema}}.array_columns(TG_RELID)), {{audit_schema}}.has_json_columns(TG_RELID)
    INTO v_arrays, v_jsons;
  INSERT INTO {{audit_schema}}.audit_log (
    source_schema, source_table, row_key, operation, commit_timestamp, change_seq,
    transaction_id, stream_position, old_row, new_row, changed_columns, old_json_nulls, new_json_nulls
  )
  SELECT arg_source_schema, arg_source_table, c.ar_key,
         c.ar_operation, c.ar_commit_timestamp, c.ar_change_seq, c.ar_transaction_id, c.ar_stream_position,
         CASE WHEN c.ar_operation = 'DELETE' THEN c.ar_data END,
         CASE WHEN c.ar_operation <> 'DELETE' THEN c.ar_data END,
         NULL,
         CASE WHEN c.ar_operation = 'DELETE' THEN c.ar_json_nulls END,
         CASE WHEN c.ar_operation <> 'DELETE' THEN c.ar_json_nulls END
  FROM (
    SELECT {{audit_schema}}.recorded_document(r.ar_row, r.ar_exact_json, r.ar_bounds_text, r.ar_spaced, r.ar_nulls,
                                              TG_RELID, arg_excluded_columns, arg_json_columns, arg_float_columns) AS ar_data,
           CASE WHEN r.ar_nulls IS NOT NULL THEN {{audit_schema}}.jsonb_nulls(r.ar_nulls, arg_json_columns) END AS ar_json_nulls,
           {{audit_schema}}.captured_key(r.ar_row, arg_key_columns) AS ar_key,
           r.ar_operation, r.ar_commit_timestamp,
           r.ar_change_seq, r.ar_transaction_id, r.ar_stream_position, r.ar_commit_raw
    FROM (SELECT j.*, CASE WHEN arg_exact THEN j.ar_json END AS ar_exact_json,
                 CASE WHEN v_arrays THEN j.ar_text END AS ar_bounds_text,
                 -- The two helpers' first test on the row's text, inlined here: most rows
                 -- pass neither, and a PL/pgSQL call per row costs more than the test.
                 CASE WHEN v_jsons AND {{audit_schema}}.may_hold_json_null(j.ar_text)
                      THEN {{audit_schema}}.json_null_columns(j.ar_text, TG_RELID, arg_excluded_columns) END AS ar_nulls,
                 CASE WHEN arg_json AND {{audit_schema}}.may_hold_spaced_json(j.ar_text)
                      THEN {{audit_schema}}.json_spaced_texts(j.ar_text, TG_RELID, arg_json_columns)
                      ELSE '{}' END AS ar_spaced
          FROM (
      -- User columns are in scope here: only qualified references. The other renderings
      -- of the row only where read (ar_flags), as each costs per row.
      SELECT to_jsonb(ins_row.*) AS ar_row,
             CASE WHEN ar_flags.ar_exact THEN row_to_json(ins_row.*) END AS ar_json,
             CASE WHEN ar_flags.ar_arrays OR ar_flags.ar_jsons THEN record_out(ins_row.*)::text END AS ar_text,
             CASE
               WHEN ins_row.ar_h_indicator = 'D' THEN 'DELETE'
               WHEN nullif(ins_row.ar_h_change_seq, '') IS NULL THEN 'SNAPSHOT'
               ELSE 'INSERT'
             END AS ar_operation,
             ins_row.ar_h_commit_timestamp AT TIME ZONE 'UTC' AS ar_commit_timestamp,
             nullif(ins_row.ar_h_change_seq, '') AS ar_change_seq,
             nullif(ins_row.ar_h_transaction_id, '') AS ar_transaction_id,
             nullif(ins_row.ar_h_stream_position, '') AS ar_stream_position,
             ins_row.ar_h_commit_timestamp AS ar_commit_raw
      FROM new_rows AS ins_row
      -- The variables, in a FROM item of their own, where no user column is in scope.
      CROSS JOIN (SELECT arg_exact AS ar_exact, v_arrays AS ar_arrays, v_jsons AS ar_jsons) AS ar_flags
      -- Not merged into the query that reads it (OFFSET 0): pulled up, each of its
      -- outputs is an expression copied into every reference, and the row's text is read
      -- by four to six (bounds, the two first tests, the two helpers), each a record_out
      -- of the whole row.
      OFFSET 0) AS j
    -- Nor is this level merged into the one above (OFFSET 0), which would build each
    -- row's JSON again for every reference to it (its data and its key), and its JSON
    -- null columns for each of theirs. row_to_json only for a table with exact columns,
    -- record_out only for one with array, json or jsonb columns: a CASE in the row's own
    -- query, so the generic plan (see plan_cache_mode above) skips them as a custom plan
    -- dropped the unread outputs.
    OFFSET 0) AS r
  ) AS c
  -- Reloading: a full-load row equal to its key's prior baseline is no version.
  WHERE c.ar_operation <> 'SNAPSHOT' OR NOT v_reloading
     OR NOT {{audit_schema}}.reload_unchanged(arg_source_schema, arg_source_table, c.ar_key, c.ar_data,
                                              c.ar_json_nulls, c.ar_commit_raw)
  ORDER BY c.ar_change_seq NULLS FIRST
  -- DMS re-applies changes after a task restart: one change, one audit row.
  ON CONFLICT ON CONSTRAINT audit_log_change_key DO NOTHING;
  -- Hash-chain what this statement added (nothing for a replay).
  PERFORM {{audit_schema}}.seal_blocks('capture');
  RETURN NULL;
END
$function$;

-- AFTER UPDATE: updates, deletes (operation_indicator flags the kept row 'D'),
-- re-inserts of deleted keys (INSERT_RECORD updates the flagged row), re-loaded
-- full-load rows, and primary key changes.
-- A SNAPSHOT is a baseline, as the load's INSERT records it: no old row.
CREATE OR REPLACE FUNCTION {{audit_schema}}.capture_update()
RETURNS trigger
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
{{pinned_output_settings}}
-- The plan is cached from the first statement, often a one-row one, and transition
-- tables carry no statistics: nested loops would make a 2,000-row statement quadratic.
-- Hash joins stay linear and cost next to nothing for one row.
SET enable_nestloop = off
-- Generic plans, as in capture_insert.
SET plan_cache_mode = force_generic_plan
AS $function$
DECLARE
  arg_source_schema constant text := TG_ARGV[0];
  arg_source_table constant text := TG_ARGV[1];
  arg_key_columns constant text[] := TG_ARGV[2]::text[];
  arg_excluded_columns constant text[] := TG_ARGV[3]::text[];
  arg_json_columns constant text[] := TG_ARGV[4]::text[];
  arg_float_columns constant text[] := TG_ARGV[5]::text[];
  arg_exact constant boolean := cardinality(arg_json_columns) + cardinality(arg_float_columns) > 0;
  arg_json constant boolean := cardinality(arg_json_columns) > 0;
  v_old_data jsonb; v_old_seq text; v_old_indicator text;
  v_new_data jsonb; v_new_seq text; v_new_indicator text; v_new_operation text;
  v_commit_ts timestamptz; v_xid text; v_lsn text; v_old_commit timestamp; v_new_commit timestamp;
  v_old_key jsonb; v_new_key jsonb; v_version text;
  v_old_json json; v_new_json json; v_old_text text; v_new_text text;
  v_old_nulls text[]; v_new_nulls text[];
  v_rows bigint; v_reloading boolean; v_cdc_change boolean; v_seal_queued boolean; v_arrays boolean;
  v_jsons boolean; v_columns text[]; v_jsonb_typed boolean[]; v_changed text[]; v_settled boolean;
  v_done text;
BEGIN
  -- As in capture_insert: the caller check, the chain lock, and what the rest decides on.
  v_done := {{audit_schema}}.assert_capture_call(TG_RELID, TG_ARGV);
  v_done := {{audit_schema}}.lock_chain();
  SELECT EXISTS (SELECT FROM {{audit_schema}}.pending_reload(arg_source_schema, arg_source_table)),
         EXISTS (SELECT FROM new_rows AS new_row WHERE nullif(new_row.ar_h_change_seq, '') IS NOT NULL),
         (SELECT count(*) FROM new_rows),
         coalesce((SELECT q.queued FROM {{audit_schema}}.seal_queued() AS q(queued)), false)
    INTO v_reloading, v_cdc_change, v_rows, v_seal_queued;
  -- No row (as in capture_insert): the engine's INSERT ... ON CONFLICT DO UPDATE of new keys.
  IF v_rows = 0 THEN
    RETURN NULL;
  END IF;
  -- A table added back to the config: its first change with a change sequence ends the
  -- reload once the load copied a row (see reload_on_change).
  IF v_reloading AND v_cdc_change THEN
    v_done := {{audit_schema}}.reload_on_change(arg_source_schema, arg_source_table, arg_key_columns,
      ARRAY(SELECT to_jsonb(new_row.*) FROM new_rows AS new_row WHERE nullif(new_row.ar_h_change_seq, '') IS NOT NULL));
    v_seal_queued := false; -- reload_on_change sealed every row, if it recorded any
  END IF;
  -- DMS applies one row per statement: the plain path costs a fraction of the set query,
  -- and its rows are hash-chained once per transaction, at commit (as in capture_insert).
  -- A larger statement seals its rows itself.
  IF v_rows = 1 THEN
    -- One statement for both sides (each SPI statement costs an executor start-up).
    -- row_to_json only for a table with exact columns (ar_flags, as in capture_insert).
    SELECT to_jsonb(old_row.*), CASE WHEN ar_flags.ar_exact THEN row_to_json(old_row.*) END, record_out(old_row.*)::text,
           old_row.ar_h_change_seq, old_row.ar_h_indicator, old_row.ar_h_commit_timestamp,
           to_jsonb(new_row.*), CASE WHEN ar_flags.ar_exact THEN row_to_json(new_row.*) END, record_out(new_row.*)::text,
           nullif(new_row.ar_h_change_seq, ''), new_row.ar_h_indicator,
           new_row.ar_h_operation, new_row.ar_h_commit_timestamp AT TIME ZONE 'UTC',
           nullif(new_row.ar_h_transaction_id, ''), nullif(new_row.ar_h_stream_position, ''),
           new_row.ar_h_commit_timestamp
      INTO v_old_data, v_old_json, v_old_text, v_old_seq, v_old_indicator, v_old_commit,
           v_new_data, v_new_json, v_new_text, v_new_seq, v_new_indicator, v_new_operation, v_commit_ts, v_xid, v_lsn,
           v_new_commit
      FROM old_rows AS old_row CROSS JOIN new_rows AS new_row
      CROSS JOIN (SELECT arg_exact AS ar_exact) AS ar_flags;
    -- Keys and bounded_arrays' first test inlined, as in capture_insert's one-row path.
    v_old_key := {{audit_schema}}.captured_key(v_old_data, arg_key_columns);
    v_new_key := {{audit_schema}}.captured_key(v_new_data, arg_key_columns);
    v_old_data := v_old_data - arg_excluded_columns;
    v_new_data := v_new_data - arg_excluded_columns;
    IF arg_exact THEN
      v_old_data := {{audit_schema}}.exact_document(v_old_data, v_old_json, arg_json_columns, arg_float_columns);
      v_new_data := {{audit_schema}}.exact_document(v_new_data, v_new_json, arg_json_columns, arg_float_columns);
    END IF;
    IF {{audit_schema}}.may_hold_array_text(v_old_text) THEN
      v_old_data := v_old_data || ({{audit_schema}}.bounded_arrays(v_old_text, TG_RELID) - arg_excluded_columns);
    END IF;
    IF {{audit_schema}}.may_hold_array_text(v_new_text) THEN
      v_new_data := v_new_data || ({{audit_schema}}.bounded_arrays(v_new_text, TG_RELID) - arg_excluded_columns);
    END IF;
    -- json whitespace and the JSON null literal, as in capture_insert (each call only where
    -- the row side's text may hold one).
    IF arg_json AND {{audit_schema}}.may_hold_spaced_json(v_old_text) THEN
      v_old_data := v_old_data || {{audit_schema}}.json_spaced_texts(v_old_text, TG_RELID, arg_json_columns);
    END IF;
    IF arg_json AND {{audit_schema}}.may_hold_spaced_json(v_new_text) THEN
      v_new_data := v_new_data || {{audit_schema}}.json_spaced_texts(v_new_text, TG_RELID, arg_json_columns);
    END IF;
    IF {{audit_schema}}.may_hold_json_null(v_old_text) OR {{audit_schema}}.may_hold_json_null(v_new_text) THEN
      v_old_nulls := {{audit_schema}}.json_null_columns(v_old_text, TG_RELID, arg_excluded_columns);
      IF v_old_nulls IS NOT NULL THEN
        v_old_data := v_old_data || {{audit_schema}}.json_null_texts(v_old_nulls, arg_json_columns);
        v_old_nulls := {{audit_schema}}.jsonb_nulls(v_old_nulls, arg_json_columns);
      END IF;
      v_new_nulls := {{audit_schema}}.json_null_columns(v_new_text, TG_RELID, arg_excluded_columns);
      IF v_new_nulls IS NOT NULL THEN
        v_new_data := v_new_data || {{audit_schema}}.json_null_texts(v_new_nulls, arg_json_columns);
        v_new_nulls := {{audit_schema}}.jsonb_nulls(v_new_nulls, arg_json_columns);
      END IF;
    END IF;
    -- The changed columns (not for a row flagged deleted, whose version does not depend on
    -- its data): none exactly when the two documents print the same text, so they also
    -- decide the version, as on the set path.
    IF v_new_indicator IS DISTINCT FROM 'D' THEN
      SELECT c.names, c.settled INTO v_changed, v_settled
        FROM {{audit_schema}}.text_changed_keys(v_old_data, v_new_data) AS c;
      IF NOT v_settled THEN
        v_changed := {{audit_schema}}.changed_columns(v_old_data, v_new_data);
      END IF;
    END IF;
    -- A jsonb column that went from SQL NULL to the JSON null literal or back changed
    -- the data, though the documents print the same.
    v_version := {{audit_schema}}.version_operation(v_old_seq, v_old_indicator, v_old_commit,
                   v_new_seq, v_new_indicator, v_new_operation, v_new_commit,
                   v_old_nulls IS NOT DISTINCT FROM v_new_nulls AND cardinality(v_changed) = 0);
    IF v_version IS NULL THEN
      RETURN NULL;
    END IF;
    v_done := pg_catalog.set_config('audit_trail.seal_at_commit', CASE WHEN v_seal_queued THEN 'off' ELSE 'on' END, true);
    IF v_version IN ('UPDATE', 'INSERT') AND v_new_key <> v_old_key AND v_old_indicator IS DISTINCT FROM 'D' THEN
      -- A key change also ends the old key's history with a DELETE.
      INSERT INTO {{audit_schema}}.audit_log (
        source_schema, source_table, row_key, operation, commit_timestamp, change_seq,
        transaction_id, stream_position, old_row, new_row, changed_columns, old_json_nulls
      ) VALUES (arg_source_schema, arg_source_table, v_old_key, 'DELETE', v_commit_ts, v_new_seq, v_xid, v_lsn,
                v_old_data, NULL, NULL, v_old_nulls)
      ON CONFLICT ON CONSTRAINT audit_log_change_key DO NOTHING;
    END IF;
    INSERT INTO {{audit_schema}}.audit_log (
      source_schema, source_table, row_key, operation, commit_timestamp, change_seq,
      transaction_id, stream_position, old_row, new_row, changed_columns, old_json_nulls, new_json_nulls
    ) VALUES (
      arg_source_schema, arg_source_table, CASE WHEN v_version = 'DELETE' THEN v_old_key ELSE v_new_key END,
      v_version, v_commit_ts, v_new_seq, v_xid, v_lsn,
      CASE WHEN v_version IN ('INSERT', 'SNAPSHOT') THEN NULL ELSE v_old_data END,
      CASE WHEN v_version = 'DELETE' THEN NULL ELSE v_new_data END,
      CASE WHEN v_version = 'UPDATE' THEN {{audit_schema}}.with_null_changes(v_changed, v_old_nulls, v_new_nulls) END,
      CASE WHEN v_version IN ('INSERT', 'SNAPSHOT') THEN NULL ELSE v_old_nulls END,
      CASE WHEN v_version = 'DELETE' THEN NULL ELSE v_new_nulls END)
    ON CONFLICT ON CONSTRAINT audit_log_change_key DO NOTHING;
    v_done := pg_catalog.set_config('audit_trail.seal_at_commit', 'off', true);
    RETURN NULL;
  END IF;

  v_done := pg_catalog.set_config('audit_trail.seal_at_commit', 'off', true);
  -- As in capture_insert: bounds to keep only if the table has an array column.
  -- And the columns each row's changed columns are read over (recorded_columns).
  SELECT EXISTS (SELECT FROM {{audit_schema}}.array_columns(TG_RELID)), {{audit_schema}}.has_json_columns(TG_RELID),
         c.names, c.jsonb_typed
    INTO v_arrays, v_jsons, v_columns, v_jsonb_typed
    FROM {{audit_schema}}.recorded_columns(TG_RELID, arg_excluded_columns) AS c;

  INSERT INTO {{audit_schema}}.audit_log (
    source_schema, source_table, row_key, operation, commit_timestamp, change_seq,
    transaction_id, stream_position, old_row, new_row, changed_columns, old_json_nulls, new_json_nulls
  )
  WITH old_side AS (
    SELECT {{audit_schema}}.recorded_document(r.ar_row, r.ar_exact_json, r.ar_bounds_text, r.ar_spaced, r.ar_nulls,
                                              TG_RELID, arg_excluded_columns, arg_json_columns, arg_float_columns) AS data,
           CASE WHEN r.ar_nulls IS NOT NULL THEN {{audit_schema}}.jsonb_nulls(r.ar_nulls, arg_json_columns) END AS json_nulls,
           {{audit_schema}}.captured_key(r.ar_row, arg_key_columns) AS row_key,
           r.ar_change_seq AS change_seq, r.ar_indicator AS indicator, r.ar_commit AS commit_raw
    FROM (SELECT j.*, CASE WHEN arg_exact THEN j.ar_json END AS ar_exact_json,
                 CASE WHEN v_arrays THEN j.ar_text END AS ar_bounds_text,
                 -- The two helpers' first test on the row's text, inlined here: most rows
                 -- pass neither, and a PL/pgSQL call per row costs more than the test.
                 CASE WHEN v_jsons AND {{audit_schema}}.may_hold_json_null(j.ar_text)
                      THEN {{audit_schema}}.json_null_columns(j.ar_text, TG_RELID, arg_excluded_columns) END AS ar_nulls,
                 CASE WHEN arg_json AND {{audit_schema}}.may_hold_spaced_json(j.ar_text)
                      THEN {{audit_schema}}.json_spaced_texts(j.ar_text, TG_RELID, arg_json_columns)
                      ELSE '{}' END AS ar_spaced
          FROM (
      -- User columns are in scope here: only qualified references (flags as in capture_insert).
      SELECT to_jsonb(old_row.*) AS ar_row,
             CASE WHEN ar_flags.ar_exact THEN row_to_json(old_row.*) END AS ar_json,
             CASE WHEN ar_flags.ar_arrays OR ar_flags.ar_jsons THEN record_out(old_row.*)::text END AS ar_text,
             old_row.ar_h_change_seq AS ar_change_seq, old_row.ar_h_indicator AS ar_indicator,
             old_row.ar_h_commit_timestamp AS ar_commit
      FROM old_rows AS old_row
      CROSS JOIN (SELECT arg_exact AS ar_exact, v_arrays AS ar_arrays, v_jsons AS ar_jsons) AS ar_flags
      OFFSET 0) AS j -- each rendering of the row made once, and only if read (as in capture_insert)
    OFFSET 0) AS r
  ), new_side AS (
    SELECT {{audit_schema}}.recorded_document(r.ar_row, r.ar_exact_json, r.ar_bounds_text, r.ar_spaced, r.ar_nulls,
                                              TG_RELID, arg_excluded_columns, arg_json_columns, arg_float_columns) AS data,
           CASE WHEN r.ar_nulls IS NOT NULL THEN {{audit_schema}}.jsonb_nulls(r.ar_nulls, arg_json_columns) END AS json_nulls,
           {{audit_schema}}.captured_key(r.ar_row, arg_key_columns) AS row_key,
           r.ar_change_seq AS change_seq, r.ar_indicator AS indicator, r.ar_operation AS operation,
           r.ar_commit_timestamp AS commit_timestamp, r.ar_transaction_id AS transaction_id,
           r.ar_stream_position AS stream_position, r.ar_commit AS commit_raw
    FROM (SELECT j.*, CASE WHEN arg_exact THEN j.ar_json END AS ar_exact_json,
                 CASE WHEN v_arrays THEN j.ar_text END AS ar_bounds_text,
                 -- The two helpers' first test on the row's text, inlined here: most rows
                 -- pass neither, and a PL/pgSQL call per row costs more than the test.
                 CASE WHEN v_jsons AND {{audit_schema}}.may_hold_json_null(j.ar_text)
                      THEN {{audit_schema}}.json_null_columns(j.ar_text, TG_RELID, arg_excluded_columns) END AS ar_nulls,
                 CASE WHEN arg_json AND {{audit_schema}}.may_hold_spaced_json(j.ar_text)
                      THEN {{audit_schema}}.json_spaced_texts(j.ar_text, TG_RELID, arg_json_columns)
                      ELSE '{}' END AS ar_spaced
          FROM (
      -- User columns are in scope here: only qualified references (flags as in capture_insert).
      SELECT to_jsonb(new_row.*) AS ar_row,
             CASE WHEN ar_flags.ar_exact THEN row_to_json(new_row.*) END AS ar_json,
             CASE WHEN ar_flags.ar_arrays OR ar_flags.ar_jsons THEN record_out(new_row.*)::text END AS ar_text,
             nullif(new_row.ar_h_change_seq, '') AS ar_change_seq,
             new_row.ar_h_indicator AS ar_indicator, new_row.ar_h_operation AS ar_operation,
             new_row.ar_h_commit_timestamp AS ar_commit,
             new_row.ar_h_commit_timestamp AT TIME ZONE 'UTC' AS ar_commit_timestamp,
             nullif(new_row.ar_h_transaction_id, '') AS ar_transaction_id,
             nullif(new_row.ar_h_stream_position, '') AS ar_stream_position
      FROM new_rows AS new_row
      CROSS JOIN (SELECT arg_exact AS ar_exact, v_arrays AS ar_arrays, v_jsons AS ar_jsons) AS ar_flags
      OFFSET 0) AS j -- each rendering of the row made once, and only if read (as in capture_insert)
    OFFSET 0) AS r
  ), joined AS (
    -- Old and new rows meet on the key in one join: a row whose key stayed finds its
    -- partner, a row whose key changed is alone on its side (old_key or row_key NULL; a
    -- captured key is never NULL). One hash table for the statement, rather than one for
    -- the pairs and one for each side's anti-join.
    SELECT o.data AS old_data, o.json_nulls AS old_json_nulls, o.row_key AS old_key, o.change_seq AS old_seq,
           o.indicator AS old_indicator, o.commit_raw AS old_commit,
           n.data, n.json_nulls, n.row_key, n.change_seq, n.indicator, n.operation, n.commit_timestamp,
           n.transaction_id, n.stream_position, n.commit_raw
    FROM old_side AS o FULL JOIN new_side AS n ON n.row_key = o.row_key
  ), pairs AS (
    -- Rows whose key stayed.
    SELECT * FROM joined AS j WHERE j.old_key IS NOT NULL AND j.row_key IS NOT NULL
    UNION ALL
    -- A key change leaves one row without a partner on each side. DMS applies one
    -- change per statement, so exactly one of each; more would be ambiguous.
    SELECT o.old_data, o.old_json_nulls, o.old_key, o.old_seq, o.old_indicator, o.old_commit,
           n.data, n.json_nulls, n.row_key, n.change_seq, n.indicator, n.operation, n.commit_timestamp,
           n.transaction_id, n.stream_position, n.commit_raw
    FROM joined AS o CROSS JOIN joined AS n
    WHERE o.row_key IS NULL AND n.old_key IS NULL
      AND {{audit_schema}}.assert_single_key_change((SELECT count(*) FROM joined AS m WHERE m.row_key IS NULL),
                                                    (SELECT count(*) FROM joined AS m WHERE m.old_key IS NULL))
  ), versions AS (
    SELECT d.*,
           {{audit_schema}}.version_operation(d.old_seq, d.old_indicator, d.old_commit,
             d.change_seq, d.indicator, d.operation, d.commit_raw, cardinality(d.changed) = 0) AS version_operation
    FROM (
    -- The JSON null flips added to the changed columns in a level of its own (OFFSET 0),
    -- so that version_operation reads a plain column: an argument holding a function
    -- call, read twice, keeps a SQL function from being inlined.
    SELECT c.*, {{audit_schema}}.with_null_changes(c.changed_data, c.old_json_nulls, c.json_nulls) AS changed
    FROM (
      -- Each row's changed columns, computed once in this query (no call per row): they
      -- say whether the data changed (as a text comparison of the documents
      -- would) and are recorded for an UPDATE. Not for a row flagged deleted, whose
      -- version does not depend on its data. A level of its own (OFFSET 0), so that
      -- version_operation reads the list rather than the subquery that computes it.
      SELECT p.*,
             CASE WHEN p.indicator IS DISTINCT FROM 'D'
                  THEN (SELECT l.names FROM {{audit_schema}}.changed_recorded_columns(p.old_data, p.data, v_columns,
                                                                                     v_jsonb_typed) AS l(names))
             END AS changed_data
      FROM pairs AS p
      OFFSET 0) AS c
    OFFSET 0) AS d
  )
  SELECT arg_source_schema, arg_source_table, v.row_key, v.version_operation, v.commit_timestamp, v.change_seq,
         v.transaction_id, v.stream_position,
         CASE WHEN v.version_operation IN ('INSERT', 'SNAPSHOT') THEN NULL ELSE v.old_data END,
         CASE WHEN v.version_operation = 'DELETE' THEN NULL ELSE v.data END,
         CASE WHEN v.version_operation = 'UPDATE' THEN v.changed END,
         CASE WHEN v.version_operation IN ('INSERT', 'SNAPSHOT') THEN NULL ELSE v.old_json_nulls END,
         CASE WHEN v.version_operation = 'DELETE' THEN NULL ELSE v.json_nulls END
  FROM versions AS v
  WHERE v.version_operation IS NOT NULL
  UNION ALL
  -- A key change also ends the old key's history with a DELETE.
  SELECT arg_source_schema, arg_source_table, v.old_key, 'DELETE',
         v.commit_timestamp, v.change_seq, v.transaction_id, v.stream_position, v.old_data, NULL, NULL,
         v.old_json_nulls, NULL
  FROM versions AS v
  WHERE v.version_operation IN ('UPDATE', 'INSERT')
    AND v.row_key <> v.old_key
    AND v.old_indicator IS DISTINCT FROM 'D'
  ORDER BY 6 NULLS FIRST, 4
  ON CONFLICT ON CONSTRAINT audit_log_change_key DO NOTHING;
  -- Hash-chain what this statement added (nothing for a replay).
  PERFORM {{audit_schema}}.seal_blocks('capture');
  RETURN NULL;
END
$function$;

-- Refuses a statement that moves several rows to new keys at once: their old and new
-- rows could not be paired with certainty, and a wrong pairing would falsify history.
CREATE OR REPLACE FUNCTION {{audit_schema}}.assert_single_key_change(moved_old bigint, moved_new bigint)
RETURNS boolean
LANGUAGE plpgsql
IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $function$
BEGIN
  IF moved_old > 1 OR moved_new > 1 OR moved_old <> moved_new THEN
    RAISE EXCEPTION 'one staging UPDATE changed % primary key(s) into % new one(s); apply key changes one row per statement, as DMS does',
      moved_old, moved_new USING ERRCODE = 'feature_not_supported';
  END IF;
  RETURN true;
END
$function$;

-- Row triggers on every staging table: how staging takes what DMS applies after a task
-- restart (it applies its last changes again, with the same change sequences) and key
-- changes. They decide only whether and where a row is written; the statement triggers
-- above record every change that reaches staging. BEFORE triggers fire in name order.
--
-- Every row that ever had a key keeps it: a delete flags its row (operation_indicator),
-- and a key change leaves a row flagged deleted under the old key (keep_moved_key). So
-- a replayed change always finds its row, and the row's change sequence tells whether
-- the change is newer. DMS applies an UPDATE (a delete is one under operation_indicator)
-- that finds no row as an apply error, which stops the kit's task (ApplyErrorUpdatePolicy
-- STOP_TASK): a change must never find its row gone.

-- An UPDATE applying a change the row already carries, or an older one, is a replay:
-- applied again it would put back an older state, over a row flagged deleted it would
-- read as a re-insert, and a replayed key change would move a row flagged deleted onto
-- the live one. The row stays as it is (returning OLD, so the UPDATE still finds its
-- row and DMS sees no conflict), and the statement trigger records nothing for it. This
-- covers INSERT_RECORD too: a replayed INSERT of a kept key updates that row.
-- The trigger fires only for statements that set the change sequence (DMS sets every
-- header column; a hand-edit that does not is left to verify) and, by its WHEN, only
-- when that sequence is not newer than the row's. No rights needed.
CREATE OR REPLACE FUNCTION {{audit_schema}}.skip_applied_change()
RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $function$
BEGIN
  RETURN OLD;
END
$function$;

-- A key change onto a key whose row is flagged deleted: that row holds the key, so the
-- UPDATE would fail on the staging primary key and the task would stop. Its history is
-- complete in the audit log (staging has no delete trigger), so it is removed first and
-- the update then applies. Only a row flagged deleted is removed: a live row on the new
-- key stays and the UPDATE fails, as it must. Fired, by its WHEN, only for a key change
-- (after skip_applied_change, which turns a replayed one into no change). Runs with the
-- applier's rights (the writer may delete staging rows).
-- TG_ARGV[2]: the key columns (text[] literal), as for the capture triggers.
CREATE OR REPLACE FUNCTION {{audit_schema}}.yield_deleted_key()
RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
SET jit = off
AS $function$
DECLARE
  arg_key_columns constant text[] := TG_ARGV[2]::text[];
BEGIN
  EXECUTE format('DELETE FROM %s AS s WHERE (%s) = (%s) AND s.ar_h_indicator = %L',
                 TG_RELID::regclass,
                 (SELECT string_agg(format('s.%I', c), ', ' ORDER BY o) FROM unnest(arg_key_columns) WITH ORDINALITY AS k(c, o)),
                 (SELECT string_agg(format('($1).%I', c), ', ' ORDER BY o) FROM unnest(arg_key_columns) WITH ORDINALITY AS k(c, o)),
                 'D')
    USING NEW;
  RETURN NEW;
END
$function$;

-- After a key change, the old key keeps a row flagged deleted, with the key change's
-- headers, as a DELETE would have left it: a replay of an earlier change of that key
-- finds it (and skip_applied_change keeps it), a replay of the key change itself too.
-- Its INSERT records the old key's DELETE, which capture_update would record anyway
-- (same change sequence: one audit row). Fired, by its WHEN, only for a key change.
-- Runs with the applier's rights (the writer may insert staging rows).
CREATE OR REPLACE FUNCTION {{audit_schema}}.keep_moved_key()
RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
SET jit = off
AS $function$
DECLARE
  kept record := OLD;
BEGIN
  kept.ar_h_operation := 'DELETE';
  kept.ar_h_indicator := 'D';
  kept.ar_h_commit_timestamp := NEW.ar_h_commit_timestamp;
  kept.ar_h_change_seq := NEW.ar_h_change_seq;
  kept.ar_h_transaction_id := NEW.ar_h_transaction_id;
  kept.ar_h_stream_position := NEW.ar_h_stream_position;
  EXECUTE format('INSERT INTO %s SELECT ($1).*', TG_RELID::regclass) USING kept;
  RETURN NULL;
END
$function$;

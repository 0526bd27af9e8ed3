-- Row JSON for readers: jsonb keeps numeric and bigint exactly, but JSON clients parse
-- numbers into doubles. For the columns listed, numbers become strings ("19.990",
-- "9007199254740993"), so nothing is rounded on the way to the history API.
-- {{audit_schema}} is replaced by the quoted audit schema before this file runs.
CREATE OR REPLACE FUNCTION {{audit_schema}}.exact_row(row_json jsonb, numeric_columns text[])
RETURNS jsonb
LANGUAGE plpgsql
IMMUTABLE STRICT PARALLEL SAFE
-- PL/pgSQL rather than SQL: its plans are cached for the session, where a SQL function
-- body would be planned again in every query that calls it. Only the listed columns
-- (usually a few) are visited, not every key of the row.
SET search_path = pg_catalog, pg_temp
{{pinned_output_settings}}
AS $function$
DECLARE
  exact jsonb := row_json;
  name text;
  value jsonb;
BEGIN
  FOREACH name IN ARRAY numeric_columns LOOP
    value := row_json -> name;
    IF jsonb_typeof(value) = 'number' THEN
      exact := jsonb_set(exact, ARRAY[name], to_jsonb(value #>> '{}'));
    ELSIF jsonb_typeof(value) = 'array' THEN
      exact := jsonb_set(exact, ARRAY[name], (
        SELECT coalesce(jsonb_agg(CASE WHEN jsonb_typeof(x) = 'number' THEN to_jsonb(x #>> '{}') ELSE x END ORDER BY n), '[]')
        FROM jsonb_array_elements(value) WITH ORDINALITY AS a(x, n)));
    END IF;
  END LOOP;
  RETURN exact;
END
$function$;

-- The row_key the trigger stored for a key given as text values (as a CLI user types
-- them): each value is cast to its key column's type and turned into JSON the
-- same way the trigger does, so `42`, `2026-01-01 00:00:00+01` or a uuid all match.
CREATE OR REPLACE FUNCTION {{audit_schema}}.row_key_of(p_source_schema text, p_source_table text, p_key_values text[])
RETURNS jsonb
LANGUAGE plpgsql
STABLE
SET search_path = pg_catalog, pg_temp
{{pinned_output_settings}}
AS $function$
DECLARE
  registered record;
  key_json jsonb := '{}'::jsonb;
  column_value jsonb;
BEGIN
  SELECT key_columns, key_types INTO registered
  FROM {{audit_schema}}.audited_table
  WHERE source_schema = p_source_schema AND source_table = p_source_table;
  IF NOT FOUND THEN
    RAISE EXCEPTION 'table %.% is not audited', p_source_schema, p_source_table USING ERRCODE = 'undefined_table';
  END IF;
  IF coalesce(cardinality(p_key_values), 0) <> cardinality(registered.key_columns) THEN
    RAISE EXCEPTION 'table %.% has a key of % column(s) (%), got % value(s)',
      p_source_schema, p_source_table, cardinality(registered.key_columns),
      array_to_string(registered.key_columns, ', '), coalesce(cardinality(p_key_values), 0)
      USING ERRCODE = 'invalid_parameter_value';
  END IF;
  FOR i IN 1 .. cardinality(registered.key_columns) LOOP
    -- The registry's type, not the staging table's: staging may have been dropped.
    EXECUTE format('SELECT to_jsonb(%L::%s)', p_key_values[i], registered.key_types[i]) INTO column_value;
    key_json := key_json || jsonb_build_object(registered.key_columns[i], column_value);
  END LOOP;
  -- Normalised as the trigger normalises keys (2.00 finds the history of 2).
  RETURN {{audit_schema}}.key_of(key_json, registered.key_columns);
END
$function$;

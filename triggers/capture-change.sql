-- The audit trigger on every staging table. DMS (or the local engine) writes staging
-- exactly as it applies changes; this function turns each applied change into one
-- audit row. History comes from the DMS header columns, never from now() or
-- txid_current(): those describe the apply, not the source commit.
--
-- Arguments (set per staging table by the migrations):
--   TG_ARGV[0] source schema, TG_ARGV[1] source table,
--   TG_ARGV[2] primary key columns (text[] literal, key order),
--   TG_ARGV[3] columns kept out of row JSON: DMS header columns + ignored columns.
--
-- {{audit_schema}} is replaced by the quoted audit schema before this file runs.
CREATE OR REPLACE FUNCTION {{audit_schema}}.capture_change()
RETURNS trigger
LANGUAGE plpgsql
SECURITY DEFINER
-- Pinned so that row JSON (timestamptz, floats) is identical whatever the session that
-- applies changes has set, and so no object on the applier's search_path is picked up.
SET search_path = pg_catalog, pg_temp
SET timezone = 'UTC'
SET extra_float_digits = 1
AS $function$
DECLARE
  source_schema constant text := TG_ARGV[0];
  source_table constant text := TG_ARGV[1];
  key_columns constant text[] := TG_ARGV[2]::text[];
  excluded_columns constant text[] := TG_ARGV[3]::text[];
  change_seq constant text := nullif(NEW.ar_h_change_seq, '');
  new_row jsonb := to_jsonb(NEW) - excluded_columns;
  old_row jsonb;
  operation text;
  changed text[];
BEGIN
  IF TG_OP = 'UPDATE' THEN
    -- DMS re-applies changes after a task restart: the same change sequence on the
    -- same row is that change again, not a new version.
    IF change_seq IS NOT NULL AND change_seq = OLD.ar_h_change_seq THEN
      RETURN NULL;
    END IF;
    old_row := to_jsonb(OLD) - excluded_columns;
  END IF;

  IF NEW.ar_h_indicator = 'D' THEN
    -- operation_indicator keeps the deleted row and flags it: the delete's headers are new.
    IF TG_OP = 'UPDATE' AND OLD.ar_h_indicator = 'D' THEN
      RETURN NULL;
    END IF;
    operation := 'DELETE';
    old_row := coalesce(old_row, new_row);
    new_row := NULL;
  ELSIF change_seq IS NULL THEN
    -- Full-load rows carry no change sequence: a baseline, not a change.
    operation := 'SNAPSHOT';
    IF old_row IS NOT DISTINCT FROM new_row THEN
      RETURN NULL;
    END IF;
  ELSIF TG_OP = 'INSERT' OR OLD.ar_h_indicator = 'D' OR NEW.ar_h_operation = 'INSERT' THEN
    -- A re-insert of a deleted key arrives as an UPDATE of the flagged row (INSERT_RECORD).
    operation := 'INSERT';
    old_row := NULL;
  ELSE
    operation := 'UPDATE';
    IF old_row = new_row THEN
      RETURN NULL; -- only ignored or header columns changed
    END IF;
    SELECT array_agg(name ORDER BY name) INTO changed
    FROM (SELECT jsonb_object_keys(new_row) UNION SELECT jsonb_object_keys(old_row)) AS keys(name)
    WHERE new_row -> name IS DISTINCT FROM old_row -> name;
  END IF;

  INSERT INTO {{audit_schema}}.audit_log AS log (
    source_schema, source_table, row_key, operation, commit_timestamp, change_seq,
    transaction_id, stream_position, old_row, new_row, changed_columns
  )
  SELECT source_schema, source_table,
         (SELECT jsonb_object_agg(k, coalesce(new_row, old_row) -> k) FROM unnest(key_columns) AS k),
         operation, NEW.ar_h_commit_timestamp AT TIME ZONE 'UTC', change_seq,
         nullif(NEW.ar_h_transaction_id, ''), nullif(NEW.ar_h_stream_position, ''),
         old_row, new_row, changed
  ON CONFLICT ON CONSTRAINT audit_log_change_seq_key DO NOTHING;
  RETURN NULL;
END
$function$;

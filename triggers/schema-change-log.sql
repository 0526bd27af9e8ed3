-- The schema-change log is append-only like the audit log: the same guard (from
-- append-only.sql, installed before this file) lets only the table's owner remove rows.
-- Its tables: the column changes (schema_change), where each first showed in the stream
-- (schema_change_position, the engine's record) and the partitions attached and
-- detached (partition_change): all evidence. Per table <t>, triggers <t>_append_only
-- and <t>_no_truncate, ENABLE ALWAYS (session_replication_role = replica must not switch
-- them off). DROP + CREATE rather than CREATE OR REPLACE TRIGGER: PostgreSQL 13 lacks
-- the latter.
-- The audit schema's placeholders are filled in before this file runs
-- (src/migrate/sql-files.ts); the loop takes it as a string literal, quoted already.
DO $function$
DECLARE
  log_table text;
BEGIN
  FOREACH log_table IN ARRAY ARRAY['schema_change', 'schema_change_position', 'partition_change'] LOOP
    EXECUTE format(
      'DROP TRIGGER IF EXISTS %1$I ON %3$s.%4$I;
       CREATE TRIGGER %1$I BEFORE UPDATE OR DELETE ON %3$s.%4$I
         FOR EACH ROW EXECUTE FUNCTION %3$s.forbid_audit_log_change();
       DROP TRIGGER IF EXISTS %2$I ON %3$s.%4$I;
       CREATE TRIGGER %2$I BEFORE TRUNCATE ON %3$s.%4$I
         FOR EACH STATEMENT EXECUTE FUNCTION %3$s.forbid_audit_log_change();
       ALTER TABLE %3$s.%4$I ENABLE ALWAYS TRIGGER %1$I;
       ALTER TABLE %3$s.%4$I ENABLE ALWAYS TRIGGER %2$I',
      log_table || '_append_only', log_table || '_no_truncate', {{audit_schema_literal}}, log_table);
  END LOOP;
END
$function$;

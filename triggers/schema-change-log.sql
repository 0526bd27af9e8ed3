-- The schema-change log is append-only like the audit log: the same guard (from
-- append-only.sql, installed before this file) lets only the table's owner remove rows.
-- DROP + CREATE rather than CREATE OR REPLACE TRIGGER: PostgreSQL 13 lacks the latter.
-- {{audit_schema}} is replaced by the quoted audit schema before this file runs.
DROP TRIGGER IF EXISTS schema_change_append_only ON {{audit_schema}}.schema_change;
CREATE TRIGGER schema_change_append_only
  BEFORE UPDATE OR DELETE ON {{audit_schema}}.schema_change
  FOR EACH ROW EXECUTE FUNCTION {{audit_schema}}.forbid_audit_log_change();
DROP TRIGGER IF EXISTS schema_change_no_truncate ON {{audit_schema}}.schema_change;
CREATE TRIGGER schema_change_no_truncate
  BEFORE TRUNCATE ON {{audit_schema}}.schema_change
  FOR EACH STATEMENT EXECUTE FUNCTION {{audit_schema}}.forbid_audit_log_change();
ALTER TABLE {{audit_schema}}.schema_change ENABLE ALWAYS TRIGGER schema_change_append_only;
ALTER TABLE {{audit_schema}}.schema_change ENABLE ALWAYS TRIGGER schema_change_no_truncate;

-- Where each change first showed in the stream (the engine's record) is evidence too.
DROP TRIGGER IF EXISTS schema_change_position_append_only ON {{audit_schema}}.schema_change_position;
CREATE TRIGGER schema_change_position_append_only
  BEFORE UPDATE OR DELETE ON {{audit_schema}}.schema_change_position
  FOR EACH ROW EXECUTE FUNCTION {{audit_schema}}.forbid_audit_log_change();
DROP TRIGGER IF EXISTS schema_change_position_no_truncate ON {{audit_schema}}.schema_change_position;
CREATE TRIGGER schema_change_position_no_truncate
  BEFORE TRUNCATE ON {{audit_schema}}.schema_change_position
  FOR EACH STATEMENT EXECUTE FUNCTION {{audit_schema}}.forbid_audit_log_change();
ALTER TABLE {{audit_schema}}.schema_change_position ENABLE ALWAYS TRIGGER schema_change_position_append_only;
ALTER TABLE {{audit_schema}}.schema_change_position ENABLE ALWAYS TRIGGER schema_change_position_no_truncate;

-- Partitions attached and detached (the log's partition entries) are evidence too.
DROP TRIGGER IF EXISTS partition_change_append_only ON {{audit_schema}}.partition_change;
CREATE TRIGGER partition_change_append_only
  BEFORE UPDATE OR DELETE ON {{audit_schema}}.partition_change
  FOR EACH ROW EXECUTE FUNCTION {{audit_schema}}.forbid_audit_log_change();
DROP TRIGGER IF EXISTS partition_change_no_truncate ON {{audit_schema}}.partition_change;
CREATE TRIGGER partition_change_no_truncate
  BEFORE TRUNCATE ON {{audit_schema}}.partition_change
  FOR EACH STATEMENT EXECUTE FUNCTION {{audit_schema}}.forbid_audit_log_change();
ALTER TABLE {{audit_schema}}.partition_change ENABLE ALWAYS TRIGGER partition_change_append_only;
ALTER TABLE {{audit_schema}}.partition_change ENABLE ALWAYS TRIGGER partition_change_no_truncate;

-- Makes the audit log append-only: UPDATE and TRUNCATE fail for every role, and a
-- DELETE must be covered by a retention checkpoint in the hash chain, which only
-- prune_audit_log() writes (triggers/trust.sql). Who may INSERT or DELETE at all is
-- checked by the kit-table guard the migration installs on every kit table.
-- The owner can still disable these triggers (so can a superuser): the hash chain and
-- its anchors are what detect that (audit-trail verify --integrity).
-- {{audit_schema}} is replaced by the quoted audit schema before this file runs.
CREATE OR REPLACE FUNCTION {{audit_schema}}.forbid_audit_log_change()
RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $function$
BEGIN
  RAISE EXCEPTION 'the audit log is append-only: % on %.% is not allowed for role %', TG_OP, TG_TABLE_SCHEMA, TG_TABLE_NAME, current_user
    USING ERRCODE = 'insufficient_privilege',
          HINT = 'Rows leave the audit log only through ' || quote_ident(TG_TABLE_SCHEMA) || '.prune_audit_log(), run by the owner role.';
END
$function$;

DROP TRIGGER IF EXISTS audit_log_append_only ON {{audit_schema}}.audit_log;
CREATE TRIGGER audit_log_append_only
  BEFORE UPDATE ON {{audit_schema}}.audit_log
  FOR EACH STATEMENT EXECUTE FUNCTION {{audit_schema}}.forbid_audit_log_change();
DROP TRIGGER IF EXISTS audit_log_no_truncate ON {{audit_schema}}.audit_log;
CREATE TRIGGER audit_log_no_truncate
  BEFORE TRUNCATE ON {{audit_schema}}.audit_log
  FOR EACH STATEMENT EXECUTE FUNCTION {{audit_schema}}.forbid_audit_log_change();
DROP TRIGGER IF EXISTS audit_log_retention_only ON {{audit_schema}}.audit_log;
CREATE TRIGGER audit_log_retention_only
  AFTER DELETE ON {{audit_schema}}.audit_log
  REFERENCING OLD TABLE AS old_rows
  FOR EACH STATEMENT EXECUTE FUNCTION {{audit_schema}}.guard_retention();
-- ENABLE ALWAYS: session_replication_role = replica must not switch the guard off.
ALTER TABLE {{audit_schema}}.audit_log ENABLE ALWAYS TRIGGER audit_log_append_only;
ALTER TABLE {{audit_schema}}.audit_log ENABLE ALWAYS TRIGGER audit_log_no_truncate;
ALTER TABLE {{audit_schema}}.audit_log ENABLE ALWAYS TRIGGER audit_log_retention_only;

-- Makes the audit log append-only: UPDATE, DELETE and TRUNCATE fail for every role but
-- the table's owner. The owner's path exists for retention only (see the README).
-- Not SECURITY DEFINER: current_user must be the role that issued the statement.
-- {{audit_schema}} is replaced by the quoted audit schema before this file runs.
CREATE OR REPLACE FUNCTION {{audit_schema}}.forbid_audit_log_change()
RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $function$
DECLARE
  owner_role constant name := (SELECT pg_get_userbyid(relowner) FROM pg_class WHERE oid = TG_RELID);
BEGIN
  IF current_user <> owner_role THEN
    RAISE EXCEPTION 'the audit log is append-only: % is not allowed for role %', TG_OP, current_user
      USING ERRCODE = 'insufficient_privilege',
            HINT = 'Only the owner (' || owner_role || ') may remove rows, for retention.';
  END IF;
  IF TG_OP = 'DELETE' THEN
    RETURN OLD;
  END IF;
  RETURN NEW;
END
$function$;

CREATE OR REPLACE TRIGGER audit_log_append_only
  BEFORE UPDATE OR DELETE ON {{audit_schema}}.audit_log
  FOR EACH ROW EXECUTE FUNCTION {{audit_schema}}.forbid_audit_log_change();
CREATE OR REPLACE TRIGGER audit_log_no_truncate
  BEFORE TRUNCATE ON {{audit_schema}}.audit_log
  FOR EACH STATEMENT EXECUTE FUNCTION {{audit_schema}}.forbid_audit_log_change();
-- ENABLE ALWAYS: session_replication_role = replica must not switch the guard off.
ALTER TABLE {{audit_schema}}.audit_log ENABLE ALWAYS TRIGGER audit_log_append_only;
ALTER TABLE {{audit_schema}}.audit_log ENABLE ALWAYS TRIGGER audit_log_no_truncate;

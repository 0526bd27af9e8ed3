-- The local engine's position (cdc_engine_position) only moves forward, also when it is
-- edited directly: the engine's own write refuses a backwards move in its upsert (so the
-- engine reports it as POSITION_BACKWARDS and nothing reaches this trigger; its WHERE in
-- PositionStore.write must refuse all this rule refuses of what it sets), but the
-- engine role (the engine's login) may UPDATE the table. Moved back, the engine would apply again what the
-- target has (as new versions) or issue change sequences at or below recorded ones;
-- an acknowledged position moved back (or to NULL) would hide a target behind its slot.
-- The rule is the upsert's, for a loaded position: the commit LSN and the change
-- sequence do not move back; besides, a loaded position stays loaded and its slot's, and
-- its acknowledged position does not move back (nor to NULL). A row is deleted to reload
-- (README "Exactly once"). The owner can still disable the trigger.
-- The rule is tested in the function, not in the trigger's WHEN: a WHEN expression is
-- prepared again for every statement (about 100k instructions per engine commit, against
-- 43k for the function, whose plans are cached; callgrind, BENCHMARKS 2).
-- {{audit_schema}} is replaced by the quoted audit schema before this file runs.
CREATE OR REPLACE FUNCTION {{audit_schema}}.forbid_engine_position_backwards()
RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $function$
BEGIN
  IF OLD.initial_load_done
     AND (NOT NEW.initial_load_done
          OR NEW.slot_name IS DISTINCT FROM OLD.slot_name
          OR NEW.last_commit_lsn < OLD.last_commit_lsn
          OR (NEW.last_seq_prefix COLLATE "C", NEW.last_seq_counter)
             < (OLD.last_seq_prefix COLLATE "C", OLD.last_seq_counter)
          OR (OLD.acked_lsn IS NOT NULL
              AND (NEW.acked_lsn IS NULL OR NEW.acked_lsn < OLD.acked_lsn))) THEN
    RAISE EXCEPTION 'refused to move the position of replication slot "%" backwards: the target holds commit %, change sequence % (acknowledged %); this update has commit %, change sequence % (acknowledged %)%',
      OLD.slot_name, OLD.last_commit_lsn, OLD.last_seq_prefix || lpad(OLD.last_seq_counter::text, 19, '0'),
      coalesce(OLD.acked_lsn::text, 'not recorded'),
      NEW.last_commit_lsn, NEW.last_seq_prefix || lpad(NEW.last_seq_counter::text, 19, '0'),
      coalesce(NEW.acked_lsn::text, 'not recorded'),
      CASE WHEN NOT NEW.initial_load_done THEN ', not loaded'
           WHEN NEW.slot_name IS DISTINCT FROM OLD.slot_name THEN format(', slot %L', NEW.slot_name)
           ELSE '' END
      USING ERRCODE = 'check_violation',
            HINT = 'The stored position only moves forward. To reload the target, delete the slot''s row and clear the staging tables (README "Exactly once").';
  END IF;
  RETURN NEW;
END
$function$;

DROP TRIGGER IF EXISTS cdc_engine_position_forward_only ON {{audit_schema}}.cdc_engine_position;
CREATE TRIGGER cdc_engine_position_forward_only
  BEFORE UPDATE ON {{audit_schema}}.cdc_engine_position
  FOR EACH ROW EXECUTE FUNCTION {{audit_schema}}.forbid_engine_position_backwards();
-- ENABLE ALWAYS: session_replication_role = replica must not switch the guard off.
ALTER TABLE {{audit_schema}}.cdc_engine_position ENABLE ALWAYS TRIGGER cdc_engine_position_forward_only;

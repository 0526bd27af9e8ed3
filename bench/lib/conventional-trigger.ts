import { quoteIdent } from '../../src/postgres/identifiers';
import { withClient } from './servers';

/**
 * The conventional approach the kit replaces, as the PostgreSQL wiki's "Audit trigger
 * 91plus" does it, with jsonb in place of hstore: a row trigger on each source table
 * that writes the old and new row, the changed fields, the session, the client and
 * the query text into an audit table in the same database, with the wiki's indexes.
 */
const INSTALL = `
CREATE SCHEMA IF NOT EXISTS bench_trigger_audit;
CREATE TABLE IF NOT EXISTS bench_trigger_audit.logged_actions (
  event_id bigserial PRIMARY KEY,
  schema_name text NOT NULL,
  table_name text NOT NULL,
  relid oid NOT NULL,
  session_user_name text,
  action_tstamp_tx timestamptz NOT NULL,
  action_tstamp_stm timestamptz NOT NULL,
  action_tstamp_clk timestamptz NOT NULL,
  transaction_id bigint,
  application_name text,
  client_addr inet,
  client_port integer,
  client_query text,
  action text NOT NULL CHECK (action IN ('I', 'D', 'U', 'T')),
  row_data jsonb,
  changed_fields jsonb,
  statement_only boolean NOT NULL
);
CREATE INDEX IF NOT EXISTS logged_actions_relid_idx ON bench_trigger_audit.logged_actions (relid);
CREATE INDEX IF NOT EXISTS logged_actions_action_tstamp_tx_stm_idx ON bench_trigger_audit.logged_actions (action_tstamp_stm);
CREATE INDEX IF NOT EXISTS logged_actions_action_idx ON bench_trigger_audit.logged_actions (action);

CREATE OR REPLACE FUNCTION bench_trigger_audit.if_modified_func() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public AS $$
DECLARE
  audit_row bench_trigger_audit.logged_actions;
  old_data jsonb;
  new_data jsonb;
BEGIN
  audit_row := ROW(
    nextval('bench_trigger_audit.logged_actions_event_id_seq'),
    TG_TABLE_SCHEMA::text, TG_TABLE_NAME::text, TG_RELID, session_user::text,
    current_timestamp, statement_timestamp(), clock_timestamp(), txid_current(),
    current_setting('application_name'), inet_client_addr(), inet_client_port(),
    current_query(), substring(TG_OP, 1, 1), NULL, NULL, 'f');
  IF TG_OP = 'UPDATE' THEN
    old_data := to_jsonb(OLD.*);
    new_data := to_jsonb(NEW.*);
    audit_row.row_data := old_data;
    audit_row.changed_fields := (
      SELECT coalesce(jsonb_object_agg(n.key, n.value), '{}'::jsonb)
      FROM jsonb_each(new_data) n
      WHERE NOT old_data @> jsonb_build_object(n.key, n.value));
    IF audit_row.changed_fields = '{}'::jsonb THEN
      RETURN NULL;
    END IF;
  ELSIF TG_OP = 'DELETE' THEN
    audit_row.row_data := to_jsonb(OLD.*);
  ELSIF TG_OP = 'INSERT' THEN
    audit_row.row_data := to_jsonb(NEW.*);
  END IF;
  INSERT INTO bench_trigger_audit.logged_actions VALUES (audit_row.*);
  RETURN NULL;
END;
$$;
`;

/** Installs the wiki-style audit trigger on `tables` (in `public`). */
export async function installConventionalTrigger(
  url: string,
  tables: readonly string[],
): Promise<void> {
  await withClient(url, async (client) => {
    await client.query(INSTALL);
    for (const table of tables) {
      await client.query(
        `CREATE TRIGGER bench_audit_trigger_row AFTER INSERT OR UPDATE OR DELETE ON public.${quoteIdent(table)}
         FOR EACH ROW EXECUTE FUNCTION bench_trigger_audit.if_modified_func()`,
      );
    }
  });
}

/** Removes the triggers again (the audit table stays, as it would in production). */
export async function removeConventionalTrigger(
  url: string,
  tables: readonly string[],
): Promise<void> {
  await withClient(url, async (client) => {
    for (const table of tables) {
      await client.query(
        `DROP TRIGGER IF EXISTS bench_audit_trigger_row ON public.${quoteIdent(table)}`,
      );
    }
  });
}

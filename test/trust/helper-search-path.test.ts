import { quoteIdent } from '../../src/postgres/identifiers';
import { withClient } from '../support/databases';
import { cdc, DmsApplier } from '../support/dms-apply';
import { asLogin, attempt, auditRows, createLogin, installWithHistory } from './support';

/**
 * The per-row helpers of the capture path (key_of, changed_columns, bounded_arrays,
 * exact_document),
 * lock_chain and the kit tables' statement guard (guard_kit_table, on every audit insert)
 * carry no SET search_path: a SET clause costs a save and restore of the setting on every
 * call, per captured row (#14). Every name in them is schema-qualified instead.
 * Here a reader (who may call key_of) and a writer (who applies changes, and as the
 * engine's login writes its position) put a schema of
 * their own ahead of pg_catalog, with operators and functions of the names the helpers
 * use that would raise if ever looked up: the helpers give the same answers and the
 * capture records the same history.
 */
describe('the capture helpers without a SET clause', () => {
  it("never resolve a name through the caller's search_path", async () => {
    const install = await installWithHistory();
    const reader = await createLogin(install.targetUrl, 'reader');
    const writer = await createLogin(install.targetUrl, 'writer');
    await withClient(install.targetUrl, (client) =>
      client.query(`GRANT audit_reader TO ${quoteIdent(reader.name)};
        GRANT audit_writer, audit_engine TO ${quoteIdent(writer.name)};
        CREATE SCHEMA trap;
        GRANT USAGE ON SCHEMA trap TO PUBLIC;
        CREATE FUNCTION trap.boom(jsonb, text) RETURNS jsonb LANGUAGE plpgsql AS $$
          BEGIN RAISE EXCEPTION 'hijacked: -> as %', current_user; END $$;
        CREATE OPERATOR trap.-> (LEFTARG = jsonb, RIGHTARG = text, FUNCTION = trap.boom);
        CREATE FUNCTION trap.cat(jsonb, jsonb) RETURNS jsonb LANGUAGE plpgsql AS $$
          BEGIN RAISE EXCEPTION 'hijacked: || as %', current_user; END $$;
        CREATE OPERATOR trap.|| (LEFTARG = jsonb, RIGHTARG = jsonb, FUNCTION = trap.cat);
        CREATE FUNCTION trap.ne(text, text) RETURNS boolean LANGUAGE plpgsql AS $$
          BEGIN RAISE EXCEPTION 'hijacked: <> as %', current_user; END $$;
        CREATE OPERATOR trap.<> (LEFTARG = text, RIGHTARG = text, FUNCTION = trap.ne);
        CREATE FUNCTION trap.jsonb_typeof(jsonb) RETURNS text LANGUAGE plpgsql AS $$
          BEGIN RAISE EXCEPTION 'hijacked: jsonb_typeof as %', current_user; END $$;
        CREATE FUNCTION trap.pg_has_role(name, name, text) RETURNS boolean LANGUAGE plpgsql AS $$
          BEGIN RAISE EXCEPTION 'hijacked: pg_has_role as %', current_user; END $$;
        CREATE FUNCTION trap.name_eq(name, name) RETURNS boolean LANGUAGE plpgsql AS $$
          BEGIN RAISE EXCEPTION 'hijacked: = as %', current_user; END $$;
        CREATE OPERATOR trap.= (LEFTARG = name, RIGHTARG = name, FUNCTION = trap.name_eq);
        CREATE FUNCTION trap.quote_ident(text) RETURNS text LANGUAGE plpgsql AS $$
          BEGIN RAISE EXCEPTION 'hijacked: quote_ident as %', current_user; END $$;
        CREATE FUNCTION trap.array_to_string(anyarray, text) RETURNS text LANGUAGE plpgsql AS $$
          BEGIN RAISE EXCEPTION 'hijacked: array_to_string as %', current_user; END $$;
        CREATE FUNCTION trap.match(text, text) RETURNS boolean LANGUAGE plpgsql AS $$
          BEGIN RAISE EXCEPTION 'hijacked: ~ as %', current_user; END $$;
        CREATE OPERATOR trap.~ (LEFTARG = text, RIGHTARG = text, FUNCTION = trap.match);
        CREATE FUNCTION trap.jsonb_set(jsonb, text[], jsonb, boolean) RETURNS jsonb LANGUAGE plpgsql AS $$
          BEGIN RAISE EXCEPTION 'hijacked: jsonb_set as %', current_user; END $$;
        GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA trap TO PUBLIC`),
    );
    const hostile = `SET search_path = trap, pg_catalog, public`;
    await asLogin(reader.url, async (client) => {
      await client.query(hostile);
      const { rows } = await client.query<{ key: string }>(
        `SELECT audit.key_of('{"id": 2.50, "name": "x"}', '{id}')::text AS key`,
      );
      expect(rows[0]!.key).toBe('{"id": 2.5}');
    });
    await withClient(install.targetUrl, async (client) => {
      await client.query(hostile);
      const { rows } = await client.query<{ columns: string[]; arrays: string }>(
        `SELECT audit.changed_columns('{"a": 1, "b": 2}', '{"a": 1, "b": 3, "c": null}') AS columns,
                audit.bounded_arrays('(1,"[0:1]={5,6}")', 'audit.items_staging')::text AS arrays,
                audit.exact_document('{"id": 1, "doc": {"a": 1}, "f": 0}', '{"id": 1, "doc": {"a":  1}, "f": -0}',
                                     '{doc}', '{f}')::text AS exact`,
      );
      expect(rows[0]).toEqual({
        columns: ['b', 'c'],
        arrays: '{}',
        exact: '{"f": "-0", "id": 1, "doc": "{\\"a\\":  1}"}',
      });
    });
    const before = (await auditRows(install.targetUrl)).length;
    await asLogin(writer.url, async (client) => {
      await client.query(hostile);
      const dms = new DmsApplier(client, 'audit', 'items', ['id']);
      await client.query('BEGIN');
      await dms.insert({ id: '30', name: 'new' }, cdc('INSERT', '2026-11-24 10:00:00', 30));
      await dms.update({ id: '30' }, { name: 'newer' }, cdc('UPDATE', '2026-11-24 10:00:01', 31));
      await client.query('COMMIT');
    });
    const after = await withClient(install.targetUrl, async (client) => {
      const { rows } = await client.query<{ operation: string; changed: string[] | null }>(
        `SELECT operation, changed_columns AS changed FROM audit.audit_log
          WHERE row_key = '{"id": 30}' ORDER BY id`,
      );
      return rows;
    });
    expect(after).toEqual([
      { operation: 'INSERT', changed: null },
      { operation: 'UPDATE', changed: ['name'] },
    ]);
    expect((await auditRows(install.targetUrl)).length).toBe(before + 2);
    // The guard on every kit table, under the same search_path: it lets the engine role
    // write the engine position (a statement trigger fires for no rows too), and refuses a
    // login granted more than its role by mistake, with its own messages.
    await asLogin(writer.url, async (client) => {
      await client.query(hostile);
      await client.query('UPDATE audit.cdc_engine_position SET slot_name = slot_name WHERE false');
    });
    const granted = await createLogin(install.targetUrl, 'granted');
    await withClient(install.targetUrl, (client) =>
      client.query(`GRANT USAGE ON SCHEMA audit TO ${quoteIdent(granted.name)};
        GRANT UPDATE, DELETE ON audit.audit_chain, audit.audited_table TO ${quoteIdent(granted.name)}`),
    );
    await asLogin(granted.url, async (client) => {
      await client.query(hostile);
      await expect(
        client.query("UPDATE audit.audit_chain SET kind = 'capture' WHERE false"),
      ).rejects.toThrow(/^the audit log is append-only: UPDATE on audit\.audit_chain/);
      const refused = await attempt(() =>
        client.query('DELETE FROM audit.audited_table WHERE false'),
      );
      expect(refused?.message).toMatch(
        /^audit\.audited_table belongs to the audit-trail kit: DELETE/,
      );
      expect((refused as { hint?: string } | undefined)?.hint).toBe(
        "Only the kit's roles (audit_owner) may write it.",
      );
    });
  });
});

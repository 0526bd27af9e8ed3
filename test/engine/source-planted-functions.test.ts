import { dropSlotIfExists } from '../../src/engine/source-setup';
import { connectClient } from '../../src/postgres/connect';
import { createTestDatabase, withClient } from '../support/databases';

/**
 * The engine's source session (and `audit-trail slot drop`) runs as a login with the
 * REPLICATION attribute, on its default search_path. A function an application role
 * planted in `public` (any role may on PostgreSQL 13 and 14) whose text argument an
 * untyped parameter prefers over pg_catalog's `name` or `integer` would run with the
 * replication login's rights.
 */
describe("the engine's source session with lookalikes planted in public", () => {
  it('drops a slot without calling them', async () => {
    const url = await createTestDatabase('eng_plant');
    const slot = `plant_${Math.random().toString(36).slice(2, 10)}`;
    await withClient(url, async (client) => {
      await client.query(`
        CREATE TABLE public.planted_calls (fn text, by_user text);
        GRANT INSERT ON public.planted_calls TO PUBLIC;
        CREATE FUNCTION public.pg_drop_replication_slot(text) RETURNS void
          LANGUAGE sql AS $$
            INSERT INTO public.planted_calls VALUES ('pg_drop_replication_slot', current_user);
            SELECT pg_catalog.pg_drop_replication_slot($1::name)$$;`);
      await client.query(`SELECT pg_catalog.pg_create_logical_replication_slot($1, 'pgoutput')`, [
        slot,
      ]);
    });
    const source = await connectClient(url, 'audit-trail-engine', 'source');
    try {
      await dropSlotIfExists(source, slot);
    } finally {
      await source.end();
    }
    await withClient(url, async (client) => {
      const calls = await client.query('SELECT fn FROM public.planted_calls');
      expect(calls.rows).toEqual([]);
      const slots = await client.query(
        'SELECT 1 FROM pg_catalog.pg_replication_slots WHERE slot_name = $1',
        [slot],
      );
      expect(slots.rowCount).toBe(0);
    });
  });
});

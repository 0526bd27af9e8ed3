import { parseConfig } from '../../src/config';
import { migrateTarget } from '../../src/migrate/migrate-target';
import { createTestDatabase, withClient } from '../support/databases';

/**
 * Before the kit is installed, an insider who may create functions in `public` (every
 * role on PostgreSQL 13 and 14) plants lookalikes of catalog functions the kit's
 * migrations call, with argument types that match the calls exactly. migrate runs as an
 * administrator (or the owner role's member): a lookalike it called would run with those
 * rights, and one it built into an index expression would run in every audit insert.
 */

const config = parseConfig({ auditSchema: 'audit', tables: [{ schema: 'shop', table: 'items' }] });

describe('migrate with lookalike functions planted in public', () => {
  it('calls none of them and builds nothing on them', async () => {
    const sourceUrl = await createTestDatabase('mplant_src');
    const targetUrl = await createTestDatabase('mplant_tgt');
    const plant = `
      CREATE TABLE public.planted_calls (fn text, by_user text);
      GRANT INSERT ON public.planted_calls TO PUBLIC;
      -- IMMUTABLE, so an index may be built on it (and then runs it in every insert).
      CREATE FUNCTION public.jsonb_hash_extended(jsonb, integer) RETURNS bigint
        LANGUAGE sql IMMUTABLE AS 'SELECT pg_catalog.jsonb_hash_extended($1, $2)';
      CREATE FUNCTION public.unnest(text[]) RETURNS SETOF text
        LANGUAGE sql AS $$
          INSERT INTO public.planted_calls VALUES ('unnest', current_user);
          SELECT * FROM pg_catalog.unnest($1::anyarray)$$;`;
    // On the source, migrate reads the catalogs as its source login (often the master
    // user). Its introspection calls polymorphic or variadic functions and compares oids
    // with reg* values, each of which a lookalike matches more exactly.
    const sourcePlant = `
      CREATE FUNCTION public.unnest(smallint[]) RETURNS SETOF smallint
        LANGUAGE sql AS $$
          INSERT INTO public.planted_calls VALUES ('unnest(smallint[])', current_user);
          SELECT * FROM pg_catalog.unnest($1::anyarray)$$;
      CREATE FUNCTION public.format(text, text, text) RETURNS text
        LANGUAGE sql AS $$
          INSERT INTO public.planted_calls VALUES ('format', current_user);
          SELECT pg_catalog.format($1, $2, $3)$$;
      CREATE FUNCTION public.planted_eq(oid, regtype) RETURNS boolean
        LANGUAGE sql AS $$
          INSERT INTO public.planted_calls VALUES ('oid = regtype', current_user);
          SELECT $1 OPERATOR(pg_catalog.=) $2::oid$$;
      CREATE OPERATOR public.= (leftarg = oid, rightarg = regtype, function = public.planted_eq);
      CREATE FUNCTION public.planted_eq(oid, regclass) RETURNS boolean
        LANGUAGE sql AS $$
          INSERT INTO public.planted_calls VALUES ('oid = regclass', current_user);
          SELECT $1 OPERATOR(pg_catalog.=) $2::oid$$;
      CREATE OPERATOR public.= (leftarg = oid, rightarg = regclass, function = public.planted_eq);
      CREATE FUNCTION public.planted_step(text[], text) RETURNS text[]
        LANGUAGE sql AS $$
          INSERT INTO public.planted_calls VALUES ('array_agg', current_user);
          SELECT pg_catalog.array_append($1, $2)$$;
      CREATE AGGREGATE public.array_agg(text) (sfunc = public.planted_step, stype = text[]);`;
    await withClient(sourceUrl, (client) =>
      client.query(`CREATE SCHEMA shop; CREATE TABLE shop.items (id int PRIMARY KEY, qty int);
                    ${plant} ${sourcePlant}`),
    );
    await withClient(targetUrl, (client) => client.query(plant));

    await migrateTarget({ config, sourceUrl, targetUrl });

    for (const url of [sourceUrl, targetUrl])
      await withClient(url, async (client) => {
        const { rows } = await client.query('SELECT fn, by_user FROM public.planted_calls');
        expect(rows).toEqual([]);
      });
    await withClient(targetUrl, async (client) => {
      // Names outside the search_path print qualified: with pg_catalog alone, a function
      // of public's prints as public.name.
      await client.query('SET search_path = pg_catalog');
      const { rows } = await client.query<{ def: string }>(
        `SELECT pg_get_indexdef(indexrelid) AS def FROM pg_index
          WHERE indrelid = 'audit.audit_log'::regclass`,
      );
      expect(rows.filter((row) => row.def.includes('public.'))).toEqual([]);
    });
  });
});

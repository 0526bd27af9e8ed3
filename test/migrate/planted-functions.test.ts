import { parseConfig } from '../../src/config';
import { migrateTarget } from '../../src/migrate/migrate-target';
import { createTestDatabase, withClient } from '../support/databases';
import { plantedCalls, plantLookalikes, type Lookalike } from '../support/planted-lookalikes';

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
    // IMMUTABLE, so an index may be built on it (and then runs it in every insert). A
    // non-volatile function may not INSERT its call: the index check below looks for it.
    const indexable = `
      CREATE FUNCTION public.jsonb_hash_extended(jsonb, integer) RETURNS bigint
        LANGUAGE sql IMMUTABLE AS 'SELECT pg_catalog.jsonb_hash_extended($1, $2)';`;
    const unnestOf = (type: string): Lookalike => ({
      function: 'unnest',
      args: `${type}[]`,
      returns: `SETOF ${type}`,
      answer: 'SELECT * FROM pg_catalog.unnest($1::anyarray)',
    });
    const both: Lookalike[] = [unnestOf('text')];
    // On the source, migrate reads the catalogs as its source login (often the master
    // user). Its introspection calls polymorphic or variadic functions and compares oids
    // with reg* values, each of which a lookalike matches more exactly.
    const sourceOnly: Lookalike[] = [
      unnestOf('smallint'),
      {
        function: 'format',
        args: 'text, text, text',
        returns: 'text',
        answer: 'SELECT pg_catalog.format($1, $2, $3)',
      },
      { operator: '=', left: 'oid', right: 'regtype' },
      { operator: '=', left: 'oid', right: 'regclass' },
      {
        aggregate: 'array_agg',
        arg: 'text',
        state: 'text[]',
        step: 'pg_catalog.array_append($1, $2)',
      },
    ];
    await withClient(sourceUrl, (client) =>
      client.query(`CREATE SCHEMA shop; CREATE TABLE shop.items (id int PRIMARY KEY, qty int);
                    ${indexable} ${plantLookalikes([...both, ...sourceOnly])}`),
    );
    await withClient(targetUrl, (client) => client.query(`${indexable} ${plantLookalikes(both)}`));

    await migrateTarget({ config, sourceUrl, targetUrl });

    for (const url of [sourceUrl, targetUrl]) expect(await plantedCalls(url)).toEqual([]);
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

import { Kysely, PostgresDialect } from 'kysely';
import pg from 'pg';
import { parseConfig } from '../../src/config';
import { createHistory, type History } from '../../src/history';
import { migrateTarget } from '../../src/migrate/migrate-target';
import { cdc, DmsApplier, fullLoad } from '../support/dms-apply';
import { createTestDatabase, withClient } from '../support/databases';

/**
 * An insider who may create functions in `public` (every role may on PostgreSQL 13 and
 * 14 by default, and a DBA may allow it on any version) plants a lookalike of a function
 * the history queries call, with argument types that match the call exactly, so it
 * outranks pg_catalog's for every session whose search_path has `public`. The history a
 * reader asks for must not change.
 */

const config = parseConfig({ auditSchema: 'audit', tables: [{ schema: 'shop', table: 'items' }] });

describe('history with lookalike functions planted in public', () => {
  let db: Kysely<unknown>;
  let history: History;
  let targetUrl: string;
  const insider = `plant_insider_${process.pid}`;

  beforeAll(async () => {
    const sourceUrl = await createTestDatabase('plant_src');
    targetUrl = await createTestDatabase('plant_tgt');
    await withClient(sourceUrl, (client) =>
      client.query(`CREATE SCHEMA shop; CREATE TABLE shop.items (id int PRIMARY KEY, qty int)`),
    );
    await migrateTarget({ config, sourceUrl, targetUrl });
    await withClient(targetUrl, async (target) => {
      const dms = new DmsApplier(target, 'audit', 'items', ['id']);
      await dms.insert({ id: '42', qty: '0' }, fullLoad('2026-11-22 10:00:00.000001'));
      await dms.update({ id: '42' }, { qty: '1' }, cdc('UPDATE', '2026-11-22 10:00:01.000002', 7));
      await dms.update({ id: '42' }, { qty: '2' }, cdc('UPDATE', '2026-11-22 10:00:02.000003', 8));
    });
    db = new Kysely({
      dialect: new PostgresDialect({ pool: new pg.Pool({ connectionString: targetUrl, max: 1 }) }),
    });
    history = createHistory(db, { auditSchema: 'audit' });
  });

  afterAll(async () => {
    await db?.destroy();
    // Roles are the cluster's, not the test database's: a given server keeps no trace.
    await withClient(targetUrl, (admin) =>
      admin.query(`DROP OWNED BY ${insider}; DROP ROLE IF EXISTS ${insider}`),
    ).catch(() => undefined);
  });

  it('answers as before when a reader planted jsonb_hash_extended(jsonb, integer) in public', async () => {
    const before = await history.history('shop.items', { id: 42 });
    expect(before.map((v) => v.operation)).toEqual(['SNAPSHOT', 'UPDATE', 'UPDATE']);

    await withClient(targetUrl, (admin) =>
      admin.query(`
        CREATE ROLE ${insider} LOGIN PASSWORD 'insider';
        GRANT audit_reader TO ${insider};
        GRANT CREATE ON SCHEMA public TO ${insider}`),
    );
    const insiderUrl = new URL(targetUrl);
    insiderUrl.username = insider;
    insiderUrl.password = 'insider';
    await withClient(insiderUrl.toString(), (client) =>
      client.query(`
        CREATE FUNCTION public.jsonb_hash_extended(jsonb, integer) RETURNS bigint
          LANGUAGE sql VOLATILE AS 'SELECT (random() * 1e15)::bigint'`),
    );

    expect(await history.history('shop.items', { id: 42 })).toEqual(before);
  });
});

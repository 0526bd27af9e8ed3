import { Kysely, PostgresDialect } from 'kysely';
import pg from 'pg';
import { parseConfig } from '../../src/config';
import {
  createHistory,
  historyCursor,
  HistoryQueryError,
  type History,
  type Version,
} from '../../src/history';
import { migrateTarget } from '../../src/migrate/migrate-target';
import { cdc, DmsApplier, fullLoad } from '../support/dms-apply';
import { createTestDatabase, withClient } from '../support/databases';

const config = parseConfig({ auditSchema: 'audit', tables: [{ schema: 'shop', table: 'items' }] });

describe('history pages', () => {
  let target: pg.Client;
  let db: Kysely<unknown>;
  let history: History;

  beforeAll(async () => {
    const sourceUrl = await createTestDatabase('page_src');
    const targetUrl = await createTestDatabase('page_tgt');
    await withClient(sourceUrl, (client) =>
      client.query(`CREATE SCHEMA shop; CREATE TABLE shop.items (id int PRIMARY KEY, qty int)`),
    );
    await migrateTarget({ config, sourceUrl, targetUrl });
    target = new pg.Client({ connectionString: targetUrl });
    await target.connect();
    db = new Kysely({
      dialect: new PostgresDialect({ pool: new pg.Pool({ connectionString: targetUrl, max: 2 }) }),
    });
    history = createHistory(db, { auditSchema: 'audit' });
    const dms = new DmsApplier(target, 'audit', 'items', ['id']);
    // Key 1: a snapshot, then one source transaction that changes it 7 times (one commit
    // time, 7 change sequences), a neighbour key changed in the same transaction, then
    // two more transactions. Key 2: 105 versions, past the default page.
    await dms.insert({ id: '1', qty: '0' }, fullLoad('2026-11-22 10:00:00.000001'));
    await dms.insert({ id: '3', qty: '0' }, fullLoad('2026-11-22 10:00:00.000001'));
    for (let qty = 1; qty <= 7; qty++) {
      await dms.update(
        { id: '1' },
        { qty: String(qty) },
        cdc('UPDATE', '2026-11-22 10:00:01.000002', 700),
      );
      await dms.update(
        { id: '3' },
        { qty: String(qty) },
        cdc('UPDATE', '2026-11-22 10:00:01.000002', 700),
      );
    }
    await dms.update({ id: '1' }, { qty: '8' }, cdc('UPDATE', '2026-11-22 10:00:02.000003', 701));
    await dms.delete({ id: '1' }, cdc('DELETE', '2026-11-22 10:00:03.000004', 702));
    await dms.insert({ id: '2', qty: '0' }, cdc('INSERT', '2026-11-22 10:00:04.000000', 703));
    for (let qty = 1; qty < 105; qty++) {
      await dms.update(
        { id: '2' },
        { qty: String(qty) },
        cdc('UPDATE', '2026-11-22 10:00:05.000000', 800 + qty),
      );
    }
  });

  afterAll(async () => {
    await target?.end();
    await db?.destroy();
  });

  const ids = (versions: readonly Version[]) => versions.map((version) => version.id);

  it('pages through equal commit times giving every version exactly once, by version or cursor text', async () => {
    const all = await history.history('shop.items', [1]);
    expect(all.map((v) => v.operation)).toEqual([
      'SNAPSHOT',
      ...Array<string>(8).fill('UPDATE'),
      'DELETE',
    ]);
    for (const limit of [1, 2, 3, 4, 10, 11]) {
      const byVersion: Version[] = [];
      const byText: Version[] = [];
      let page = await history.history('shop.items', [1], { limit });
      let textPage = page;
      for (let guard = 0; page.length > 0 && guard < 20; guard++) {
        expect(page.length).toBeLessThanOrEqual(limit);
        byVersion.push(...page);
        page = await history.history('shop.items', [1], { limit, after: page.at(-1) });
      }
      for (let guard = 0; textPage.length > 0 && guard < 20; guard++) {
        byText.push(...textPage);
        textPage = await history.history('shop.items', [1], {
          limit,
          after: historyCursor(textPage.at(-1)!),
        });
      }
      expect(ids(byVersion)).toEqual(ids(all));
      expect(ids(byText)).toEqual(ids(all));
    }
    // Another key's versions at the same commit times never leak in.
    expect((await history.history('shop.items', [3], { limit: 100 })).length).toBe(8);
  });

  it('returns the first 100 versions by default and the rest after them', async () => {
    const all = await history.history('shop.items', { id: 2 });
    expect(all).toHaveLength(105);
    const first = await history.history('shop.items', { id: 2 }, {});
    expect(ids(first)).toEqual(ids(all.slice(0, 100)));
    const rest = await history.history('shop.items', { id: 2 }, { after: first.at(-1) });
    expect(ids(rest)).toEqual(ids(all.slice(100)));
    expect(await history.history('shop.items', { id: 2 }, { after: rest.at(-1) })).toEqual([]);
  });

  it('refuses a bad limit or cursor with a clear error', async () => {
    for (const limit of [0, -1, 1.5, Number.NaN]) {
      await expect(history.history('shop.items', [1], { limit })).rejects.toThrow(
        /limit must be a positive integer/,
      );
    }
    for (const after of [
      '',
      '2026-11-22T10:00:01Z/1/1',
      "x'/-/1",
      '2026-11-22T10:00:01.000002Z/-/0',
    ]) {
      await expect(history.history('shop.items', [1], { after })).rejects.toThrow(
        HistoryQueryError,
      );
    }
  });
});

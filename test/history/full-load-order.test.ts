import type { Kysely } from 'kysely';
import type pg from 'pg';
import { parseConfig } from '../../src/config';
import { createHistory } from '../../src/history';
import { createDmsTarget, type DmsTarget } from '../support/dms-target';
import { cdc, DmsApplier, fullLoad } from '../support/dms-apply';

/**
 * #17: a DMS full-load row against a change DMS cached while it loaded the table.
 * ARCHITECTURE.md: a full-load row's $AR_H_COMMIT_TIMESTAMP is the current time when DMS
 * copies it, not the time of the snapshot it reads; a change committed on the source
 * after DMS read the row but before it stamped it is cached and applied after the
 * load, with its own (earlier) commit time. The source order is the apply order: the
 * UPDATE is the newer version. Ordered by commit time first, history put the SNAPSHOT
 * last and latest() and asOf returned the older row.
 * A key's versions are in apply order (audit id), which is the source's order.
 */
const SOURCE_DDL = `CREATE TABLE items (id int PRIMARY KEY, name text);`;
const config = parseConfig({ auditSchema: 'audit', tables: [{ table: 'items' }] });

describe('a DMS full-load row and a change cached during the load', () => {
  let dmsTarget: DmsTarget;
  let target: pg.Client;
  let db: Kysely<unknown>;

  beforeAll(async () => {
    dmsTarget = await createDmsTarget(SOURCE_DDL, config);
    ({ client: target, db } = dmsTarget);
  });
  afterAll(() => dmsTarget?.close());

  it('the cached change is the current version', async () => {
    const dms = new DmsApplier(target, 'audit', 'items', ['id']);
    // DMS read id 1 ('old') from its snapshot, the source updated it at 09:00:02, DMS
    // stamped the copied row at 09:00:05 and applied the cached UPDATE after the load.
    await dms.insert({ id: '1', name: 'old' }, fullLoad('2026-11-24 09:00:05'));
    await dms.update({ id: '1' }, { name: 'new' }, cdc('UPDATE', '2026-11-24 09:00:02', 7));
    const history = createHistory(db);
    const versions = await history.history('public.items', { id: 1 });
    expect(versions.map((v) => [v.operation, v.newRow])).toEqual([
      ['SNAPSHOT', { id: 1, name: 'old' }],
      ['UPDATE', { id: 1, name: 'new' }],
    ]);
    const latest = await history.latest('public.items');
    expect(latest.map((v) => v.newRow)).toEqual([{ id: 1, name: 'new' }]);
    // After the change, before and after the copy stamp: the changed row.
    for (const at of ['2026-11-24T09:00:03Z', '2026-11-24T09:00:06Z']) {
      expect(await history.asOf('public.items', { id: 1 }, new Date(at))).toEqual({
        id: 1,
        name: 'new',
      });
    }
    // Paged, the same order: the SNAPSHOT, then after it the UPDATE.
    const [first] = await history.history('public.items', { id: 1 }, { limit: 1 });
    expect(first?.operation).toBe('SNAPSHOT');
    const rest = await history.history('public.items', { id: 1 }, { limit: 5, after: first });
    expect(rest.map((v) => v.operation)).toEqual(['UPDATE']);
  }, 60_000);
});

import { mkdtemp, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { parseConfig } from '../../src/config';
import { migrateTarget } from '../../src/migrate/migrate-target';
import { runCli } from '../support/cli';
import { cdc, DmsApplier } from '../support/dms-apply';
import { createTestDatabase, withClient } from '../support/databases';
import { plantedCalls, plantLookalikes } from '../support/planted-lookalikes';

/**
 * `audit-trail reload finish` refuses to end a reload whose load copied no row: ending it
 * records a DELETE for every key the history holds live. It reads the target on the
 * login's search_path, where any role may create functions in `public` on PostgreSQL 13
 * and 14 (DMS's writer login, a reader). `count(reloaded_at)` is count("any") in
 * pg_catalog: an aggregate public.count(timestamp) matches it exactly and, counting one,
 * would let the DELETEs through.
 */
describe('reload finish with a lookalike count planted in public on the target', () => {
  it('still refuses a load that copied no row, and never calls it', async () => {
    const sourceUrl = await createTestDatabase('rplant_src');
    const targetUrl = await createTestDatabase('rplant_tgt');
    await withClient(sourceUrl, (client) =>
      client.query(`CREATE TABLE shops (code varchar(8) PRIMARY KEY, city text);
                    CREATE TABLE items (id int PRIMARY KEY)`),
    );
    const shops = { tables: [{ table: 'items' }, { table: 'shops' }] };
    const itemsOnly = { tables: [{ table: 'items' }] };
    const migrate = (input: typeof shops) =>
      migrateTarget({ config: parseConfig(input), sourceUrl, targetUrl });
    await migrate(shops);
    await withClient(targetUrl, (client) =>
      new DmsApplier(client, 'audit', 'shops', ['code']).insert(
        { code: 'B1', city: 'Bonn' },
        cdc('INSERT', '2026-11-22 10:00:00', 1),
      ),
    );
    // Out of the config and back: a reload with B1 in its baseline and nothing copied.
    await migrate(itemsOnly);
    await migrate(shops);
    await withClient(targetUrl, (client) =>
      client.query(
        plantLookalikes([
          // Counts every row, copied or not.
          { aggregate: 'count', arg: 'timestamp', state: 'bigint', step: '$1 + 1', initcond: '0' },
        ]),
      ),
    );

    const configFile = path.join(await mkdtemp(path.join(os.tmpdir(), 'rplant-')), 'config.json');
    await writeFile(configFile, JSON.stringify(shops));
    const finish = await runCli([
      ...['reload', 'finish', 'public.shops', '--config', configFile],
      ...['--target-url', targetUrl, '--json'],
    ]);
    expect(finish.stderr).toMatch(/copied no row/);
    expect(finish.code).toBe(1);
    expect(await plantedCalls(targetUrl)).toEqual([]);
    await withClient(targetUrl, async (client) => {
      const deletes = await client.query(
        "SELECT 1 FROM audit.audit_log WHERE operation = 'DELETE'",
      );
      expect(deletes.rowCount).toBe(0);
    });
  });
});

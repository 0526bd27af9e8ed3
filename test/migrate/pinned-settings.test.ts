import { parseConfig } from '../../src/config';
import { migrateTarget } from '../../src/migrate/migrate-target';
import { PINNED_OUTPUT_SETTINGS } from '../../src/postgres/connect';
import { createTestDatabase, withClient } from '../support/databases';

/**
 * The kit pins how values print on its own connections (PINNED_OUTPUT_SETTINGS); DMS's
 * sessions on the target take the database's and role's settings instead, so every
 * function that renders row or key values must pin the same settings itself (#17 item 2:
 * with IntervalStyle sql_standard on the target, DMS-shaped writes recorded '1 day
 * 02:00:00' as "1 2:00:00"). A setting added to the list and not to these functions
 * fails here.
 */
describe('functions that render values pin every output setting the kit pins', () => {
  let targetUrl: string;
  beforeAll(async () => {
    const sourceUrl = await createTestDatabase('pinsrc');
    targetUrl = await createTestDatabase('pintgt');
    await withClient(sourceUrl, (client) =>
      client.query('CREATE TABLE items (id int PRIMARY KEY, v text)'),
    );
    await migrateTarget({
      config: parseConfig({ tables: [{ table: 'items' }] }),
      sourceUrl,
      targetUrl,
    });
  }, 120_000);

  it.each(['capture_insert', 'capture_update', 'row_key_of'])('%s', async (name) => {
    const { rows } = await withClient(targetUrl, (client) =>
      client.query<{ setting: string }>(
        `SELECT lower(split_part(setting, '=', 1)) AS setting
           FROM pg_catalog.pg_proc p, unnest(p.proconfig) AS setting
          WHERE p.pronamespace = 'audit'::regnamespace AND p.proname = $1`,
        [name],
      ),
    );
    const pinned = rows.map((row) => row.setting);
    for (const setting of Object.keys(PINNED_OUTPUT_SETTINGS))
      expect(pinned, `${name} pins ${setting}`).toContain(setting.toLowerCase());
  });
});

import { parseConfig } from '../../src/config';
import { createKysely } from '../../src/postgres/connect';
import { installSourceContext } from '../../src/source-context';
import { createTestDatabase, withClient } from '../support/databases';
import { plantedCalls, plantLookalikes } from '../support/planted-lookalikes';

/**
 * `migrate --source-context` installs the context table as the source's administrator,
 * on a session whose search_path has `public`, where any role may create functions and
 * operators on PostgreSQL 13 and 14. A lookalike that matches one of its comparisons more
 * exactly than pg_catalog's (oid = regclass: pg_catalog has oid = oid only) would run with
 * the administrator's rights.
 */
const CONFIG = parseConfig({ tables: [{ table: 'items' }], sourceContext: {} });

describe('source context install with lookalikes planted in public', () => {
  it('runs none of them', async () => {
    const url = await createTestDatabase('ctx_plant');
    await withClient(url, (client) =>
      client.query(plantLookalikes([{ operator: '=', left: 'oid', right: 'regclass' }])),
    );
    // Twice: the second run finds the table and aligns its columns.
    for (let run = 0; run < 2; run++) {
      const db = createKysely<unknown>(url, { max: 1, label: 'source' });
      await installSourceContext(db, CONFIG).finally(() => db.destroy());
    }
    expect(await plantedCalls(url)).toEqual([]);
  });
});

import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { parseConfig } from '../../src/config';
import { checkPgaudit } from '../../src/access-audit/setup';
import { connectClient } from '../../src/postgres/connect';
import { createTestDatabase, withClient } from '../support/databases';
import { plantedCalls, plantLookalikes } from '../support/planted-lookalikes';

/**
 * `audit-trail pgaudit check` reads the source's roles as its administrator, on the
 * login's search_path. A lookalike planted in `public` (any role may on PostgreSQL 13
 * and 14) matching its calls more exactly than pg_catalog's would run with those rights
 * and could change the answer: an `array_remove(text[], text)` returning nothing made a
 * SUPERUSER canary look powerless.
 */
describe('pgaudit check with lookalikes planted in public', () => {
  it('calls none of them, and a superuser canary is still reported', async () => {
    const url = await createTestDatabase('pga_plant');
    const canary = `canary_${randomBytes(4).toString('hex')}`;
    await withClient(url, (client) =>
      client.query(`
        CREATE ROLE ${canary} LOGIN SUPERUSER;
        ${plantLookalikes([
          {
            function: 'array_remove',
            args: 'text[], text',
            returns: 'text[]',
            answer: "SELECT '{}'::text[]",
          },
          { operator: '=', left: 'oid', right: 'integer' },
        ])}`),
    );
    const config = parseConfig({ accessAudit: { auditedRoles: [], canary: { role: canary } } });
    const client: pg.Client = await connectClient(url, 'audit-trail', 'source');
    const results = await checkPgaudit(client, config.accessAudit!).finally(() => client.end());

    const check = results.find((result) => result.item === `canary role ${canary}`);
    expect(check).toMatchObject({ ok: false, detail: expect.stringMatching(/has SUPERUSER/) });
    expect(await plantedCalls(url)).toEqual([]);
  });
});

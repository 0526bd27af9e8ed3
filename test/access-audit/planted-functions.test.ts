import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { parseConfig } from '../../src/config';
import { checkPgaudit } from '../../src/access-audit/setup';
import { connectClient } from '../../src/postgres/connect';
import { createTestDatabase, withClient } from '../support/databases';

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
        CREATE TABLE public.planted_calls (fn text, by_user text);
        GRANT INSERT ON public.planted_calls TO PUBLIC;
        CREATE FUNCTION public.array_remove(text[], text) RETURNS text[]
          LANGUAGE sql AS $$
            INSERT INTO public.planted_calls VALUES ('array_remove', current_user);
            SELECT '{}'::text[]$$;
        CREATE FUNCTION public.planted_eq(oid, integer) RETURNS boolean
          LANGUAGE sql AS $$
            INSERT INTO public.planted_calls VALUES ('oid = integer', current_user);
            SELECT $1 OPERATOR(pg_catalog.=) $2::oid$$;
        CREATE OPERATOR public.= (leftarg = oid, rightarg = integer, function = public.planted_eq);`),
    );
    const config = parseConfig({ accessAudit: { auditedRoles: [], canary: { role: canary } } });
    const client: pg.Client = await connectClient(url, 'audit-trail', 'source');
    const results = await checkPgaudit(client, config.accessAudit!).finally(() => client.end());

    const check = results.find((result) => result.item === `canary role ${canary}`);
    expect(check).toMatchObject({ ok: false, detail: expect.stringMatching(/has SUPERUSER/) });
    await withClient(url, async (client) => {
      const { rows } = await client.query('SELECT fn FROM public.planted_calls');
      expect(rows).toEqual([]);
    });
  });
});

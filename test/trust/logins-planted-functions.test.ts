import { randomBytes } from 'node:crypto';
import { parseConfig } from '../../src/config';
import { createKysely } from '../../src/postgres/connect';
import { setUpDdlCapture, setUpReplicationLogin, setUpTargetLogins } from '../../src/trust/logins';
import { createTestDatabase, withClient } from '../support/databases';
import { plantedCalls, plantLookalikes } from '../support/planted-lookalikes';

/**
 * The deployment's logins set-up (the database-logins Lambda) runs as each database's
 * administrator (the master user). An insider who may create objects in `public` (every
 * role on PostgreSQL 13 and 14) plants lookalikes whose argument types match the set-up's
 * calls more exactly than pg_catalog's: a function, an aggregate and an operator. Each
 * records who ran it; one that ran would have run with the administrator's rights.
 */
const PLANT = plantLookalikes([
  // pg_catalog has (name, name, text) and (name, oid, text): an unknown second argument
  // prefers text, the string category's preferred type.
  {
    function: 'pg_has_role',
    args: 'name, text, text',
    returns: 'boolean',
    answer: 'SELECT pg_catalog.pg_has_role($1, $2::name, $3)',
  },
  // pg_catalog.array_agg takes anynonarray: text is an exact match.
  { aggregate: 'array_agg', arg: 'text', state: 'text[]', step: 'pg_catalog.array_append($1, $2)' },
  // pg_catalog has no oid = regprocedure: the call casts to oid = oid.
  { operator: '=', left: 'oid', right: 'regprocedure' },
]);

const password = () => randomBytes(18).toString('base64url');

describe('logins set-up with lookalike functions planted in public', () => {
  it('runs none of them as the administrator, on the target or the source', async () => {
    const config = parseConfig({
      auditSchema: `p_${randomBytes(4).toString('hex')}`,
      tables: [{ table: 'items' }],
    });
    const targetUrl = await createTestDatabase('lplant_tgt');
    const sourceUrl = await createTestDatabase('lplant_src');
    await withClient(targetUrl, (client) => client.query(PLANT));
    await withClient(sourceUrl, (client) =>
      client.query(`CREATE TABLE public.items (id int PRIMARY KEY); ${PLANT}`),
    );

    const target = createKysely<unknown>(targetUrl, { max: 1, label: 'admin' });
    try {
      // Twice: the second run finds the logins and checks what they hold.
      for (let run = 0; run < 2; run++)
        await setUpTargetLogins(target, config, { dms: password(), migrator: password() });
    } finally {
      await target.destroy();
    }
    const source = createKysely<unknown>(sourceUrl, { max: 1, label: 'admin' });
    try {
      for (let run = 0; run < 2; run++) {
        await setUpReplicationLogin(source, config, password());
        await setUpDdlCapture(source, config);
      }
    } finally {
      await source.destroy();
    }

    expect(await plantedCalls(targetUrl)).toEqual([]);
    expect(await plantedCalls(sourceUrl)).toEqual([]);
  });
});

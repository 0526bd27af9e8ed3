import { createTestDatabase, withClient } from './databases';
import { plantedCalls, plantLookalikes } from './planted-lookalikes';

// The planted-functions tests pass when plantedCalls finds nothing: that means something
// only if each kind of lookalike, once planted, wins an unqualified call and records it.
describe('planted lookalikes', () => {
  it('win the unqualified calls they look like, record them, and answer as planted', async () => {
    const url = await createTestDatabase('lookalikes');
    await withClient(url, (client) =>
      client.query(
        plantLookalikes([
          {
            function: 'format',
            args: 'text, text, text',
            returns: 'text',
            answer: 'SELECT pg_catalog.format($1, $2, $3)',
          },
          { operator: '=', left: 'oid', right: 'regclass' },
          { operator: '<>', left: 'regclass', right: 'oid' },
          {
            aggregate: 'count',
            arg: 'timestamp',
            state: 'bigint',
            step: '$1 + 1',
            initcond: '0',
          },
        ]),
      ),
    );

    const answers = await withClient(url, async (client) => {
      await client.query("SET application_name = 'kit'");
      const { rows } = await client.query(`
        SELECT format('%s-%s', 'a', 'b') AS formatted,
               (SELECT count(*)::int FROM pg_class
                 WHERE oid = 'pg_class'::regclass AND 'pg_class'::regclass <> oid) AS both,
               (SELECT count(t)::int FROM (VALUES (now()::timestamp), (NULL)) AS v (t)) AS counted`);
      return rows[0];
    });
    // count(timestamp) counts the NULL too: the insider's answer, not pg_catalog's.
    expect(answers).toEqual({ formatted: 'a-b', both: 0, counted: 2 });

    const calls = await plantedCalls(url);
    expect(calls.map(({ fn, by_app }) => [fn, by_app])).toEqual([
      ['count(timestamp)', 'kit'],
      ['format(text, text, text)', 'kit'],
      ['oid = regclass', 'kit'],
      ['regclass <> oid', 'kit'],
    ]);
    expect(new Set(calls.map((call) => call.by_user)).size).toBe(1);
  });
});

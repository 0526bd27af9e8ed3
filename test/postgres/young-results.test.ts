import { sql } from 'kysely';
import { describe, expect, inject, it } from 'vitest';
import { createKysely } from '../../src/postgres/connect';
import { prepareByName } from '../../src/postgres/prepared-statements';
import { youngAfterMinorGc } from '../support/young-generation';

// Results a caller has dropped are garbage for the young-generation collector too: kept
// reachable until the next full collection (as through node-postgres's promise), every
// scavenge copied the results of all queries since the last one and took several ms, the
// tail of the history calls (BENCHMARKS 4).
describe('connections made by createKysely', () => {
  it.each([
    ['unnamed', false, false],
    ['prepared by name', true, false],
    ['streamed (RowStream)', true, true],
  ])(
    'leave no dropped result to the young-generation collector (%s)',
    async (_kind, named, streamed) => {
      const db = createKysely<unknown>(inject('pgAdminUrl'), { max: 1 });
      try {
        // 20 results of about 60 kB each.
        const query = sql<{ a: string }>`SELECT repeat('x', 500) || g AS a
                                      FROM generate_series(1, 100) AS g`.compile(db);
        if (named) prepareByName(query.sql);
        const run = async () => {
          if (!streamed) return (await db.executeQuery(query)).rows.length;
          let rows = 0;
          for await (const chunk of db.getExecutor().stream(query, 1000)) rows += chunk.rows.length;
          return rows;
        };
        expect(await run()).toBe(100);
        // Survivors so far promoted: the young generation starts empty.
        youngAfterMinorGc();
        youngAfterMinorGc();
        for (let i = 0; i < 20; i++) await run();
        // Before: about 1.3 MB (every result); now one result at most.
        expect(youngAfterMinorGc()).toBeLessThan(300_000);
      } finally {
        await db.destroy();
      }
    },
  );
});

import { inject } from 'vitest';
import { runScenario, type PipelineKind } from '../../support/oracle/scenario';
import { oneTable, replicate, tx, workload } from './workloads';

/**
 * #17 item 6 beyond numbers: a key type whose equal values have several texts. Interval
 * '1 day', '24:00:00' and '86400 seconds' are one key to the source's unique index, so
 * DELETE one spelling and INSERT another in one transaction is one row's history; the
 * kit kept the texts apart and split it: the re-insert and the next UPDATE were recorded
 * under key "24:00:00", the first INSERT and the DELETE under "1 day". Now migrate
 * refuses such a key (src/migrate/key-types.ts). The oracle's expected history compares
 * key texts, so it agreed with the split: this test failed before as "migrate accepted
 * what it must refuse".
 */
describe.each(['engine', 'dms'] as const)(
  'a key type without one text per value (%s)',
  (pipeline: PipelineKind) => {
    it('interval: DELETE 1 day + INSERT 24:00:00 in one transaction', async () => {
      const key = (spelling: number) => [{ n: 1, spelling }];
      const w = workload(oneTable([{ name: 'c1', type: 'int4' }], 'interval'), [
        replicate,
        tx({ kind: 'insert', table: 0, key: key(0), values: [0] }),
        tx(
          { kind: 'delete', table: 0, key: key(0) },
          { kind: 'insert', table: 0, key: key(1), values: [2] },
        ),
        tx({ kind: 'update', table: 0, key: key(2), set: [[0, 3]] }),
      ]);
      // Refused up front by migrate (and the engine, before its publication exists), with
      // the source's writes working; accepted, the oracle compares the history.
      const result = await runScenario(w, { adminUrl: inject('pgAdminUrl'), pipeline });
      expect(result.problems).toEqual([]);
      expect(result.refused).toMatch(
        /key column "k0" of type interval, which cannot key its history/,
      );
    });
  },
);

import { inject } from 'vitest';
import { runScenario } from '../../support/oracle/scenario';
import type { Statement, Workload } from '../../support/oracle/workload';
import { insert, oneTable, replicate, tx, update, workload } from './workloads';

/**
 * The history oracle's findings on the DMS-shaped pipeline (#16): after a simulated
 * task restart DMS applies its last changes again, with the same headers. Staging must
 * take those replays without a wrong version or an apply error. Found by random seeds
 * 873840081, 876760901, 878793600 and 878862690 of the short run.
 */
const problems = async (w: Workload) =>
  (await runScenario(w, { adminUrl: inject('pgAdminUrl'), pipeline: 'dms' })).problems;

const moveKey = (from: number, to: number): Statement => ({
  kind: 'updateKey',
  table: 0,
  key: [{ n: from, spelling: 0 }],
  newKey: [{ n: to, spelling: 0 }],
});
const remove = (n: number): Statement => ({ kind: 'delete', table: 0, key: [{ n, spelling: 0 }] });

describe('history oracle regressions: DMS replays after a task restart', () => {
  it('a replayed INSERT of a key that has since moved leaves no row behind', async () => {
    // Replayed, INSERT 3 found no row 3 (it is 9 now) and inserted a stray row, which
    // the replayed key change then moved onto 9: a duplicate key, the task stops.
    const w = workload(oneTable([{ name: 'c1', type: 'int4' }]), [
      replicate,
      tx(insert(3, 1), moveKey(3, 9)),
    ]);
    expect(await problems(w)).toEqual([]);
  });

  it('a replayed UPDATE of a row deleted since is no re-insert', async () => {
    // Replayed, the UPDATE reached the row operation_indicator keeps for the later
    // DELETE (a newer change) and was recorded as an INSERT of the deleted key.
    const w = workload(oneTable([{ name: 'c1', type: 'int4' }]), [
      replicate,
      tx(insert(3, 1)),
      replicate,
      tx(update(3, 0, 2), remove(3)),
    ]);
    expect(await problems(w)).toEqual([]);
  });
});

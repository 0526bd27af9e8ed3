import { inject } from 'vitest';
import { runScenario, type PipelineKind } from '../../support/oracle/scenario';
import type { Workload } from '../../support/oracle/workload';
import { insert, oneTable, replicate, tx, update, workload } from './workloads';

/**
 * The history oracle's reduced findings (generated on commit ec85eb5, before the #17
 * fixes), one test each. `it.fails` marks a bug that is still open on main: it turns
 * red when the fix lands, and then becomes a plain `it`.
 */
const problems = async (w: Workload, pipeline: PipelineKind = 'engine') =>
  (await runScenario(w, { adminUrl: inject('pgAdminUrl'), pipeline })).problems;

describe('history oracle regressions (#17)', () => {
  it('item 1: a column named like a capture-function variable (n) is loaded and replicated', async () => {
    const w = workload(oneTable([{ name: 'n', type: 'int4' }]), [
      tx(insert(3, 3)),
      replicate,
      tx(update(3, 0, 2)),
    ]);
    expect(await problems(w)).toEqual([]);
  });

  it.fails('item 4: a renamed column keeps its history and verify stays clean', async () => {
    const w = workload(oneTable([{ name: 'c1', type: 'int4' }]), [
      tx(insert(0, 0)),
      replicate,
      { kind: 'ddl', table: 0, change: { kind: 'rename', column: 0, to: 'Weird "Q"' } },
    ]);
    expect(await problems(w)).toEqual([]);
  });

  it.fails(
    'new: an array with a lower bound other than 1 keeps its bounds in history',
    async () => {
      // '[0:1]={5,6}' is recorded as {5,6}: to_jsonb drops array bounds.
      const w = workload(oneTable([{ name: 'c1', type: 'int4[]' }]), [replicate, tx(insert(0, 5))]);
      expect(await problems(w)).toEqual([]);
    },
  );
});

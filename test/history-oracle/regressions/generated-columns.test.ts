import { inject } from 'vitest';
import { runScenario, type PipelineKind } from '../../support/oracle/scenario';
import type { Step, Workload } from '../../support/oracle/workload';
import { insert, oneTable, replicate, tx, update, workload } from './workloads';

/**
 * Generated columns (#17 item 5): the kit leaves them out of staging, history and verify
 * (pgoutput does not send them before PostgreSQL 18). One from the start, one added,
 * renamed and dropped while the pipeline runs, each with writes that change it (int
 * pick 1 is NULL: `num_nulls` of the column it is computed from goes 0 -> 1 -> 0).
 */
const problems = async (w: Workload, pipeline: PipelineKind) =>
  (await runScenario(w, { adminUrl: inject('pgAdminUrl'), pipeline })).problems;

const generated = (rename: boolean): Step => ({
  kind: 'ddl',
  table: 0,
  change: { kind: 'generated', rename },
});

const fromTheStart: Workload = {
  ...workload(
    [{ ...oneTable([{ name: 'c1', type: 'int4' }])[0]!, generated: true }],
    [tx(insert(0, 0), insert(1, 1)), replicate, tx(update(0, 0, 1), update(1, 0, 0), insert(2, 1))],
  ),
};

const addedRenamedDropped: Workload = workload(oneTable([{ name: 'c1', type: 'int4' }]), [
  tx(insert(0, 0)),
  replicate,
  generated(false), // added
  tx(update(0, 0, 1), insert(1, 0)),
  generated(true), // renamed
  tx(update(1, 0, 1)),
  replicate,
  generated(false), // dropped
  tx(update(0, 0, 0)),
]);

describe('history oracle regressions (#17 item 5: generated columns)', () => {
  it('engine pipeline: exact history and a clean verify', async () => {
    expect(await problems(fromTheStart, 'engine')).toEqual([]);
    expect(await problems(addedRenamedDropped, 'engine')).toEqual([]);
  }, 120_000);

  // Known bug, found by the fuzz (`--features base+generated --pipeline dms`): AWS DMS
  // reads changes with test_decoding, which prints stored generated columns (checked on
  // PostgreSQL 15: `gen[integer]:10` in an INSERT); the stand-in applies them as DMS
  // would, and staging has no such column, so the task stops. The generated mapping
  // selects every column. This asserts the failure as it is today: when it is fixed,
  // expect no problem here.
  it('dms pipeline: the task stops at the generated column (known bug)', async () => {
    expect(await problems(fromTheStart, 'dms')).toEqual([
      'DMS apply: column "gen_nulls" of relation "t0_staging" does not exist',
    ]);
    expect(await problems(addedRenamedDropped, 'dms')).toEqual([
      'DMS apply: column "gen_nulls_1" of relation "t0_staging" does not exist',
    ]);
  }, 120_000);
});

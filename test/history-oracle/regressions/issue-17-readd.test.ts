import { inject } from 'vitest';
import { runScenario, type PipelineKind } from '../../support/oracle/scenario';
import type { CrashSpec, Statement, Step, Workload } from '../../support/oracle/workload';
import { configureT1, onT1, READD_TABLES as TABLES, replicate, tx, workload } from './workloads';

/**
 * #17 item 19, round trip: a table removed from the config mid-run and added back. The
 * changes made while it was out are not history, but the reload must leave staging
 * equal to the source and history saying so: a SNAPSHOT for each row that changed or
 * came back, a DELETE for each row gone (see expected-history.ts, rule 1).
 */
const problems = async (w: Workload, pipeline: PipelineKind) =>
  (await runScenario(w, { adminUrl: inject('pgAdminUrl'), pipeline })).problems;

const { insert, update, remove } = onT1;
const configure = configureT1;
/**
 * Catch-ups: the replicate step, then one before and one after each configure step; the
 * fifth (index 4) reloads `s1.t1`. Killed after its first copied batch, before the load
 * commits.
 */
const RELOAD_CRASH: CrashSpec = { point: 'load-batch', nth: 1, batchSize: 1 };

describe('history oracle regressions (#17 item 19: a removed table added back)', () => {
  const roundTrip: Workload = {
    ...workload(TABLES, [
      tx(insert(0, 0), insert(1, 0), insert(2, 0), insert(4, 0)),
      replicate,
      tx(update(2, 2)), // captured
      configure, // removed
      // Out of the config: row 0 changes, row 1 goes, row 3 comes, row 2 goes and comes
      // back as it was, row 4 stays.
      tx(update(0, 3), remove(1), insert(3, 0), remove(2), insert(2, 2)),
      configure, // added back: reloaded
      tx(update(3, 2), remove(0)),
    ]),
    readdTables: true,
  };

  // Migrate takes each key's newest live audit version as the table's prior baseline,
  // empties the kept staging table and forgets the engine's load of it. The reload is a
  // plain load; the capture trigger records a row only where it differs from the
  // baseline, and the end of the reload a DELETE for each baseline key not copied.
  it('engine pipeline: reloads it, and history continues from the reload', async () => {
    expect(await problems(roundTrip, 'engine')).toEqual([]);
  });

  it('engine pipeline: a crash mid-reload leaves nothing, and the restart reloads once', async () => {
    expect(
      await problems({ ...roundTrip, crashes: [null, null, null, null, RELOAD_CRASH] }, 'engine'),
    ).toEqual([]);
  }, 240_000);

  // DMS loads into the emptied staging table (TargetTablePrepMode DO_NOTHING) as into a
  // new one; its first change of the table after the load ends the reload.
  it('dms pipeline: reloads it, and history continues from the reload', async () => {
    expect(await problems(roundTrip, 'dms')).toEqual([]);
  });

  // Once loaded as if new: a SNAPSHOT for every row, unchanged ones too, and no DELETE for
  // rows 1 and 2's first life, so history showed row 1 live for ever.
  it('engine pipeline, staging dropped with the removal: the same exact history', async () => {
    expect(await problems({ ...roundTrip, dropStaging: true }, 'engine')).toEqual([]);
  });

  it('dms pipeline, staging dropped with the removal: the same exact history', async () => {
    expect(await problems({ ...roundTrip, dropStaging: true }, 'dms')).toEqual([]);
  });

  // Every row deleted while the table was out: the load copies nothing. The engine knows
  // its load complete and ends the reload (a DELETE for each row); with DMS a load that
  // copied no row cannot be told from no load (a task running CDC only), so a change
  // after it does not end the reload (the INSERT of a key history holds live records that
  // key's DELETE first) and the operator ends it (`reload finish --all-rows-gone`, which
  // the stand-in's finish does).
  it('both pipelines: a table emptied while out, then a row re-inserted and a new one', async () => {
    const emptied: Workload = {
      ...roundTrip,
      steps: [
        ...roundTrip.steps.slice(0, 4),
        tx(remove(0), remove(1), remove(2), remove(4)),
        configure,
        tx(insert(2, 3), insert(5, 0)),
      ],
    };
    for (const pipeline of ['engine', 'dms'] as const)
      expect(await problems(emptied, pipeline)).toEqual([]);
  }, 300_000);

  // The only configured table removed and added back: when no table has a load record
  // the engine takes every table with staging rows as loaded (installs from before loads
  // were recorded). Migrate forgets the table's load record and empties its staging
  // table, so the engine finds none and reloads it.
  it('engine pipeline: the only table removed and added back is reloaded, not taken as loaded', async () => {
    const only = (step: Step): Step =>
      step.kind === 'tx'
        ? {
            ...step,
            tx: {
              ...step.tx,
              statements: step.tx.statements.map((st) => ({ ...st, table: 0 }) as Statement),
            },
          }
        : 'table' in step
          ? ({ ...step, table: 0 } as Step)
          : step;
    const alone: Workload = {
      ...roundTrip,
      ...workload([TABLES[1]!], roundTrip.steps.map(only)),
      readdTables: true,
    };
    expect(await problems(alone, 'engine')).toEqual([]);
  }, 240_000);

  // No change after the reload: with DMS, nothing tells the target the load is complete
  // but the operator (audit-trail reload finish, which the stand-in runs after its load).
  it('both pipelines: a reload followed by no change still records the rows gone', async () => {
    const quiet: Workload = { ...roundTrip, steps: roundTrip.steps.slice(0, -1) };
    for (const pipeline of ['engine', 'dms'] as const)
      for (const dropStaging of [false, true])
        expect(await problems({ ...quiet, dropStaging }, pipeline)).toEqual([]);
  }, 300_000);
});

import { inject } from 'vitest';
import { parseRowJson } from '../../src/history';
import { apiDifferences } from '../support/oracle/api-check';
import { runScenario } from '../support/oracle/scenario';
import { HEADER_NAME_REFUSAL, type Workload } from '../support/oracle/workload';
import { insert, oneTable, replicate, tx, update, workload } from './regressions/workloads';

/**
 * The checks the oracle runs beyond the change-by-change comparison, each shown to
 * catch what it is for: the history API's values (#17 item 8), a direct staging edit
 * (#17 item 10), ignored columns.
 */
describe('history oracle checks', () => {
  const stored = [
    {
      id: '1',
      oldRowJson: null,
      newRowJson: '{"k0": 1, "c1": {"n": 1.10, "big": 9007199254740993}}',
    },
  ];

  it('the API check passes values parsed losslessly and names the column a lossy parse changed', () => {
    const version = (parse: (text: string) => unknown) => ({
      id: '1',
      oldRow: null,
      newRow: parse(stored[0]!.newRowJson) as Record<string, unknown>,
    });
    expect(apiDifferences('s0.t0', stored, [version(parseRowJson)])).toEqual([]);
    expect(apiDifferences('s0.t0', stored, [version(JSON.parse)])).toEqual([
      'history API: s0.t0: audit row 1 newRow.c1: recorded {"n":1.10,"big":9007199254740993}, API {"n":1.1,"big":9007199254740992}',
    ]);
    expect(apiDifferences('s0.t0', stored, [])).toEqual([
      'history API: s0.t0: 0 versions, the audit log holds 1',
      'history API: s0.t0: audit row 1 missing',
    ]);
  });

  it('a numeric column may come from the API as its exact text, a number inside jsonb may not', () => {
    const row = { id: '1', oldRowJson: null, newRowJson: '{"k0": 1, "n": 1.10, "j": {"n": 1.10}}' };
    const got = (n: unknown, j: unknown) => [{ id: '1', oldRow: null, newRow: { k0: 1, n, j } }];
    expect(apiDifferences('t', [row], got('1.10', { n: parseRowJson('1.10') }))).toEqual([]);
    expect(apiDifferences('t', [row], got('1.10', { n: '1.10' }))).toHaveLength(1);
    expect(apiDifferences('t', [row], got('1.1', { n: parseRowJson('1.10') }))).toHaveLength(1);
  });

  it('a direct staging edit at the end is made and verify reports it (else the run fails)', async () => {
    // int4 pick 0 = 1; jsonb pick 4 = {"big": 9007199254740993}.
    const w: Workload = {
      ...workload(
        oneTable([
          { name: 'c1', type: 'int4' },
          { name: 'c2', type: 'jsonb' },
        ]),
        [replicate, tx(insert(0, 0, 4), insert(1, 0, 4))],
      ),
      auditSchema: 'audit $function$',
      tamper: { table: 0, kind: 'null-value' },
    };
    for (const pipeline of ['engine', 'dms'] as const) {
      const result = await runScenario(w, { adminUrl: inject('pgAdminUrl'), pipeline });
      expect(result.problems).toEqual([]);
      expect(result.tampered).toMatch(/^set c1 to NULL in staging row/);
    }
  });

  it('a table with a header-named column is refused when it joins the config, not before (fuzz seed 170117)', async () => {
    const columns = [
      { name: 'k0', type: 'int4' },
      { name: 'c1', type: 'int4' },
    ];
    const w = workload(
      [
        { schema: 's0', name: 't0', columns, keyCount: 1 },
        {
          schema: 's1',
          name: 't1',
          columns: [...columns, { name: 'ar_h_change_seq', type: 'int4' }],
          keyCount: 1,
          laterInConfig: true,
        },
      ],
      [replicate, tx(insert(0, 0)), { kind: 'configure', table: 1 }],
    );
    for (const pipeline of ['engine', 'dms'] as const) {
      const result = await runScenario(w, { adminUrl: inject('pgAdminUrl'), pipeline });
      expect(result.problems).toEqual([]);
      expect(result.refused).toMatch(HEADER_NAME_REFUSAL);
    }
  });

  it('ignored columns are left out of history on both pipelines', async () => {
    const tables = oneTable([
      { name: 'c1', type: 'int4' },
      { name: 'updated_at', type: 'timestamptz' },
    ]);
    const w = workload(
      [{ ...tables[0]!, ignoreColumns: ['updated_at'] }],
      [
        tx(insert(0, 0, 0)),
        replicate,
        tx(update(0, 1, 2)), // only the ignored column: no version
        tx(update(0, 0, 2), update(0, 1, 3)),
      ],
    );
    for (const pipeline of ['engine', 'dms'] as const)
      expect((await runScenario(w, { adminUrl: inject('pgAdminUrl'), pipeline })).problems).toEqual(
        [],
      );
  });

  // A crash point the run never reaches used to pass: the run exited 0, the restart had
  // nothing to prove, and the test meant to cover a crash covered none.
  it('a crash point never reached fails the run, unless the crash was generated blind', async () => {
    const w: Workload = {
      ...workload(oneTable([{ name: 'c1', type: 'int4' }]), [replicate, tx(insert(0, 0))]),
      crashes: [{ point: 'load-batch', nth: 99, batchSize: 1 }],
    };
    const missed = await runScenario(w, { adminUrl: inject('pgAdminUrl'), pipeline: 'engine' });
    expect(missed.problems).toEqual([
      expect.stringMatching(/the run meant to crash at load-batch:99 was not killed \(exit 0/),
    ]);
    const blind: Workload = {
      ...w,
      crashes: [{ point: 'load-batch', nth: 99, batchSize: 1, mayNotBeReached: true }],
    };
    expect(
      (await runScenario(blind, { adminUrl: inject('pgAdminUrl'), pipeline: 'engine' })).problems,
    ).toEqual([]);
  }, 120_000);
});

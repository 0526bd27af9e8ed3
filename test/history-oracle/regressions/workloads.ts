import type { Statement, Step, TableSpec, Workload } from '../../support/oracle/workload';

/** One table `s0.t0` with an int key `k0` and the given value columns. */
export function oneTable(columns: TableSpec['columns'], keyType = 'int4'): TableSpec[] {
  return [
    { schema: 's0', name: 't0', columns: [{ name: 'k0', type: keyType }, ...columns], keyCount: 1 },
  ];
}

/** A committed transaction. */
export function tx(...statements: Statement[]): Step {
  return { kind: 'tx', tx: { statements, end: 'commit' } };
}

/** INSERT key n with value pick `values` (see TYPES in the workload module). */
export const insert = (n: number, ...values: number[]): Statement => ({
  kind: 'insert',
  table: 0,
  key: [{ n, spelling: 0 }],
  values,
});

/** UPDATE key n SET value column `column` to pick `value`. */
export const update = (n: number, column: number, value: number): Statement => ({
  kind: 'update',
  table: 0,
  key: [{ n, spelling: 0 }],
  set: [[column, value]],
});

export const replicate: Step = { kind: 'replicate' };

/** A workload with no source settings. */
export function workload(tables: TableSpec[], steps: Step[]): Workload {
  return { sourceSettings: {}, tables, steps };
}

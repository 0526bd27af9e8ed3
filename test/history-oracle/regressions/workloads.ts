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

/**
 * Two tables: `s0.t0` stays configured; `s1.t1` (int key `k0`, int `c1`) is the one a
 * `configure` step ({@link configureT1}) removes and adds back.
 */
export const READD_TABLES: TableSpec[] = [0, 1].map((i) => ({
  schema: `s${i}`,
  name: `t${i}`,
  columns: [
    { name: 'k0', type: 'int4' },
    { name: 'c1', type: 'int4' },
  ],
  keyCount: 1,
}));

/** Removes `s1.t1` from the config, or adds it back. */
export const configureT1: Step = { kind: 'configure', table: 1 };

/** Statements on `s1.t1` (int4 picks: 0 = 1, 2 = 0, 3 = -2147483648). */
export const onT1 = {
  insert: (n: number, value: number): Statement => ({
    kind: 'insert',
    table: 1,
    key: [{ n, spelling: 0 }],
    values: [value],
  }),
  /** UPDATE key n SET value column `column` (0 = c1) to pick `value`. */
  update: (n: number, value: number, column = 0): Statement => ({
    kind: 'update',
    table: 1,
    key: [{ n, spelling: 0 }],
    set: [[column, value]],
  }),
  remove: (n: number): Statement => ({ kind: 'delete', table: 1, key: [{ n, spelling: 0 }] }),
};

import {
  renderSteps,
  type ClientStatement,
  type Statement,
  type Step,
  type TableSpec,
  type Transaction,
  type Workload,
} from './workload';

/** Options for {@link minimizeWorkload}. */
export interface MinimizeOptions {
  /** Stop trying simpler workloads at this time (ms since the epoch). @default no limit */
  readonly deadline?: number;
  /** Most candidates tried. @default 1000 */
  readonly maxAttempts?: number;
}

/**
 * Reduces a failing workload further than fast-check's shrinking can: fast-check shrinks
 * each part within its own arbitrary, so a statement inside a savepoint stays inside
 * it, a concurrent step whose second client no longer matters stays concurrent, and a
 * shrink pass does not go back to what an earlier one made removable. This tries, again
 * and again until none fails, each {@link simplerWorkloads} candidate, and keeps the
 * first that still fails (greedy delta debugging; like fast-check, any failure counts).
 */
export async function minimizeWorkload(
  workload: Workload,
  fails: (candidate: Workload) => boolean | Promise<boolean>,
  options: MinimizeOptions = {},
): Promise<{ workload: Workload; attempts: number }> {
  const maxAttempts = options.maxAttempts ?? 1000;
  const seen = new Set<string>([JSON.stringify(workload)]);
  let current = workload;
  let attempts = 0;
  let progress = true;
  while (progress) {
    progress = false;
    for (const candidate of simplerWorkloads(current)) {
      const text = JSON.stringify(candidate);
      if (seen.has(text)) continue;
      seen.add(text);
      if (attempts >= maxAttempts || Date.now() >= (options.deadline ?? Infinity))
        return { workload: current, attempts };
      attempts++;
      if (await fails(candidate)) {
        current = candidate;
        progress = true;
        break;
      }
    }
  }
  return { workload: current, attempts };
}

/**
 * Workloads one step simpler than `w`, biggest cuts first: a step less; one table less;
 * no direct staging edit, audit schema name, source setting or crash; a concurrent step
 * run as one transaction when only one client is left, or as its two transactions one
 * after the other; a statement less, a savepoint's statements without the savepoint, a
 * statement replaced by a plain INSERT of its key; COMMIT for ROLLBACK; migrate right
 * after a DDL rather than later; a value column less; no ignored columns or replica
 * identity.
 */
export function* simplerWorkloads(w: Workload): Generator<Workload> {
  for (let i = 0; i < w.steps.length; i++) yield withoutStep(w, i);
  if (w.tables.length > 1) for (const table of w.tables) yield { ...w, tables: [table] };
  if (w.tamper) yield omit(w, 'tamper');
  if (w.auditSchema !== undefined) yield omit(w, 'auditSchema');
  if (w.upgradeFrom !== undefined) yield omit(w, 'upgradeFrom');
  for (const name of Object.keys(w.sourceSettings))
    yield { ...w, sourceSettings: omit(w.sourceSettings, name) };
  if (w.crashes?.some((c) => c !== null)) yield omit(w, 'crashes');
  for (const [i, step] of w.steps.entries())
    for (const simpler of simplerSteps(step))
      yield { ...w, steps: replace(w.steps, i, ...simpler) };
  for (const [t, table] of w.tables.entries())
    for (const simpler of simplerTables(table))
      yield { ...w, tables: replace(w.tables, t, simpler) };
}

/** Simpler replacements of one step (each a list: a step may become two). */
function* simplerSteps(step: Step): Generator<Step[]> {
  if (step.kind === 'tx') {
    for (const statements of simplerStatementLists(step.tx.statements))
      yield [{ kind: 'tx', tx: { ...step.tx, statements } }];
    if (step.tx.end !== 'commit') yield [{ kind: 'tx', tx: { ...step.tx, end: 'commit' } }];
    return;
  }
  if (step.kind === 'ddl' && step.migrateLater) yield [{ ...step, migrateLater: false }];
  if (step.kind !== 'concurrent') return;
  const clients = [...new Set(step.statements.map((s) => s.client))];
  if (clients.length === 1) yield [clientTransaction(step, clients[0]!)];
  else {
    // Serialised in commit order: the interleaving no longer matters.
    const order: (0 | 1)[] = step.secondEndsFirst ? [1, 0] : [0, 1];
    yield order.map((client) => clientTransaction(step, client));
  }
  const statements = step.statements.map((s) => s.statement);
  for (const simpler of simplerStatementLists(statements, step.statements))
    yield [{ ...step, statements: simpler }];
  if (step.secondEndsFirst) yield [{ ...step, secondEndsFirst: false }];
  for (const client of [0, 1] as const)
    if (step.ends[client] !== 'commit')
      yield [{ ...step, ends: client === 0 ? ['commit', step.ends[1]] : [step.ends[0], 'commit'] }];
}

/**
 * Shorter or simpler statement lists. With `tagged`, the list belongs to a concurrent
 * step and each result keeps (or, for an unwrapped savepoint, inherits) the client tags.
 */
function simplerStatementLists(statements: readonly Statement[]): Generator<Statement[]>;
function simplerStatementLists(
  statements: readonly Statement[],
  tagged: readonly ClientStatement[],
): Generator<ClientStatement[]>;
function* simplerStatementLists(
  statements: readonly Statement[],
  tagged?: readonly ClientStatement[],
): Generator<Statement[] | ClientStatement[]> {
  const tag = (list: { statement: Statement; from: number }[]) =>
    tagged
      ? list.map(({ statement, from }) => ({ client: tagged[from]!.client, statement }))
      : list.map((x) => x.statement);
  const indexed = statements.map((statement, from) => ({ statement, from }));
  if (statements.length > 1)
    for (let i = 0; i < statements.length; i++) yield tag(without(indexed, i));
  for (const [i, statement] of statements.entries()) {
    if (statement.kind === 'savepoint') {
      const inner = statement.statements.map((s) => ({ statement: s, from: i }));
      yield tag([...indexed.slice(0, i), ...inner, ...indexed.slice(i + 1)]);
      for (const simpler of simplerStatementLists(statement.statements))
        yield tag(
          replace(indexed, i, { statement: { ...statement, statements: simpler }, from: i }),
        );
      if (statement.rollback)
        yield tag(replace(indexed, i, { statement: { ...statement, rollback: false }, from: i }));
    } else if (statement.kind !== 'insert') {
      const insert: Statement = {
        kind: 'insert',
        table: statement.table,
        key: statement.key,
        values: [0],
      };
      yield tag(replace(indexed, i, { statement: insert, from: i }));
    }
  }
}

/**
 * One client's statements as a plain transaction: its keys written as the concurrent
 * step wrote them (client c's key n is 2n + c), so the SQL is the same.
 */
function clientTransaction(step: Extract<Step, { kind: 'concurrent' }>, client: 0 | 1): Step {
  const remap = (s: Statement): Statement => {
    if (s.kind === 'savepoint') return { ...s, statements: s.statements.map(remap) };
    const key = s.key.map((k) => ({ ...k, n: k.n * 2 + client }));
    return s.kind === 'updateKey'
      ? { ...s, key, newKey: s.newKey.map((k) => ({ ...k, n: k.n * 2 + client })) }
      : { ...s, key };
  };
  const tx: Transaction = {
    statements: step.statements.filter((s) => s.client === client).map((s) => remap(s.statement)),
    end: step.ends[client],
  };
  return { kind: 'tx', tx };
}

function* simplerTables(table: TableSpec): Generator<TableSpec> {
  if (table.columns.length > table.keyCount + 1)
    for (let i = table.keyCount; i < table.columns.length; i++) {
      const removed = table.columns[i]!.name;
      const ignoreColumns = table.ignoreColumns?.filter((name) => name !== removed);
      yield { ...table, columns: without(table.columns, i), ignoreColumns };
    }
  if (table.ignoreColumns?.length) yield omit(table, 'ignoreColumns');
  if (table.replicaIdentity) yield omit(table, 'replicaIdentity');
  if (table.unlogged) yield omit(table, 'unlogged');
  if (table.laterInConfig) yield omit(table, 'laterInConfig');
  if (table.partitions) yield omit(table, 'partitions');
  if (table.generated) yield omit(table, 'generated');
}

/** `w` without step `i`, and without that step's crash if it was a catch-up. */
function withoutStep(w: Workload, i: number): Workload {
  const steps = without(w.steps, i);
  const catchUp = catchUpIndex(w, i);
  if (!w.crashes || catchUp === undefined) return { ...w, steps };
  return { ...w, steps, crashes: without(w.crashes, catchUp) };
}

/** Which catch-up step `i` is, as the scenario counts them (undefined: none). */
function catchUpIndex(w: Workload, i: number): number | undefined {
  const rendered = renderSteps(w);
  let count = 0;
  let loaded = false;
  for (let j = 0; j <= i; j++) {
    const { step, ddl, config } = rendered[j]!;
    // The scenario catches up at each replicate, before migrate after applied DDL, and
    // before and after migrate at an applied config change.
    const catchesUp =
      step.kind === 'replicate' || (step.kind === 'ddl' && ddl !== undefined && loaded)
        ? 1
        : step.kind === 'configure' && config !== undefined && loaded
          ? 2
          : 0;
    if (j === i) return catchesUp ? count : undefined;
    count += catchesUp;
    if (step.kind === 'replicate') loaded = true;
  }
  return undefined;
}

function without<T>(items: readonly T[], index: number): T[] {
  return [...items.slice(0, index), ...items.slice(index + 1)];
}

function replace<T>(items: readonly T[], index: number, ...by: T[]): T[] {
  return [...items.slice(0, index), ...by, ...items.slice(index + 1)];
}

function omit<T extends object, K extends keyof T>(value: T, key: K): Omit<T, K> {
  const { [key]: _omitted, ...rest } = value;
  return rest;
}

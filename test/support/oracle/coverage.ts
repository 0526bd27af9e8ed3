import { renderSteps, type Statement, type Step, type Workload } from './workload';

/**
 * What a workload exercises, by the #17 item (or kit feature) a regression of which it
 * would catch. The short run's fixed seeds must cover every one of
 * {@link REQUIRED_COVERAGE}: a regression there then fails `npm test` whatever the
 * random seed draws.
 */
export function coverageOf(workload: Workload): Set<string> {
  const labels = new Set<string>();
  const statements = workload.steps.flatMap(stepStatements);
  for (const [t, table] of workload.tables.entries()) {
    const onTable = statements.filter(
      (s) => 'table' in s && s.table % workload.tables.length === t,
    );
    const written = onTable.some((s) => s.kind === 'insert');
    if (table.ignoreColumns?.length && written) labels.add('ignoreColumns');
    if (table.replicaIdentity && onTable.some((s) => s.kind === 'delete' || s.kind === 'updateKey'))
      labels.add(`item 12: replica identity ${table.replicaIdentity}`);
    if (table.columns.some((c) => c.type === 'jsonb' || c.type === 'json') && written)
      labels.add('item 8: numbers in json values through the API');
    if (table.partitions && written) labels.add('item 11: a partitioned table');
    if (table.generated && written) labels.add('item 5: a table with a generated column');
    const keyTypes = table.columns.slice(0, table.keyCount).map((c) => c.type);
    // DMS's sessions take the target database's bytea_output (the workload's settings are
    // the target's too): only the capture functions' own setting keeps the key's text.
    if (keyTypes.includes('bytea') && written && workload.sourceSettings.bytea_output === 'escape')
      labels.add('item 2: a bytea key on a target printing bytea as escape');
    if (keyTypes.includes('money') && written) labels.add('item 2: a money key');
    if (table.partitions && onTable.some((s) => s.kind === 'updateKey'))
      labels.add('item 11: a key change on a partitioned table (may move the row)');
    if (`${table.schema}.${table.name}`.split('.').length > 2)
      labels.add('item 17: a dot in a table reference');
    const textKey = table.columns.slice(0, table.keyCount).some((c) => c.type === 'text');
    if (textKey && onTable.some((s) => s.kind === 'insert' && s.key.some((k) => k.spelling === 5)))
      labels.add('item 16: a 2.6 kB text key');
  }
  if (workload.auditSchema !== undefined) labels.add('item 17: audit schema name');
  for (const label of configLabels(workload)) labels.add(label);
  if (workload.upgradeFrom) labels.add('item 20: an install upgraded from release 0.1.0');
  if (workload.tamper) labels.add(`item 10: staging ${workload.tamper.kind}`);
  if (workload.tamper?.loadedRow) labels.add('item 10: staging edit of a loaded row');
  if (
    workload.steps.some(
      (s) => s.kind === 'concurrent' && new Set(s.statements.map((x) => x.client)).size === 2,
    )
  )
    labels.add('two interleaved clients');
  return labels;
}

/** Every label {@link coverageOf} knows that the short run's fixed seeds must cover. */
export const REQUIRED_COVERAGE = [
  'ignoreColumns',
  'item 12: replica identity full',
  'item 12: replica identity key-index',
  'item 8: numbers in json values through the API',
  'item 17: a dot in a table reference',
  'item 16: a 2.6 kB text key',
  'item 17: audit schema name',
  'item 10: staging null-value',
  'item 10: staging flag-deleted',
  'item 10: staging delete',
  'item 10: staging edit of a loaded row',
  'two interleaved clients',
  'item 13: a table added to the config after the first run',
  'item 19: a table removed from the config',
  'item 19: a removed table added back',
  'item 19: a removed table added back after --drop-staging',
  'ignoreColumns: an ignored column dropped',
  'ignoreColumns: an ignored column renamed',
  'item 20: an install upgraded from release 0.1.0',
  'item 21: a column change in the schema-change log',
  'item 11: a partitioned table',
  'item 11: a key change on a partitioned table (may move the row)',
  'item 4: a write in the new shape before migrate',
] as const;

/**
 * What the short run's feature seeds (`FEATURE_RUN` in short-run.ts) must cover:
 * what `SHORT_RUN_FEATURES` leaves out so that the fixed seeds keep their workloads.
 */
export const FEATURE_RUN_COVERAGE = [
  'item 2: a bytea key on a target printing bytea as escape',
  'item 2: a money key',
  'item 5: a table with a generated column',
  'item 5: a generated column added, renamed or dropped',
] as const;

/** Config changes that apply (added and removed tables, DDL of ignored columns). */
function configLabels(workload: Workload): string[] {
  const labels: string[] = [];
  let started = false;
  const removed = new Set<number>();
  /** The table of a DDL step whose migrate is still waiting (see `migrateLater`). */
  let waiting: number | undefined;
  for (const rendered of renderSteps(workload)) {
    const step = rendered.step;
    if (step.kind !== 'tx' && step.kind !== 'concurrent') waiting = undefined;
    else if (
      waiting !== undefined &&
      stepStatements(step).some((s) => 'table' in s && s.table % workload.tables.length === waiting)
    )
      labels.push('item 4: a write in the new shape before migrate');
    if (step.kind === 'ddl' && step.migrateLater && rendered.ddl && started)
      waiting = step.table % workload.tables.length;
    if (step.kind === 'replicate') started = true;
    if (step.kind === 'configure' && rendered.config && started) {
      const t = step.table % workload.tables.length;
      labels.push(
        rendered.added
          ? removed.has(t)
            ? 'item 19: a removed table added back'
            : 'item 13: a table added to the config after the first run'
          : 'item 19: a table removed from the config',
      );
      if (rendered.added && removed.has(t) && workload.dropStaging)
        labels.push('item 19: a removed table added back after --drop-staging');
      if (!rendered.added) removed.add(t);
    }
    if (step.kind === 'ddl' && step.change.kind === 'generated' && rendered.ddl)
      labels.push('item 5: a generated column added, renamed or dropped');
    if (step.kind === 'ddl' && rendered.schemaChange)
      labels.push('item 21: a column change in the schema-change log');
    if (step.kind === 'ddl' && rendered.config)
      labels.push(
        step.change.kind === 'drop'
          ? 'ignoreColumns: an ignored column dropped'
          : 'ignoreColumns: an ignored column renamed',
      );
  }
  return labels;
}

function stepStatements(step: Step): Statement[] {
  const flat = (s: Statement): Statement[] =>
    s.kind === 'savepoint' ? s.statements.flatMap(flat) : [s];
  if (step.kind === 'tx') return step.tx.statements.flatMap(flat);
  if (step.kind === 'concurrent') return step.statements.flatMap((s) => flat(s.statement));
  return [];
}

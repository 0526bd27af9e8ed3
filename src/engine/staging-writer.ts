import { createHash } from 'node:crypto';
import type pg from 'pg';
import { quoteIdent } from '../postgres/identifiers';
import {
  CHANGE_SEQ_COLUMN,
  COMMIT_TIMESTAMP_COLUMN,
  Indicator,
  OPERATION_COLUMN,
  OPERATION_INDICATOR_COLUMN,
  STREAM_POSITION_COLUMN,
  TRANSACTION_ID_COLUMN,
} from '../staging/header-columns';
import type { StagingTable } from './staging-tables';

/** The DMS header values of one change. */
export interface ChangeHeaders {
  /** `timestamp(6)` text in UTC. */
  readonly commitTimestamp: string;
  /** 35 characters during CDC; empty for full-load rows. */
  readonly changeSeq: string;
  readonly transactionId: string;
  /** LSN text during CDC; empty for full-load rows. */
  readonly streamPosition: string;
}

/**
 * One change to write to staging. Values are PostgreSQL text, indexed like
 * `table.columns`; `undefined` means "not sent" (unchanged TOAST): left out of the SET.
 */
export interface StagingChange {
  /**
   * `load`: a full-load row into staging that has no row of its key. `reload`: a full-load
   * row over the staging table kept while the table was out of the config (#17 item 19):
   * it replaces the row of its key, and the capture trigger records it as a SNAPSHOT only
   * when it differs from that row (or that row is flagged deleted).
   */
  readonly kind: 'load' | 'insert' | 'update' | 'delete';
  readonly table: StagingTable;
  /** New values (load/insert/update); for delete, unused. */
  readonly values: readonly (string | null | undefined)[];
  /** Key the row has in staging before the change (update/delete), in `table.primaryKey` order. */
  readonly oldKey: readonly (string | null)[] | null;
  readonly headers: ChangeHeaders;
}

/** Options for {@link StagingWriter}. */
export interface StagingWriterOptions {
  /** Most rows sent in one statement. @default 2000 */
  readonly batchSize?: number;
  /**
   * Called when an UPDATE or DELETE found fewer staging rows than it had changes (a
   * key missing from staging, e.g. after a source TRUNCATE, which is not replicated).
   * @default ignore
   */
  readonly onMissingRows?: (table: string, expected: number, found: number) => void;
}

const HEADER_NAMES = [
  COMMIT_TIMESTAMP_COLUMN.name,
  CHANGE_SEQ_COLUMN.name,
  TRANSACTION_ID_COLUMN.name,
  STREAM_POSITION_COLUMN.name,
].map(quoteIdent);
const OPERATION = quoteIdent(OPERATION_COLUMN.name);
const INDICATOR = quoteIdent(OPERATION_INDICATOR_COLUMN.name);
const HEADER_CASTS = ['::timestamp(6)', '', '', ''];

/**
 * Writes changes to staging tables the way DMS applies them (INSERT, UPDATE by key,
 * DELETE as an indicator flag), batching consecutive changes of the same shape into
 * one `unnest`-based prepared statement. Statements preserve order: a batch never
 * touches the same key twice, and changes are flushed in arrival order.
 */
export class StagingWriter {
  private readonly batchSize: number;
  private readonly onMissingRows: NonNullable<StagingWriterOptions['onMissingRows']>;
  /** Open batches by shape (table, kind, columns sent), oldest first. */
  private readonly runs = new Map<string, Run>();
  /** Every table-qualified key some open batch touches. */
  private readonly pendingKeys = new Set<string>();
  /** Changes written since the counter was last reset. */
  written = 0;

  constructor(
    private readonly target: pg.ClientBase,
    options: StagingWriterOptions = {},
  ) {
    this.batchSize = options.batchSize ?? 2000;
    this.onMissingRows = options.onMissingRows ?? (() => undefined);
  }

  /**
   * Queues a change in the batch of its shape. Batches of different shapes stay open
   * side by side, so interleaved small transactions (an UPDATE of one table, an INSERT
   * into another, ...) still become a few large statements. Batches never share a key,
   * so the order in which they are written cannot change the result; a change to a key
   * that is already queued first writes everything queued, keeping per-key order.
   */
  async add(change: StagingChange): Promise<void> {
    const shape = shapeOf(change);
    const keys = keysOf(change).map((key) => `${change.table.qualifiedName}\u0000${key}`);
    // A key change is applied alone, as DMS applies it: the audit trigger pairs the old
    // and the new row of a statement by key, which a moved row no longer shares.
    if (changesKey(change) || keys.some((key) => this.pendingKeys.has(key))) await this.flush();
    let run = this.runs.get(shape);
    if (run && run.rows.length >= this.batchSize) {
      await this.write(run);
      run = undefined;
    }
    if (!run) {
      run = { shape, first: change, rows: [], keys: new Set() };
      this.runs.set(shape, run);
    }
    run.rows.push(change);
    for (const key of keys) {
      run.keys.add(key);
      this.pendingKeys.add(key);
    }
    if (changesKey(change)) await this.flush();
  }

  /** Writes whatever is queued, oldest batch first. */
  async flush(): Promise<void> {
    for (const run of [...this.runs.values()]) await this.write(run);
  }

  private async write(run: Run): Promise<void> {
    this.runs.delete(run.shape);
    for (const key of run.keys) this.pendingKeys.delete(key);
    const { text, columns } = statementFor(run.first);
    const values = columns.map((pick) => run.rows.map(pick));
    const result = await this.target.query({ name: statementName(text), text, values });
    const kind = run.first.kind;
    if ((kind === 'update' || kind === 'delete') && (result.rowCount ?? 0) < run.rows.length) {
      this.onMissingRows(run.first.table.qualifiedName, run.rows.length, result.rowCount ?? 0);
    }
    this.written += run.rows.length;
  }

  /** Drops queued changes (after a rollback). */
  discard(): void {
    this.runs.clear();
    this.pendingKeys.clear();
  }
}

interface Run {
  readonly shape: string;
  readonly first: StagingChange;
  readonly rows: StagingChange[];
  readonly keys: Set<string>;
}

type Pick = (change: StagingChange) => string | null;

function shapeOf(change: StagingChange): string {
  const mask =
    change.kind === 'update'
      ? change.values.map((value) => (value === undefined ? '0' : '1')).join('')
      : '';
  return `${change.table.qualifiedName}\u0000${change.kind}\u0000${mask}\u0000${changesKey(change) ? 'K' : ''}`;
}

/** True for an UPDATE that moves the row to another primary key. */
function changesKey(change: StagingChange): boolean {
  return (
    change.kind === 'update' &&
    change.oldKey !== null &&
    JSON.stringify(change.oldKey) !== JSON.stringify(newKey(change))
  );
}

function keysOf(change: StagingChange): string[] {
  const keys: string[] = [];
  if (change.kind !== 'delete') keys.push(JSON.stringify(newKey(change)));
  if (change.oldKey) keys.push(JSON.stringify(change.oldKey));
  return keys;
}

function newKey(change: StagingChange): (string | null | undefined)[] {
  return change.table.primaryKey.map((name) => change.values[columnIndex(change.table, name)]);
}

function columnIndex(table: StagingTable, name: string): number {
  return table.columns.findIndex((column) => column.name === name);
}

const headerPicks: Pick[] = [
  (change) => change.headers.commitTimestamp,
  (change) => change.headers.changeSeq,
  (change) => change.headers.transactionId,
  (change) => change.headers.streamPosition,
];

/** SQL text and the per-parameter value pickers for a batch shaped like `change`. */
function statementFor(change: StagingChange): { text: string; columns: Pick[] } {
  switch (change.kind) {
    case 'load':
    case 'insert':
      return insertStatement(change);
    case 'update':
      return updateStatement(change, true);
    case 'delete':
      return updateStatement(change, false);
  }
}

function insertStatement(change: StagingChange): { text: string; columns: Pick[] } {
  const { table } = change;
  const picks: Pick[] = [];
  const casts: string[] = [];
  const names: string[] = [];
  table.columns.forEach((column, index) => {
    names.push(quoteIdent(column.name));
    casts.push(`::${column.type}`);
    picks.push((row) => row.values[index] ?? null);
  });
  const allNames = [...names, ...HEADER_NAMES];
  const allCasts = [...casts, ...HEADER_CASTS];
  picks.push(...headerPicks);
  const aliases = picks.map((_, index) => `v${index}`);
  const selectList = aliases.map((alias, index) => `${alias}${allCasts[index]}`);
  const params = picks.map((_, index) => `$${index + 1}::text[]`).join(', ');
  let text =
    `INSERT INTO ${table.qualifiedName} (${allNames.join(', ')}, ${OPERATION}, ${INDICATOR}) ` +
    `SELECT ${selectList.join(', ')}, 'INSERT', '${Indicator.inserted}' ` +
    `FROM unnest(${params}) AS v(${aliases.join(', ')})`;
  if (change.kind === 'insert') {
    // A re-insert of a key flagged 'D' brings the row back (DMS ApplyErrorInsertPolicy
    // INSERT_RECORD).
    const updates = [...allNames, OPERATION, INDICATOR].map((name) => `${name} = EXCLUDED.${name}`);
    text += ` ON CONFLICT (${table.primaryKey.map(quoteIdent).join(', ')}) DO UPDATE SET ${updates.join(', ')}`;
  }
  return { text, columns: picks };
}

function updateStatement(
  change: StagingChange,
  setValues: boolean,
): { text: string; columns: Pick[] } {
  const { table } = change;
  const picks: Pick[] = [];
  const sets: string[] = [];
  const alias = () => `u.v${picks.length}`;
  if (setValues) {
    table.columns.forEach((column, index) => {
      if (change.values[index] === undefined) return; // unchanged TOAST: keep staging's value
      sets.push(`${quoteIdent(column.name)} = ${alias()}::${column.type}`);
      picks.push((row) => row.values[index] ?? null);
    });
  }
  HEADER_NAMES.forEach((name, index) => {
    sets.push(`${name} = ${alias()}${HEADER_CASTS[index]}`);
    picks.push(headerPicks[index]!);
  });
  const [operation, indicator] = setValues
    ? ['UPDATE', Indicator.updated]
    : ['DELETE', Indicator.deleted];
  sets.push(`${OPERATION} = '${operation}'`, `${INDICATOR} = '${indicator}'`);
  const where = table.primaryKey.map((name, keyIndex) => {
    const type = table.columns[columnIndex(table, name)]?.type ?? 'text';
    const condition = `s.${quoteIdent(name)} = ${alias()}::${type}`;
    picks.push((row) => oldKeyOf(row)[keyIndex] ?? null);
    return condition;
  });
  const aliases = picks.map((_, index) => `v${index}`);
  const params = picks.map((_, index) => `$${index + 1}::text[]`).join(', ');
  const text =
    `UPDATE ${table.qualifiedName} AS s SET ${sets.join(', ')} ` +
    `FROM unnest(${params}) AS u(${aliases.join(', ')}) WHERE ${where.join(' AND ')}`;
  return { text, columns: picks };
}

function oldKeyOf(change: StagingChange): readonly (string | null | undefined)[] {
  return change.oldKey ?? newKey(change);
}

function statementName(text: string): string {
  return `audit_trail_${createHash('sha1').update(text).digest('hex').slice(0, 24)}`;
}

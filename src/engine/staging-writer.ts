import { createHash } from 'node:crypto';
import type pg from 'pg';
import { query } from '../postgres/callback-query';
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
import { keyText, stagingKeyIdentity } from './key-identity';
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
   * Rows sent to the target and not answered yet after which {@link StagingWriter.add}
   * waits for the oldest statement's answer: bounds memory while the target is slower
   * than the stream. @default twice `batchSize`
   */
  readonly maxRowsInFlight?: number;
  /**
   * Rows queued in open batches, not sent yet, across all shapes, after which the oldest
   * open batch is sent: bounds memory when many tables (shapes) or repeated keys keep
   * batches open. @default {@link OPEN_RUNS_PER_SHAPE} times `batchSize`
   */
  readonly maxRowsQueued?: number;
  /**
   * Characters of value and header text held, queued or sent and not answered yet, after
   * which {@link StagingWriter.add} waits for the oldest answer (and sends the oldest open
   * batch when none is in flight): bounds memory for wide rows, which the row counts do
   * not. One row longer than this still goes, alone. @default 16 Mi (about 16 to 32 MB)
   */
  readonly maxCharsHeld?: number;
  /**
   * Called when an UPDATE or DELETE found fewer staging rows than it had changes (a
   * key missing from staging, e.g. after a source TRUNCATE, which is not replicated).
   * @default ignore
   */
  readonly onMissingRows?: (table: string, expected: number, found: number) => void;
  /** Called after the target answered a statement (the engine's `apply-batch` fault point). @default nothing */
  readonly onWritten?: () => void;
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
 * DELETE as an indicator flag), batching changes of the same shape into one
 * `unnest`-based prepared statement.
 *
 * Statements are sent without waiting for the previous one's answer: the target runs
 * them in the order they were sent (one connection, one transaction) while the caller
 * decodes and batches the next changes. {@link flush} waits for every answer and throws
 * the first failure, so nothing is committed past a failed statement.
 */
export class StagingWriter {
  private readonly batchSize: number;
  private readonly maxRowsInFlight: number;
  private readonly maxRowsQueued: number;
  private readonly maxCharsHeld: number;
  private readonly onMissingRows: NonNullable<StagingWriterOptions['onMissingRows']>;
  private readonly onWritten: () => void;
  /** Open batches by shape (table, kind, columns sent), oldest first. */
  private readonly runs = new Map<string, Run[]>();
  /** The open batches that touch each table-qualified key, oldest first. */
  private readonly pendingKeys = new Map<string, Run[]>();
  /** Numbers the batches opened: an older batch has a smaller one. */
  private runsOpened = 0;
  /** Statement text, parameter pickers and name per shape. */
  private readonly statements = new Map<string, Statement>();
  /** Statements sent and not answered yet, oldest first. */
  private readonly inFlight: InFlight[] = [];
  private rowsInFlight = 0;
  /** Rows in open batches (not sent). */
  private rowsQueued = 0;
  /** Characters of text of the rows queued or in flight. */
  private charsHeld = 0;
  /** The first statement that failed since the last {@link discard}. */
  private failure: { readonly error: unknown } | null = null;
  /** Counts {@link discard}s: an answer to a statement sent before one is ignored. */
  private epoch = 0;
  /** Changes written since the counter was last reset. */
  written = 0;

  constructor(
    private readonly target: pg.ClientBase,
    options: StagingWriterOptions = {},
  ) {
    this.batchSize = options.batchSize ?? 2000;
    this.maxRowsInFlight = options.maxRowsInFlight ?? 2 * this.batchSize;
    this.maxRowsQueued = options.maxRowsQueued ?? OPEN_RUNS_PER_SHAPE * this.batchSize;
    this.maxCharsHeld = options.maxCharsHeld ?? 16 * 1024 * 1024;
    this.onMissingRows = options.onMissingRows ?? (() => undefined);
    this.onWritten = options.onWritten ?? (() => undefined);
  }

  /**
   * Queues a change in the batch of its shape. Batches of different shapes stay open
   * side by side, so interleaved small transactions (an UPDATE of one table, an INSERT
   * into another, ...) still become a few large statements. A batch holds a key once (the
   * audit trigger pairs a statement's old and new rows by key); a change to a key that
   * open batches hold joins a batch opened after all of them, and a batch is sent only
   * after the older open batches that share a key with it, keeping per-key order (the
   * target runs statements in the order they are sent). So a key that repeats (a
   * counter row) starts a later batch instead of cutting the open one short.
   *
   * "The same key" is the staging key's equality, not the key's text: a DELETE of
   * numeric key `2` and an INSERT of `2.00` touch one staging row, and must reach it in
   * that order (see `stagingKeyIdentity`). A table whose key type the writer does not know
   * has each change applied alone, after everything queued before it.
   * @throws the failure of a statement sent earlier, when one has failed.
   */
  async add(change: StagingChange): Promise<void> {
    const identity = stagingKeyIdentity(change.table);
    const key = change.kind === 'delete' ? null : newKey(change);
    const keyAsText = key === null ? null : keyText(key);
    // A key change is applied alone, as DMS applies it: the audit trigger pairs the old
    // and the new row of a statement by key, which a moved row no longer shares.
    const moves =
      change.kind === 'update' && change.oldKey !== null && keyText(change.oldKey) !== keyAsText;
    const alone = moves || identity === null;
    const keys: string[] = [];
    if (identity !== null) {
      const prefix = `${change.table.qualifiedName}\u0000`;
      if (key !== null) keys.push(prefix + identity(key));
      const old = change.oldKey === null ? null : prefix + identity(change.oldKey);
      if (old !== null && old !== keys[0]) keys.push(old);
    }
    if (alone) this.sendAll();
    const run = this.runFor(change, shapeOf(change, alone), keys);
    const chars = textLength(change);
    run.rows.push(change);
    run.chars += chars;
    this.rowsQueued++;
    this.charsHeld += chars;
    for (const queued of keys) {
      run.keys.push(queued);
      const holders = this.pendingKeys.get(queued);
      if (holders) holders.push(run);
      else this.pendingKeys.set(queued, [run]);
    }
    if (alone || run.rows.length >= this.batchSize) this.send(run);
    while (this.rowsQueued > this.maxRowsQueued) this.sendOldest();
    while (this.rowsInFlight > this.maxRowsInFlight || this.charsHeld > this.maxCharsHeld) {
      if (this.inFlight.length > 0) await this.settleOldest();
      else if (!this.sendOldest()) break;
    }
    this.throwFailure();
  }

  /** Sends whatever is queued and waits until the target has answered every statement. */
  async flush(): Promise<void> {
    this.sendAll();
    while (this.inFlight.length > 0) await this.settleOldest();
    this.throwFailure();
  }

  /** Drops queued changes and forgets statements in flight (after a rollback). */
  discard(): void {
    this.runs.clear();
    this.pendingKeys.clear();
    this.inFlight.length = 0;
    this.rowsInFlight = 0;
    this.rowsQueued = 0;
    this.charsHeld = 0;
    this.failure = null;
    this.epoch++;
  }

  /**
   * The open batch of `shape` a change touching `keys` joins, so that each key's
   * versions are in batches in the order they came and a batch holds a key once. When
   * only batches of other shapes hold its keys, those are sent first (a DELETE, then
   * the INSERT of that key again). When a batch of its own shape holds one (a key
   * repeated: a counter row), it joins the oldest batch of its shape opened after every
   * batch that holds one of its keys, or opens one; with {@link OPEN_RUNS_PER_SHAPE}
   * open, the oldest is sent first.
   */
  private runFor(change: StagingChange, shape: string, keys: readonly string[]): Run {
    for (;;) {
      const holders = keys.flatMap((key) => this.pendingKeys.get(key) ?? []);
      if (holders.length > 0 && !holders.some((holder) => holder.shape === shape)) {
        for (const holder of holders) this.send(holder);
        continue;
      }
      const after = Math.max(-1, ...holders.map((holder) => holder.opened));
      const open = this.runs.get(shape);
      const run = open?.find((candidate) => candidate.opened > after);
      if (run) return run;
      if (!open || open.length < OPEN_RUNS_PER_SHAPE) {
        const opened = {
          shape,
          opened: this.runsOpened++,
          first: change,
          rows: [],
          keys: [],
          chars: 0,
        };
        if (open) open.push(opened);
        else this.runs.set(shape, [opened]);
        return opened;
      }
      this.send(open[0]!);
    }
  }

  /** Sends the oldest open batch (it follows no other); false when none is open. */
  private sendOldest(): boolean {
    let oldest: Run | undefined;
    for (const open of this.runs.values())
      if (!oldest || open[0]!.opened < oldest.opened) oldest = open[0];
    if (oldest) this.send(oldest);
    return oldest !== undefined;
  }

  /** Sends every open batch, oldest first (so each after the batches it must follow). */
  private sendAll(): void {
    const open = [...this.runs.values()].flat().sort((a, b) => a.opened - b.opened);
    for (const run of open) this.send(run);
  }

  /**
   * Sends `run`, after the older open batches that hold one of its keys (each of those
   * after its own): a key's versions reach the target in the order they came.
   */
  private send(run: Run): void {
    const open = this.runs.get(run.shape);
    const index = open?.indexOf(run) ?? -1;
    if (index < 0) return;
    for (const key of run.keys)
      for (let holders = this.pendingKeys.get(key)!; holders[0] !== run;) this.send(holders[0]!);
    open!.splice(index, 1);
    if (open!.length === 0) this.runs.delete(run.shape);
    for (const key of run.keys) {
      const holders = this.pendingKeys.get(key)!;
      holders.shift();
      if (holders.length === 0) this.pendingKeys.delete(key);
    }
    const statement = this.statementOf(run);
    const values = statement.columns.map((pick) => run.rows.map(pick));
    const rows = run.rows.length;
    this.rowsQueued -= rows;
    const { kind, table } = run.first;
    const epoch = this.epoch;
    const sent = query(this.target, { name: statement.name, text: statement.text, values });
    const answered = sent.then(
      (result) => {
        if (epoch !== this.epoch) return;
        if ((kind === 'update' || kind === 'delete') && (result.rowCount ?? 0) < rows)
          this.onMissingRows(table.qualifiedName, rows, result.rowCount ?? 0);
        this.written += rows;
        this.onWritten();
      },
      (error: unknown) => {
        if (epoch === this.epoch) this.failure ??= { error };
      },
    );
    this.inFlight.push({ answered, rows, chars: run.chars });
    this.rowsInFlight += rows;
  }

  private async settleOldest(): Promise<void> {
    const oldest = this.inFlight.shift();
    if (!oldest) return;
    await oldest.answered;
    this.rowsInFlight -= oldest.rows;
    this.charsHeld -= oldest.chars;
  }

  private throwFailure(): void {
    if (this.failure) throw this.failure.error;
  }

  private statementOf(run: Run): Statement {
    let statement = this.statements.get(run.shape);
    if (!statement) {
      const { text, columns } = statementFor(run.first);
      statement = { text, columns, name: statementName(text) };
      this.statements.set(run.shape, statement);
    }
    return statement;
  }
}

/**
 * Open batches of one shape at most: a key seen again goes to a later batch of its shape
 * instead of sending the one that holds it, so a key that repeats (a counter row
 * updated by every other transaction) does not cut every statement short.
 */
const OPEN_RUNS_PER_SHAPE = 4;

interface Run {
  readonly shape: string;
  /** {@link StagingWriter}'s count of batches opened when this one was. */
  readonly opened: number;
  readonly first: StagingChange;
  readonly rows: StagingChange[];
  /** The table-qualified keys its rows touch. */
  readonly keys: string[];
  /** Characters of text its rows hold ({@link textLength}). */
  chars: number;
}

interface Statement {
  readonly text: string;
  readonly columns: readonly Pick[];
  readonly name: string;
}

interface InFlight {
  /** Settles (never rejects) once the target answered; a failure is kept by the writer. */
  readonly answered: Promise<void>;
  readonly rows: number;
  readonly chars: number;
}

type Pick = (change: StagingChange) => string | null;

function shapeOf(change: StagingChange, alone: boolean): string {
  let mask = '';
  if (change.kind === 'update')
    for (const value of change.values) mask += value === undefined ? '0' : '1';
  return `${change.table.qualifiedName}\u0000${change.kind}\u0000${mask}\u0000${alone ? 'K' : ''}`;
}

/** The characters of text a change holds: its values, old key and headers. */
function textLength(change: StagingChange): number {
  const { headers } = change;
  let length =
    headers.commitTimestamp.length +
    headers.changeSeq.length +
    headers.transactionId.length +
    headers.streamPosition.length;
  for (const value of change.values) if (value) length += value.length;
  if (change.oldKey) for (const value of change.oldKey) if (value) length += value.length;
  return length;
}

function newKey(change: StagingChange): (string | null | undefined)[] {
  return keyIndexes(change.table).map((index) => change.values[index]);
}

const keyIndexCache = new WeakMap<StagingTable, readonly number[]>();

/** The column index of each primary-key column, looked up once per table. */
function keyIndexes(table: StagingTable): readonly number[] {
  let indexes = keyIndexCache.get(table);
  if (!indexes) {
    indexes = table.primaryKey.map((name) => columnIndex(table, name));
    keyIndexCache.set(table, indexes);
  }
  return indexes;
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

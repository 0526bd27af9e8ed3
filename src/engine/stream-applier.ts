import type pg from 'pg';
import { query } from '../postgres/callback-query';
import { ChangeSequence } from './change-sequence';
import { faultPoint } from './fault-injection';
import { LagReporter, type LagSink } from './lag-reporter';
import type { EngineLogger } from './logger';
import type { ProgressReporter, ProgressTask } from '../support/progress';
import { formatLsn, type Lsn } from './lsn';
import { formatUtcTimestamp, type PgTimestamp } from './pg-time';
import { decodePgOutput, type RelationMessage } from './pgoutput';
import type { PositionStore, StoredPosition } from './position-store';
import { ConnectionLostError } from './reconnect';
import {
  bindRelation,
  isMismatch,
  SchemaChangeError,
  SchemaChangeStop,
  stagingKey,
  stagingValues,
  type RelationBinding,
  type RelationMismatch,
} from './relation-binding';
import {
  NOT_DETACHING,
  relationKey,
  type AttachedPartitionFilter,
  type PartitionedChange,
} from './partition-loading';
import type { ReplicationConnection } from './replication-connection';
import type { SchemaChangePositions } from './schema-change-positions';
import type { StagingTable } from './staging-tables';
import { StagingWriter, type StagingChange } from './staging-writer';
import { TransactionGroup } from './transaction-group';
import {
  DEFAULT_PUBLICATION_CHECK_MS,
  narrowedPublication,
  PublicationWatch,
} from './publication-watch';

/** Standby status interval, well under the default wal_sender_timeout (60 s). */
const STATUS_INTERVAL_MS = 10_000;

/**
 * Least time between two idle acknowledgements, each recorded on the target before the
 * slot is told (one small write): an idle slot still moves on, without a write per
 * keepalive.
 */
const IDLE_ACK_INTERVAL_MS = 1_000;

/**
 * Changes in one source transaction after which its apply is reported as progress
 * (a bar on the CLI's terminal): smaller transactions apply in well under a second.
 */
const LARGE_TRANSACTION_CHANGES = 10_000;

/** What the applier needs from the engine that runs it, and nothing more. */
export interface ApplierHost extends LagSink {
  readonly logger: EngineLogger;
  /** Where initial loads and large transactions report how far they got. */
  readonly progress: ProgressReporter;
  /** True once the engine was asked to stop: the applier finishes at the next boundary. */
  readonly stopping: boolean;
  /** Called after each target commit with what it held. */
  applied(transactions: number, changes: number, lastEnd: Lsn): void;
}

/**
 * Apply only source transactions that commit before `commitLsn`, then stop: with
 * `message` as a {@link SchemaChangeError}, or quietly when it is null.
 */
export interface ApplyHalt {
  readonly commitLsn: Lsn;
  readonly message: string | null;
}

/** Options for {@link StreamApplier}. */
export interface StreamApplierOptions {
  readonly host: ApplierHost;
  /** The replication connection, already streaming from `start.lastEndLsn`. */
  readonly repl: ReplicationConnection;
  /** Source query connection (relation binding, lag). */
  readonly source: pg.Client;
  /** The publication streamed: checked again whenever a relation is announced, and on a timer. */
  readonly publication: string;
  /**
   * How often the publication is checked while streaming, for a narrowing that sends
   * nothing to announce ({@link PublicationWatch}). @default {@link DEFAULT_PUBLICATION_CHECK_MS}
   */
  readonly publicationCheckMs?: number;
  /** Target connection, not in a transaction. */
  readonly target: pg.Client;
  readonly tables: readonly StagingTable[];
  readonly positions: PositionStore;
  /** Logged column changes to date at the first change applied in their new shape. */
  readonly schemaChanges: SchemaChangePositions;
  /** The position stored on the target: where this apply starts. */
  readonly start: StoredPosition;
  /** Most rows per apply statement. @default the writer's default */
  readonly batchSize?: number;
  /** How often lag is measured and logged, in ms; 0 disables. */
  readonly lagIntervalMs: number;
  /** Stop once everything committed before this LSN is applied (until-idle). @default never */
  readonly stopLsn?: Lsn | null;
  /** @default none */
  readonly halt?: ApplyHalt | null;
  /** Told the position applied after each target commit (a catch-up's progress). @default none */
  readonly appliedTo?: (lsn: Lsn) => void;
  /** Staging tables whose changes are not applied (tables being loaded). @default none */
  readonly skip?: ReadonlySet<string>;
  /** Leaf partitions being loaded: their changes are not applied. @default none */
  readonly attached?: AttachedPartitionFilter | null;
  /**
   * Leaf partitions of the audited tables when the engine started (`schema\0name`):
   * loaded, or being loaded. Another one announced is a partition attached since.
   */
  readonly knownLeaves: ReadonlyMap<string, string>;
}

/**
 * A partition was attached to an audited table while the engine ran: its rows from
 * before are in no change. The open target transaction was rolled back; the engine
 * starts again from its stored position and loads the partition (src/engine/partition-loading.ts).
 */
export class PartitionAttached extends Error {
  override readonly name = 'PartitionAttached';
  constructor(readonly partition: string) {
    super(`partition ${partition} was attached to an audited table`);
  }
}

/** Whether a relation is a leaf partition under one of the audited tables (now). */
const IS_AUDITED_LEAF_SQL = `
  SELECT EXISTS (
    SELECT FROM pg_catalog.pg_partition_ancestors($1::oid) AS a(relid)
      JOIN pg_catalog.pg_class c ON c.oid OPERATOR(pg_catalog.=) a.relid
      JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
     WHERE (n.nspname, c.relname) IN (SELECT * FROM unnest($2::text[], $3::text[]))
  ) AND (SELECT relkind FROM pg_catalog.pg_class WHERE oid = $1::oid) = 'r' AS leaf`;

/**
 * A relation's attachment as a partition (`LeafPartition.attachment`); no row when it is
 * none. On the source session (the login's search_path): pg_catalog.format, which a
 * public.format(text, bigint, xid) would otherwise outrank.
 */
const ATTACHMENT_SQL = `
  SELECT pg_catalog.format('%s/%s', i.inhrelid::int8, i.xmin) AS attachment
    FROM pg_catalog.pg_inherits i WHERE i.inhrelid = $1::oid AND ${NOT_DETACHING}`;

interface OpenSourceTransaction {
  readonly commitLsn: Lsn;
  readonly commitTime: PgTimestamp;
  readonly commitTimestamp: string;
  readonly xid: string;
  readonly skip: boolean;
  /**
   * Whether a change of an audited table arrived. PostgreSQL 13 and 14 send Begin and
   * Commit for every transaction, also those without published changes (15 skips
   * them): those must not count as applied transactions.
   */
  changed: boolean;
  /**
   * Whether a change was left out as a held row of a partition being loaded (the copy
   * records that row): the transaction must still move the stored position.
   */
  leftToCopy: boolean;
  /** Changes of this transaction applied so far. */
  changes: number;
  /** Its progress, once it is large ({@link LARGE_TRANSACTION_CHANGES}). */
  progress: ProgressTask | null;
}

/**
 * Applies the pgoutput stream to staging: source transactions in commit order, each
 * inside a target transaction that also stores the position, grouped as DMS groups
 * them; the slot is told only after the target commit.
 */
export class StreamApplier {
  private readonly relations = new Map<number, RelationBinding | RelationMismatch | null>();
  private readonly host: ApplierHost;
  private readonly repl: ReplicationConnection;
  private readonly source: pg.Client;
  private readonly target: pg.Client;
  private readonly publication: string;
  private readonly tables: readonly StagingTable[];
  private readonly positions: PositionStore;
  private readonly schemaChanges: SchemaChangePositions;
  private readonly stopLsn: Lsn | null;
  private readonly halt: ApplyHalt | null;
  private readonly appliedTo: (lsn: Lsn) => void;
  private readonly skip: ReadonlySet<string>;
  private readonly attached: AttachedPartitionFilter | null;
  /** Leaf partitions known to be loaded, with their attachment; null: not an audited leaf. */
  private readonly knownLeaves: Map<string, string | null>;
  /** Relations announced that no configured table matches, by relation id. */
  private readonly unconfigured = new Map<number, string>();
  private readonly lagIntervalMs: number;
  private readonly publicationWatch: PublicationWatch;
  private readonly publicationCheckMs: number;
  private readonly writer: StagingWriter;
  private readonly sequence: ChangeSequence;
  private readonly group = new TransactionGroup();
  private readonly lag: LagReporter;
  private applied: StoredPosition;
  private pending: StoredPosition | null = null;
  private open: OpenSourceTransaction | null = null;
  private acked: Lsn;
  /** The furthest position the target is known to record: the slot is never told more. */
  private recorded: Lsn;
  /** When the last idle acknowledgement was recorded (`performance.now()`). */
  private idleAckRecordedAt = -Infinity;
  private reachedStop = false;

  constructor(options: StreamApplierOptions) {
    this.host = options.host;
    this.repl = options.repl;
    this.source = options.source;
    this.publication = options.publication;
    this.target = options.target;
    this.tables = options.tables;
    this.positions = options.positions;
    this.schemaChanges = options.schemaChanges;
    this.stopLsn = options.stopLsn ?? null;
    this.halt = options.halt ?? null;
    this.appliedTo = options.appliedTo ?? (() => undefined);
    this.skip = options.skip ?? new Set();
    this.attached = options.attached ?? null;
    this.knownLeaves = new Map(options.knownLeaves);
    this.lagIntervalMs = options.lagIntervalMs;
    const logger = options.host.logger;
    this.publicationCheckMs = options.publicationCheckMs ?? DEFAULT_PUBLICATION_CHECK_MS;
    // A narrowing found between messages ends the stream: the loop's next read throws it,
    // and the open target transaction is rolled back (apply).
    this.publicationWatch = new PublicationWatch(
      options.source,
      options.publication,
      options.tables,
      logger,
      (error) => this.repl.abort(error),
    );
    this.writer = new StagingWriter(options.target, {
      batchSize: options.batchSize,
      onMissingRows: (table, expected, found) =>
        logger.log('warn', 'updates or deletes found no staging row for their key', {
          table,
          expected,
          found,
        }),
      onWritten: () => faultPoint('apply-batch'),
    });
    const start = options.start;
    this.sequence = new ChangeSequence(start.lastSeqPrefix, start.lastSeqCounter);
    this.applied = start;
    this.acked = start.lastEndLsn;
    this.recorded = start.lastEndLsn;
    this.lag = new LagReporter(options.source, logger, options.host, () => ({
      appliedLsn: this.applied.lastEndLsn,
      caughtUp: !this.open && !this.pending && this.repl.pending === 0,
      openCommitTime: this.open?.commitTime ?? null,
    }));
  }

  /**
   * Applies until stopped (or idle, or halted).
   * @throws whatever stopped it; a target transaction left open (its position write
   *   refused, a failed statement or commit) is rolled back first, so nothing of it can
   *   commit on this connection afterwards.
   */
  async apply(): Promise<void> {
    try {
      await this.applyStream();
    } catch (error) {
      await this.rollbackAfterError();
      throw error;
    }
  }

  private async applyStream(): Promise<void> {
    const statusTimer = setInterval(() => this.repl.sendStatus(this.acked), STATUS_INTERVAL_MS);
    // Until-idle: ask for keepalives so the server reports how far it has decoded.
    const probeTimer =
      this.stopLsn === null && this.halt === null ? null : setInterval(() => this.probe(), 50);
    this.lag.start(this.lagIntervalMs);
    this.publicationWatch.start(this.publicationCheckMs);
    try {
      await this.loop();
    } finally {
      this.open?.progress?.done();
      clearInterval(statusTimer);
      if (probeTimer) clearInterval(probeTimer);
      await this.lag.stop();
      await this.publicationWatch.stop();
    }
    if (this.pending) {
      // Stopping between source transactions: keep what is complete.
      if (this.open) await this.rollback();
      else await this.commit();
    }
    this.repl.sendStatus(this.acked);
  }

  private async loop(): Promise<void> {
    for (;;) {
      if (!this.open && this.pending && (this.repl.pending === 0 || this.reachedStop))
        await this.commit();
      if (this.host.stopping) return;
      if (this.reachedStop && !this.open && !this.pending) return;
      const message = await this.repl.next();
      if (!message) {
        if (this.host.stopping) return;
        throw new ConnectionLostError(
          'source',
          new Error('the server ended the replication stream'),
        );
      }
      if (message.kind === 'keepalive') {
        if (!this.open && !this.pending && message.walEnd > this.acked) {
          // Everything before walEnd was sent before this keepalive and is applied: let the
          // slot move on. Messages queued behind it do not matter (a transaction sent after
          // it commits past walEnd, and is sent again from there): under load a keepalive
          // always has another behind it, and an until-idle run stopped without acknowledging.
          await this.ackIdle(message.walEnd, message.replyRequested);
        } else if (message.replyRequested) this.repl.sendStatus(this.acked);
        if (this.stopLsn !== null && message.walEnd >= this.stopLsn && !this.open)
          this.reachedStop = true;
        if (this.halt && message.walEnd >= this.halt.commitLsn && !this.open)
          this.reachedStop = true;
        continue;
      }
      await this.handle(message.start, message.payload);
    }
  }

  private async handle(lsn: Lsn, payload: Buffer): Promise<void> {
    const message = decodePgOutput(payload);
    switch (message.tag) {
      case 'begin': {
        const lastCommit = (this.pending ?? this.applied).lastCommitLsn;
        if (
          this.halt &&
          message.commitLsn >= this.halt.commitLsn &&
          message.commitLsn > lastCommit
        ) {
          await this.commit();
          if (this.halt.message !== null) throw new SchemaChangeError(this.halt.message);
          this.reachedStop = true;
          return;
        }
        this.open = {
          commitLsn: message.commitLsn,
          commitTime: message.commitTime,
          commitTimestamp: formatUtcTimestamp(message.commitTime),
          xid: String(message.xid),
          skip: message.commitLsn <= lastCommit,
          changed: false,
          leftToCopy: false,
          changes: 0,
          progress: null,
        };
        if (this.open.skip)
          this.host.logger.log('debug', 'skipping applied transaction', { xid: message.xid });
        return;
      }
      case 'relation':
        await this.refuseNarrowedPublication();
        this.relations.set(message.relationId, await this.bind(message));
        return;
      case 'insert':
      case 'update':
      case 'delete':
        return this.change(message, lsn);
      case 'commit':
        return this.commitSource(message.commitLsn, message.endLsn);
      case 'truncate':
        this.host.logger.log(
          'warn',
          'TRUNCATE is not replicated (as with DMS); staging keeps its rows',
          {
            relations: message.relationIds.map((id) => this.relations.get(id)?.name ?? id),
          },
        );
        return;
      default:
        return;
    }
  }

  private async change(
    message: Extract<ReturnType<typeof decodePgOutput>, { tag: 'insert' | 'update' | 'delete' }>,
    lsn: Lsn,
  ): Promise<void> {
    const open = this.open;
    if (!open) throw new Error('pgoutput: change outside a transaction');
    if (open.skip) return;
    const binding = this.relations.get(message.relationId);
    if (!binding) {
      this.warnUnconfigured(message.relationId);
      return;
    }
    if (isMismatch(binding)) return this.stopForSchemaChange(binding, open);
    if (
      this.attached &&
      (await this.attached.excludes(this.source, binding, keysOf(binding, message)))
    ) {
      open.leftToCopy = true;
      return;
    }
    open.changed = true;
    if (!this.pending) await this.beginTarget();
    await this.schemaChanges.place(this.target, binding, open);
    const headers = {
      commitTimestamp: open.commitTimestamp,
      changeSeq: this.sequence.next(open.commitTime),
      transactionId: open.xid,
      streamPosition: formatLsn(lsn),
    };
    let change: StagingChange;
    if (message.tag === 'insert') {
      change = {
        kind: 'insert',
        table: binding.table,
        values: stagingValues(binding, message.newTuple, null),
        oldKey: null,
        headers,
      };
    } else if (message.tag === 'update') {
      change = {
        kind: 'update',
        table: binding.table,
        values: stagingValues(binding, message.newTuple, undefined),
        oldKey: message.oldTuple ? stagingKey(binding, message.oldTuple) : null,
        headers,
      };
    } else {
      change = {
        kind: 'delete',
        table: binding.table,
        values: [],
        oldKey: stagingKey(binding, message.oldTuple),
        headers,
      };
    }
    await this.writer.add(change);
    this.group.changes++;
    this.reportLarge(open);
  }

  /**
   * A change whose table no longer matches staging: nothing of its source transaction
   * may be applied. Source transactions already grouped into the open target
   * transaction are complete, so the engine applies them again up to this one
   * (the engine's `applyBefore`); with none, it stops right away.
   */
  private async stopForSchemaChange(
    binding: RelationMismatch,
    open: OpenSourceTransaction,
  ): Promise<never> {
    const completedBefore = this.pending !== null && this.pending !== this.applied;
    if (this.pending) await this.rollback();
    this.host.logger.log('error', 'source schema changed; stopping', { reason: binding.mismatch });
    if (completedBefore) throw new SchemaChangeStop(binding.mismatch, open.commitLsn);
    throw new SchemaChangeError(binding.mismatch);
  }

  /** Counts a change of `open`; a large transaction's apply is shown as progress. */
  private reportLarge(open: OpenSourceTransaction): void {
    open.changes++;
    if (open.progress) open.progress.advance(1);
    else if (open.changes === LARGE_TRANSACTION_CHANGES) {
      // Its size is known only at its commit: a rate is shown, no ETA.
      open.progress = this.host.progress.start(`applying transaction ${open.xid}`);
      open.progress.advance(open.changes);
    }
  }

  private async commitSource(commitLsn: Lsn, endLsn: Lsn): Promise<void> {
    const open = this.open;
    open?.progress?.done();
    this.open = null;
    if (!open || open.skip) return;
    if (!this.pending) {
      if (!open.leftToCopy) return;
      // Nothing of it applied, but the stored position must pass it: the stream after
      // the load starts from that position, and only a slot told past this transaction
      // would not send it again (a halt does not always tell it), to be applied then
      // with no filter, after the copy that already holds its rows.
      await this.beginTarget();
    }
    const state = this.sequence.state();
    this.pending = {
      initialLoadDone: true,
      lastCommitLsn: commitLsn,
      lastEndLsn: endLsn,
      lastSeqPrefix: state.prefix,
      lastSeqCounter: state.counter,
    };
    if (open.changed) this.group.transactions++;
    if (this.stopLsn !== null && endLsn >= this.stopLsn) this.reachedStop = true;
    if (this.group.isFull()) await this.commit();
  }

  private async beginTarget(): Promise<void> {
    await query(this.target, 'BEGIN');
    this.group.begin();
    // A placeholder until the first source commit: nothing to store yet.
    this.pending = this.applied;
  }

  private async commit(): Promise<void> {
    const pending = this.pending;
    if (!pending) return;
    await this.writer.flush();
    if (pending !== this.applied) await this.positions.write(this.target, pending);
    faultPoint('apply-batch');
    await query(this.target, 'COMMIT');
    this.schemaChanges.committed();
    this.pending = null;
    this.applied = pending;
    this.host.applied(this.group.transactions, this.group.changes, pending.lastEndLsn);
    this.appliedTo(pending.lastEndLsn);
    if (pending.lastEndLsn > this.recorded) this.recorded = pending.lastEndLsn;
    faultPoint('after-commit');
    this.ack(pending.lastEndLsn);
    faultPoint('after-ack');
  }

  /**
   * Rolls back the open target transaction, if any, on the way out of an error: a
   * refused position write leaves the transaction able to commit its staging rows
   * without their position. A rollback that fails too (the connection lost) is not
   * reported over the error that caused it; the server rolls the transaction back
   * when the connection ends.
   */
  private async rollbackAfterError(): Promise<void> {
    if (!this.pending) return;
    await this.rollback().catch(() => undefined);
  }

  private async rollback(): Promise<void> {
    this.writer.discard();
    this.schemaChanges.rolledBack();
    await query(this.target, 'ROLLBACK');
    this.pending = null;
    const state = { prefix: this.applied.lastSeqPrefix, counter: this.applied.lastSeqCounter };
    this.sequence.reset(state.prefix, state.counter);
  }

  /**
   * An idle acknowledgement past the last applied commit: recorded on the target first
   * (at most once per {@link IDLE_ACK_INTERVAL_MS}), so that a slot found confirmed past
   * what the target records means a target that lost it (`refuseTargetBehindSlot`).
   * Between recordings the slot is told only what is recorded.
   */
  private async ackIdle(walEnd: Lsn, replyRequested: boolean): Promise<void> {
    if (walEnd > this.recorded) {
      const now = performance.now();
      if (now - this.idleAckRecordedAt < IDLE_ACK_INTERVAL_MS) {
        if (this.recorded > this.acked) this.ack(this.recorded);
        else if (replyRequested) this.repl.sendStatus(this.acked);
        return;
      }
      this.idleAckRecordedAt = now;
      if (!(await this.positions.recordAcknowledged(this.target, walEnd))) {
        if (replyRequested) this.repl.sendStatus(this.acked);
        return;
      }
      this.recorded = walEnd;
    }
    this.ack(walEnd);
  }

  /** Tells the slot `lsn`, which the target must record already. */
  private ack(lsn: Lsn): void {
    if (lsn > this.recorded)
      throw new Error(`acknowledging ${formatLsn(lsn)}, past what the target records`);
    if (lsn <= this.acked) return;
    this.acked = lsn;
    this.repl.sendStatus(lsn);
  }

  private probe(): void {
    if (!this.open && this.repl.pending === 0) this.repl.sendStatus(this.acked, true);
  }

  /**
   * pgoutput announces a relation again before its first change after the publication
   * changed (and at the first change of each session): a publication narrowed while the
   * engine runs is found at the next change it still sends, and nothing after it is
   * applied. A narrowing that filters every change sends nothing: the
   * {@link PublicationWatch} finds it within `publicationCheckMs`, and the next start
   * checks too (`ensurePublication`).
   */
  private async refuseNarrowedPublication(): Promise<void> {
    const narrowed = await narrowedPublication(this.source, this.publication, this.tables);
    if (narrowed) throw narrowed;
  }

  private async bind(
    relation: RelationMessage,
  ): Promise<RelationBinding | RelationMismatch | null> {
    const table = this.tables.find(
      (t) => t.source.schema === relation.schema && t.source.table === relation.table,
    );
    if (table && this.skip.has(table.qualifiedName)) return null;
    if (!table) {
      this.attached?.announced(relation.schema, relation.table);
      await this.refuseUnknownLeaf(relation);
      // Said at its first change, not here: pgoutput announces a leaf partition after its
      // published root (publish_via_partition_root), though every change comes as the root's.
      this.unconfigured.set(relation.relationId, `${relation.schema}.${relation.table}`);
      return null;
    }
    this.unconfigured.delete(relation.relationId);
    return bindRelation(this.source, relation, table);
  }

  /**
   * A leaf partition announced that was not one when the engine started was attached
   * since: its rows from before the attach were never a change, and the changes of rows
   * it held would find no staging row. One that was, but under another attachment now,
   * was detached and attached again (PostgreSQL announces it anew after the ATTACH):
   * what happened to its rows while it was out is in no stream. Either way, stop
   * (nothing of this source transaction is kept) so that the engine, starting again,
   * loads it consistently with the stream, or refuses it (`refuseReattached` in
   * table-loading.ts).
   */
  private async refuseUnknownLeaf(relation: RelationMessage): Promise<void> {
    const key = relationKey(relation.schema, relation.table);
    const known = this.knownLeaves.get(key);
    if (known === null) return;
    if (known !== undefined) {
      const { rows } = await this.source.query<{ attachment: string | null }>(ATTACHMENT_SQL, [
        relation.relationId,
      ]);
      if ((rows[0]?.attachment ?? null) === known) return;
    } else {
      const { rows } = await this.source.query<{ leaf: boolean }>(IS_AUDITED_LEAF_SQL, [
        relation.relationId,
        this.tables.map((t) => t.source.schema),
        this.tables.map((t) => t.source.table),
      ]);
      // Not a leaf of an audited table: a table outside the config; asked once.
      if (rows[0]?.leaf !== true) {
        this.knownLeaves.set(key, null);
        return;
      }
    }
    if (this.pending) await this.rollback();
    this.open = null;
    throw new PartitionAttached(`${relation.schema}.${relation.table}`);
  }

  /** Warns, once per announcement, that a change of a relation not configured is dropped. */
  private warnUnconfigured(relationId: number): void {
    const table = this.unconfigured.get(relationId);
    if (table === undefined) return;
    this.unconfigured.delete(relationId);
    this.host.logger.log('warn', 'ignoring changes of a table that is not configured', { table });
  }
}

/** The staging keys of a change, as {@link AttachedPartitionFilter} reads them. */
function keysOf(
  binding: RelationBinding,
  message: Extract<ReturnType<typeof decodePgOutput>, { tag: 'insert' | 'update' | 'delete' }>,
): PartitionedChange {
  if (message.tag === 'delete')
    return { tag: 'delete', key: stagingKey(binding, message.oldTuple), oldKey: null };
  return {
    tag: message.tag,
    key: stagingKey(binding, message.newTuple),
    oldKey:
      message.tag === 'update' && message.oldTuple ? stagingKey(binding, message.oldTuple) : null,
  };
}

import { createHash } from 'node:crypto';
import pg from 'pg';
import type { AuditTrailConfig } from '../config';
import { requireChangeHistory } from '../config/change-history';
import { connectClient } from '../postgres/connect';
import { ChangeSequence } from './change-sequence';
import { faultPoint } from './fault-injection';
import { copyInitialLoad, InitialLoadStopped } from './initial-load';
import { createJsonLogger, type EngineLogger } from './logger';
import { formatLsn, parseLsn, type Lsn } from './lsn';
import { formatUtcTimestamp, secondsSince, type PgTimestamp } from './pg-time';
import { decodePgOutput, type RelationMessage } from './pgoutput';
import { PositionStore, type StoredPosition } from './position-store';
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
  ConnectionLostError,
  DEFAULT_RECONNECT_POLICY,
  EngineGaveUpError,
  isConnectionLoss,
  reconnectDelay,
  sideOf,
  type ConnectionSide,
  type ReconnectPolicy,
} from './reconnect';
import { ReplicationConnection } from './replication-connection';
import { checkSource, dropSlotIfExists, ensurePublication, slotExists } from './source-setup';
import { readStagingTables, type StagingTable } from './staging-tables';
import { StagingWriter, type StagingChange } from './staging-writer';
import { connectText, ENGINE_TARGET_SETTINGS } from './text-client';

/** The source's clock in the form staging stores commit times (UTC, microseconds). */
const SOURCE_CLOCK_SQL = "SELECT (clock_timestamp() AT TIME ZONE 'UTC')::timestamp(6)::text AS now";

/** Options for {@link createEngine}. */
export interface EngineOptions {
  /** The audited tables and the audit schema. */
  readonly config: AuditTrailConfig;
  /** Source database URL (needs wal_level=logical and the REPLICATION privilege). */
  readonly sourceUrl: string;
  /** Target database URL, already migrated (`audit-trail migrate`). */
  readonly targetUrl: string;
  /**
   * Replication slot on the source. Slot names are server-wide.
   * @default `audit_trail_` + a hash of the source database, target and audit schema
   */
  readonly slotName?: string;
  /** Publication on the source. @default the slot name */
  readonly publicationName?: string;
  /** Most rows per apply statement; a big source transaction is applied in chunks of this size. @default 2000 */
  readonly batchSize?: number;
  /** Structured log sink. @default JSON lines on stderr */
  readonly logger?: EngineLogger;
  /** How often lag is logged while running, in ms; 0 disables. @default 10000 */
  readonly lagIntervalMs?: number;
  /**
   * How {@link Engine.run} retries after losing the source or target connection once
   * it has streamed: capped exponential backoff with jitter, each attempt logged, and
   * an {@link EngineGaveUpError} when one outage lasts longer than `giveUpAfterMs`.
   * Failures before the first stream, and every failure of `runUntilIdle`, are not
   * retried. @default {@link DEFAULT_RECONNECT_POLICY} (1 s doubling to 30 s, give up after 10 min)
   */
  readonly reconnect?: Partial<ReconnectPolicy>;
}

/** What a run did. */
export interface EngineRunResult {
  /** Rows copied by the initial load per table (`schema.table`); empty when no load ran. */
  readonly initialLoadRows: Readonly<Record<string, number>>;
  /** Source transactions applied by this run. */
  readonly transactions: number;
  /** Row changes applied by this run. */
  readonly changes: number;
  /** End LSN of the last applied source transaction. */
  readonly lastAppliedLsn: string;
}

/** A point-in-time view of a running engine. */
export interface EngineStatus {
  readonly phase: 'idle' | 'starting' | 'initial-load' | 'streaming' | 'reconnecting' | 'stopped';
  readonly transactions: number;
  readonly changes: number;
  readonly lastAppliedLsn: string;
  /** Bytes of source WAL not yet applied (as of the last lag check). */
  readonly lagBytes: number;
  /** Age of the oldest source commit not yet applied; 0 when caught up. */
  readonly lagSeconds: number;
  /** Connection losses this run has recovered from or is recovering from. */
  readonly reconnects: number;
  /** The last connection loss, while reconnecting; undefined once streaming again. */
  readonly lastError?: string;
}

/** The local CDC engine: the kit's stand-in for an AWS DMS task. */
export interface Engine {
  /** Runs until `signal` aborts or {@link stop} is called; applies changes as they commit. */
  run(signal?: AbortSignal): Promise<EngineRunResult>;
  /** Applies everything committed on the source before the call, then returns. */
  runUntilIdle(): Promise<EngineRunResult>;
  /** Asks a run to finish: the open source transaction is rolled back on the target, the rest committed. */
  stop(): Promise<void>;
  status(): EngineStatus;
}

/** Creates an engine; nothing connects until `run`/`runUntilIdle`. */
export function createEngine(options: EngineOptions): Engine {
  requireChangeHistory(options.config, 'the CDC engine (replicate)');
  return new CdcEngine(options);
}

/** The default slot name for a source/target pair (stable, so restarts find it). */
export function defaultSlotName(sourceUrl: string, targetUrl: string, auditSchema: string): string {
  const source = new URL(sourceUrl);
  const target = new URL(targetUrl);
  const identity = [
    source.hostname,
    source.port,
    source.pathname,
    target.hostname,
    target.port,
    target.pathname,
    auditSchema,
  ];
  return `audit_trail_${createHash('sha1').update(identity.join('\u0000')).digest('hex').slice(0, 16)}`;
}

/** Commit a grouped target transaction after this many changes… */
const GROUP_MAX_CHANGES = 20_000;
/** …or after it has been open this long. */
const GROUP_MAX_MS = 500;
/** Standby status interval, well under the default wal_sender_timeout (60 s). */
const STATUS_INTERVAL_MS = 10_000;

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
}

class CdcEngine implements Engine {
  private readonly logger: EngineLogger;
  private readonly slot: string;
  private readonly publication: string;
  private stopRequested = false;
  private repl: ReplicationConnection | null = null;
  private state: EngineStatus['phase'] = 'idle';
  private transactions = 0;
  private changes = 0;
  private lastApplied: Lsn = 0n;
  private lagBytes = 0;
  private oldestUnapplied: PgTimestamp | null = null;
  private readonly reconnectPolicy: ReconnectPolicy;
  /** The first connection of this attempt that was lost (its 'error' event). */
  private lost: ConnectionLostError | null = null;
  private streamedOnce = false;
  /** Whether this engine streamed since the last connection loss (which ends an outage). */
  private streamedSinceLoss = false;
  private reconnects = 0;
  private lastError: string | undefined;
  private initialLoadRows: Record<string, number> = {};
  private wakeFromBackoff: (() => void) | null = null;

  constructor(private readonly options: EngineOptions) {
    this.logger = options.logger ?? createJsonLogger();
    this.slot =
      options.slotName ??
      defaultSlotName(options.sourceUrl, options.targetUrl, options.config.auditSchema);
    this.publication = options.publicationName ?? this.slot;
    this.reconnectPolicy = { ...DEFAULT_RECONNECT_POLICY, ...options.reconnect };
  }

  run(signal?: AbortSignal): Promise<EngineRunResult> {
    if (signal) {
      if (signal.aborted) this.stopRequested = true;
      signal.addEventListener('abort', () => void this.stop(), { once: true });
    }
    return this.supervise();
  }

  runUntilIdle(): Promise<EngineRunResult> {
    return this.execute(true);
  }

  async stop(): Promise<void> {
    this.stopRequested = true;
    this.repl?.interrupt();
    this.wakeFromBackoff?.();
  }

  status(): EngineStatus {
    return {
      phase: this.state,
      transactions: this.transactions,
      changes: this.changes,
      lastAppliedLsn: formatLsn(this.lastApplied),
      lagBytes: this.lagBytes,
      lagSeconds: this.oldestUnapplied === null ? 0 : secondsSince(this.oldestUnapplied),
      reconnects: this.reconnects,
      ...(this.lastError === undefined ? {} : { lastError: this.lastError }),
    };
  }

  /**
   * Runs {@link execute} again after a lost connection, from the position stored on the
   * target: the target transaction that was open is gone with its connection (or rolled
   * back when the source went), and the slot was told nothing past the last target
   * commit, so every change is applied exactly once. Waits grow from
   * `initialDelayMs` to `maxDelayMs`; one outage longer than `giveUpAfterMs` ends the
   * run with an {@link EngineGaveUpError}.
   */
  private async supervise(): Promise<EngineRunResult> {
    const policy = this.reconnectPolicy;
    let outageStart = 0;
    let attempts = 0;
    for (;;) {
      try {
        return await this.execute(false);
      } catch (error) {
        if (!this.streamedOnce || this.stopRequested || !isConnectionLoss(error)) throw error;
        if (this.streamedSinceLoss) {
          // A new outage: the previous one (if any) ended when streaming resumed.
          this.streamedSinceLoss = false;
          outageStart = Date.now();
          attempts = 0;
        }
        const downForMs = Date.now() - outageStart;
        const side: ConnectionSide | 'unknown' = sideOf(error) ?? this.lost?.side ?? 'unknown';
        const message = error instanceof Error ? error.message : String(error);
        if (downForMs >= policy.giveUpAfterMs) {
          this.logger.log('error', 'giving up reconnecting', {
            side,
            error: message,
            attempts,
            downForMs,
          });
          throw new EngineGaveUpError(downForMs, attempts, error);
        }
        attempts++;
        this.reconnects++;
        this.lastError = message;
        this.state = 'reconnecting';
        const delayMs = reconnectDelay(attempts, policy);
        this.logger.log('warn', 'connection lost; reconnecting', {
          side,
          error: message,
          attempt: attempts,
          delayMs,
          giveUpInMs: policy.giveUpAfterMs - downForMs,
        });
        await this.backoff(delayMs);
        if (this.stopRequested) {
          this.state = 'stopped';
          return this.result(this.initialLoadRows);
        }
      }
    }
  }

  /** Waits `ms`, or less when {@link stop} is called. */
  private backoff(ms: number): Promise<void> {
    return new Promise<void>((resolve) => {
      const timer = setTimeout(done, ms);
      function done() {
        clearTimeout(timer);
        resolve();
      }
      this.wakeFromBackoff = done;
    }).finally(() => (this.wakeFromBackoff = null));
  }

  /** Turns a connection's 'error' event (an idle connection dropped) into a reconnect. */
  private watch(client: pg.Client, side: ConnectionSide): pg.Client {
    client.on('error', (error: Error) => {
      this.lost ??= new ConnectionLostError(side, error);
      this.repl?.abort(this.lost);
    });
    return client;
  }

  private async execute(untilIdle: boolean): Promise<EngineRunResult> {
    const { config, sourceUrl, targetUrl } = this.options;
    this.state = 'starting';
    this.lost = null;
    const source = this.watch(
      await connectClient(sourceUrl, 'audit-trail-engine', 'source'),
      'source',
    );
    const closers: (() => Promise<unknown>)[] = [() => source.end()];
    try {
      const target = this.watch(
        await connectText(targetUrl, 'audit-trail-engine', 'target', ENGINE_TARGET_SETTINGS),
        'target',
      );
      closers.push(() => target.end());
      await checkSource(source, config.tables);
      const tables = await readStagingTables(target, config);
      const positions = new PositionStore(config.auditSchema, this.slot);
      await positions.requireInstalled(target);
      await ensurePublication(source, this.publication, config.tables);
      const stopLsn = untilIdle ? await currentInsertLsn(source) : null;
      let repl = new ReplicationConnection(sourceUrl);
      this.repl = repl;
      await repl.connect();
      const first = repl;
      closers.unshift(() => first.close());
      this.logger.log('info', 'engine starting', {
        slot: this.slot,
        publication: this.publication,
        untilIdle,
      });

      let position = await positions.read(target);
      let initialLoadRows: Record<string, number> = {};
      if (!position?.initialLoadDone) {
        try {
          ({ position, initialLoadRows } = await this.initialLoad(
            source,
            target,
            repl,
            tables,
            positions,
          ));
        } catch (error) {
          if (!(error instanceof InitialLoadStopped)) throw error;
          this.logger.log('info', 'initial load stopped; the next run starts it again');
          return this.result({});
        }
      } else {
        if (!(await slotExists(source, this.slot))) {
          throw new Error(
            `replication slot "${this.slot}" is gone but the target has applied up to ${formatLsn(position.lastEndLsn)}: ` +
              `changes since then are lost; delete the row for this slot from ${config.auditSchema}.cdc_engine_position ` +
              'and clear the staging tables to reload',
          );
        }
        const added = await tablesToLoad(target, tables, positions);
        if (added.length > 0) {
          const loaded = await this.loadAddedTables(
            added,
            source,
            target,
            repl,
            tables,
            positions,
            position,
          );
          if (loaded === null) return this.result({});
          ({ position, initialLoadRows } = loaded);
          repl = new ReplicationConnection(sourceUrl);
          this.repl = repl;
          const again = repl;
          closers.unshift(() => again.close());
          await repl.connect();
        }
      }
      this.lastApplied = position.lastEndLsn;
      this.initialLoadRows = { ...this.initialLoadRows, ...initialLoadRows };
      if (this.stopRequested) return this.result(this.initialLoadRows);
      this.state = 'streaming';
      repl.startReplication(this.slot, this.publication, position.lastEndLsn);
      this.logger.log('info', 'streaming', {
        from: formatLsn(position.lastEndLsn),
        slot: this.slot,
        ...(this.lastError === undefined ? {} : { reconnected: true }),
      });
      this.streamedOnce = true;
      this.streamedSinceLoss = true;
      this.lastError = undefined;
      try {
        await new StreamApplier(
          this,
          repl,
          target,
          tables,
          positions,
          position,
          stopLsn,
          source,
        ).apply();
      } catch (error) {
        if (!(error instanceof SchemaChangeStop)) throw error;
        await repl.close();
        const again = new ReplicationConnection(sourceUrl);
        this.repl = again;
        closers.unshift(() => again.close());
        await this.applyBefore(error, again, source, target, tables, positions);
      }
      return this.result(this.initialLoadRows);
    } finally {
      this.state = 'stopped';
      this.repl = null;
      for (const close of closers) await close().catch(() => undefined);
    }
  }

  /**
   * After a schema change met mid-group: the target group was rolled back, so stream
   * again from the last stored position and apply every source transaction committed
   * before the one that met the change, then stop with the change's error.
   */
  private async applyBefore(
    stop: SchemaChangeStop,
    repl: ReplicationConnection,
    source: pg.Client,
    target: pg.Client,
    tables: readonly StagingTable[],
    positions: PositionStore,
  ): Promise<never> {
    await repl.connect();
    const position = await positions.read(target);
    if (!position) throw new SchemaChangeError(stop.message);
    repl.startReplication(this.slot, this.publication, position.lastEndLsn);
    const halt = { commitLsn: stop.commitLsn, message: stop.message };
    await new StreamApplier(
      this,
      repl,
      target,
      tables,
      positions,
      position,
      null,
      source,
      halt,
    ).apply();
    throw new SchemaChangeError(stop.message);
  }

  private async initialLoad(
    source: pg.Client,
    target: pg.Client,
    repl: ReplicationConnection,
    tables: readonly StagingTable[],
    positions: PositionStore,
  ): Promise<{ position: StoredPosition; initialLoadRows: Record<string, number> }> {
    this.state = 'initial-load';
    // A slot left by a load that never committed is useless: its snapshot is gone.
    await dropSlotIfExists(source, this.slot);
    // Taken before the slot exists, so it precedes the commit of every change the slot
    // will stream: history orders full-load rows before the changes made during the copy.
    const { rows: clock } = await source.query<{ now: string }>(SOURCE_CLOCK_SQL);
    const snapshotTime = clock[0]!.now;
    const slot = await repl.createSlot(this.slot);
    this.logger.log('info', 'replication slot created', {
      slot: this.slot,
      consistentPoint: formatLsn(slot.consistentPoint),
    });
    const loader = await connectText(this.options.sourceUrl, 'audit-trail-initial-load', 'source');
    try {
      const writer = new StagingWriter(target, { batchSize: this.options.batchSize });
      // One target transaction: a crash mid-load leaves nothing behind, and the restart reloads.
      await target.query('BEGIN');
      const initialLoadRows = await copyInitialLoad({
        source: loader,
        snapshotName: slot.snapshotName,
        snapshotTime,
        writer,
        tables,
        logger: this.logger,
        shouldStop: () => this.stopRequested,
      });
      const position: StoredPosition = {
        initialLoadDone: true,
        lastCommitLsn: 0n,
        lastEndLsn: slot.consistentPoint,
        lastSeqPrefix: '',
        lastSeqCounter: 0n,
      };
      await positions.write(target, position);
      await positions.markLoaded(
        target,
        tables.map((table) => table.source),
      );
      await target.query('COMMIT');
      this.logger.log('info', 'initial load committed', { rows: initialLoadRows });
      return { position, initialLoadRows };
    } catch (error) {
      await target.query('ROLLBACK').catch(() => undefined);
      throw error;
    } finally {
      await loader.end().catch(() => undefined);
    }
  }

  /**
   * Loads tables added to the config after the first run, consistently with the stream
   * (as DMS reloads a table added to a task): a temporary slot exports a snapshot at
   * LSN C; the stream is applied up to C without the added tables (their changes before
   * C are in the snapshot); the tables are copied from the snapshot; streaming then
   * continues from C with them. No gap, no overlap. A crash before the copy commits
   * leaves them unloaded, and the next start does it again.
   * @returns the position after the catch-up, or null when asked to stop.
   */
  private async loadAddedTables(
    added: readonly StagingTable[],
    source: pg.Client,
    target: pg.Client,
    repl: ReplicationConnection,
    tables: readonly StagingTable[],
    positions: PositionStore,
    position: StoredPosition,
  ): Promise<{ position: StoredPosition; initialLoadRows: Record<string, number> } | null> {
    this.state = 'initial-load';
    this.logger.log('info', 'loading tables added to the config', {
      tables: added.map((table) => `${table.source.schema}.${table.source.table}`),
    });
    const { rows: clock } = await source.query<{ now: string }>(SOURCE_CLOCK_SQL);
    const snapshotTime = clock[0]!.now;
    const exporter = new ReplicationConnection(this.options.sourceUrl, 'audit-trail-added-tables');
    await exporter.connect();
    try {
      const snapshot = await exporter.createSlot(`${this.slot}_add`, true);
      repl.startReplication(this.slot, this.publication, position.lastEndLsn);
      const halt = { commitLsn: snapshot.consistentPoint, message: null };
      const skip = new Set(added.map((table) => table.qualifiedName));
      try {
        await new StreamApplier(
          this,
          repl,
          target,
          tables,
          positions,
          position,
          null,
          source,
          halt,
          skip,
        ).apply();
      } catch (error) {
        if (error instanceof SchemaChangeStop) throw new SchemaChangeError(error.message);
        throw error;
      }
      await repl.close();
      if (this.stopRequested) return null;
      const loader = await connectText(this.options.sourceUrl, 'audit-trail-initial-load');
      try {
        const writer = new StagingWriter(target, { batchSize: this.options.batchSize });
        await target.query('BEGIN');
        const initialLoadRows = await copyInitialLoad({
          source: loader,
          snapshotName: snapshot.snapshotName,
          snapshotTime,
          writer,
          tables: added,
          logger: this.logger,
          shouldStop: () => this.stopRequested,
        });
        await positions.markLoaded(
          target,
          added.map((table) => table.source),
        );
        await target.query('COMMIT');
        this.logger.log('info', 'added tables loaded', { rows: initialLoadRows });
        return { position: (await positions.read(target)) ?? position, initialLoadRows };
      } catch (error) {
        await target.query('ROLLBACK').catch(() => undefined);
        if (error instanceof InitialLoadStopped) return null;
        throw error;
      } finally {
        await loader.end().catch(() => undefined);
      }
    } finally {
      await exporter.close();
    }
  }

  /** Called by the applier after each target commit. */
  noteApplied(transactions: number, changes: number, lastEnd: Lsn): void {
    this.transactions += transactions;
    this.changes += changes;
    this.lastApplied = lastEnd;
  }

  noteLag(bytes: number, oldestUnapplied: PgTimestamp | null): void {
    this.lagBytes = bytes;
    this.oldestUnapplied = oldestUnapplied;
  }

  get stopping(): boolean {
    return this.stopRequested;
  }

  get log(): EngineLogger {
    return this.logger;
  }

  get lagIntervalMs(): number {
    return this.options.lagIntervalMs ?? 10_000;
  }

  get batchSize(): number | undefined {
    return this.options.batchSize;
  }

  private result(initialLoadRows: Record<string, number>): EngineRunResult {
    return {
      initialLoadRows,
      transactions: this.transactions,
      changes: this.changes,
      lastAppliedLsn: formatLsn(this.lastApplied),
    };
  }
}

/**
 * Applies the pgoutput stream to staging: source transactions in commit order, each
 * inside a target transaction that also stores the position, grouped as DMS groups
 * them; the slot is told only after the target commit.
 */
class StreamApplier {
  private readonly relations = new Map<number, RelationBinding | RelationMismatch | null>();
  private readonly writer: StagingWriter;
  private readonly sequence: ChangeSequence;
  private applied: StoredPosition;
  private pending: StoredPosition | null = null;
  private open: OpenSourceTransaction | null = null;
  private targetOpenSince = 0;
  private groupTransactions = 0;
  private groupChanges = 0;
  private acked: Lsn;
  private reachedStop = false;
  private lagCheck: Promise<void> | null = null;

  constructor(
    private readonly engine: CdcEngine,
    private readonly repl: ReplicationConnection,
    private readonly target: pg.Client,
    private readonly tables: readonly StagingTable[],
    private readonly positions: PositionStore,
    start: StoredPosition,
    private readonly stopLsn: Lsn | null,
    private readonly source: pg.Client,
    /**
     * Apply only source transactions that commit before this, then stop: with the
     * message as a {@link SchemaChangeError}, or quietly when it is null.
     */
    private readonly halt: {
      readonly commitLsn: Lsn;
      readonly message: string | null;
    } | null = null,
    /** Staging tables whose changes are not applied (tables being loaded). */
    private readonly skip: ReadonlySet<string> = new Set(),
  ) {
    this.writer = new StagingWriter(target, {
      batchSize: engine.batchSize,
      onMissingRows: (table, expected, found) =>
        engine.log.log('warn', 'updates or deletes found no staging row for their key', {
          table,
          expected,
          found,
        }),
    });
    this.sequence = new ChangeSequence(start.lastSeqPrefix, start.lastSeqCounter);
    this.applied = start;
    this.acked = start.lastEndLsn;
  }

  async apply(): Promise<void> {
    const statusTimer = setInterval(() => this.repl.sendStatus(this.acked), STATUS_INTERVAL_MS);
    // Until-idle: ask for keepalives so the server reports how far it has decoded.
    const probeTimer =
      this.stopLsn === null && this.halt === null ? null : setInterval(() => this.probe(), 50);
    const lagTimer =
      this.engine.lagIntervalMs > 0
        ? setInterval(() => this.checkLag(), this.engine.lagIntervalMs)
        : null;
    try {
      await this.loop();
    } finally {
      clearInterval(statusTimer);
      if (probeTimer) clearInterval(probeTimer);
      if (lagTimer) clearInterval(lagTimer);
      await this.lagCheck;
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
      if (this.engine.stopping) return;
      if (this.reachedStop && !this.open && !this.pending) return;
      const message = await this.repl.next();
      if (!message) {
        if (this.engine.stopping) return;
        throw new ConnectionLostError(
          'source',
          new Error('the server ended the replication stream'),
        );
      }
      if (message.kind === 'keepalive') {
        if (!this.open && !this.pending && this.repl.pending === 0 && message.walEnd > this.acked) {
          // Everything before walEnd was sent before this keepalive and is applied: let the slot move on.
          this.ack(message.walEnd);
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
        };
        if (this.open.skip)
          this.engine.log.log('debug', 'skipping applied transaction', { xid: message.xid });
        return;
      }
      case 'relation':
        this.relations.set(message.relationId, await this.bind(message));
        return;
      case 'insert':
      case 'update':
      case 'delete':
        return this.change(message, lsn);
      case 'commit':
        return this.commitSource(message.commitLsn, message.endLsn);
      case 'truncate':
        this.engine.log.log(
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
    if (!binding) return;
    if (isMismatch(binding)) return this.stopForSchemaChange(binding, open);
    open.changed = true;
    if (!this.pending) await this.beginTarget();
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
    const before = this.writer.written;
    await this.writer.add(change);
    this.groupChanges++;
    if (this.writer.written !== before) faultPoint('apply-batch');
  }

  /**
   * A change whose table no longer matches staging: nothing of its source transaction
   * may be applied. Source transactions already grouped into the open target
   * transaction are complete, so the engine applies them again up to this one
   * ({@link CdcEngine.applyBefore}); with none, it stops right away.
   */
  private async stopForSchemaChange(
    binding: RelationMismatch,
    open: OpenSourceTransaction,
  ): Promise<never> {
    const completedBefore = this.pending !== null && this.pending !== this.applied;
    if (this.pending) await this.rollback();
    this.engine.log.log('error', 'source schema changed; stopping', { reason: binding.mismatch });
    if (completedBefore) throw new SchemaChangeStop(binding.mismatch, open.commitLsn);
    throw new SchemaChangeError(binding.mismatch);
  }

  private async commitSource(commitLsn: Lsn, endLsn: Lsn): Promise<void> {
    const open = this.open;
    this.open = null;
    if (!open || open.skip || !this.pending) return;
    const state = this.sequence.state();
    this.pending = {
      initialLoadDone: true,
      lastCommitLsn: commitLsn,
      lastEndLsn: endLsn,
      lastSeqPrefix: state.prefix,
      lastSeqCounter: state.counter,
    };
    if (open.changed) this.groupTransactions++;
    if (this.stopLsn !== null && endLsn >= this.stopLsn) this.reachedStop = true;
    if (
      this.groupChanges >= GROUP_MAX_CHANGES ||
      Date.now() - this.targetOpenSince >= GROUP_MAX_MS
    ) {
      await this.commit();
    }
  }

  private async beginTarget(): Promise<void> {
    await this.target.query('BEGIN');
    this.targetOpenSince = Date.now();
    this.groupTransactions = 0;
    this.groupChanges = 0;
    // A placeholder until the first source commit: nothing to store yet.
    this.pending = this.applied;
  }

  private async commit(): Promise<void> {
    const pending = this.pending;
    if (!pending) return;
    await this.writer.flush();
    if (pending !== this.applied) await this.positions.write(this.target, pending);
    faultPoint('apply-batch');
    await this.target.query('COMMIT');
    this.pending = null;
    this.applied = pending;
    this.engine.noteApplied(this.groupTransactions, this.groupChanges, pending.lastEndLsn);
    faultPoint('after-commit');
    this.ack(pending.lastEndLsn);
    faultPoint('after-ack');
  }

  private async rollback(): Promise<void> {
    this.writer.discard();
    await this.target.query('ROLLBACK');
    this.pending = null;
    const state = { prefix: this.applied.lastSeqPrefix, counter: this.applied.lastSeqCounter };
    this.sequence.reset(state.prefix, state.counter);
  }

  private ack(lsn: Lsn): void {
    if (lsn <= this.acked) return;
    this.acked = lsn;
    this.repl.sendStatus(lsn);
  }

  private probe(): void {
    if (!this.open && this.repl.pending === 0) this.repl.sendStatus(this.acked, true);
  }

  private checkLag(): void {
    if (this.lagCheck) return;
    this.lagCheck = (async () => {
      try {
        const current = await currentInsertLsn(this.source);
        const behind =
          current > this.applied.lastEndLsn ? Number(current - this.applied.lastEndLsn) : 0;
        const caughtUp = !this.open && !this.pending && this.repl.pending === 0;
        this.engine.noteLag(behind, caughtUp ? null : (this.open?.commitTime ?? null));
        const status = this.engine.status();
        this.engine.log.log('info', 'lag', {
          lagBytes: caughtUp ? 0 : behind,
          lagSeconds: status.lagSeconds,
          appliedLsn: formatLsn(this.applied.lastEndLsn),
          transactions: status.transactions,
          changes: status.changes,
        });
      } catch (error) {
        this.engine.log.log('warn', 'lag check failed', { error: (error as Error).message });
      } finally {
        this.lagCheck = null;
      }
    })();
  }

  private async bind(
    relation: RelationMessage,
  ): Promise<RelationBinding | RelationMismatch | null> {
    const table = this.tables.find(
      (t) => t.source.schema === relation.schema && t.source.table === relation.table,
    );
    if (table && this.skip.has(table.qualifiedName)) return null;
    if (!table) {
      this.engine.log.log('warn', 'ignoring changes of a table that is not configured', {
        table: `${relation.schema}.${relation.table}`,
      });
      return null;
    }
    return bindRelation(this.source, relation, table);
  }
}

/**
 * Configured tables this slot has not loaded yet (added to the config after the first
 * run). Installs from before loads were recorded have no record at all: there, a table
 * whose staging table has rows was loaded, and is recorded as such.
 */
async function tablesToLoad(
  target: pg.Client,
  tables: readonly StagingTable[],
  positions: PositionStore,
): Promise<StagingTable[]> {
  const key = (table: StagingTable) => `${table.source.schema}\u0000${table.source.table}`;
  const loaded = await positions.loadedTables(target);
  if (loaded.size === 0) {
    const legacy: StagingTable[] = [];
    for (const table of tables) {
      const { rowCount } = await target.query(`SELECT 1 FROM ${table.qualifiedName} LIMIT 1`);
      if (rowCount) legacy.push(table);
    }
    await positions.markLoaded(
      target,
      legacy.map((table) => table.source),
    );
    legacy.forEach((table) => loaded.add(key(table)));
  }
  return tables.filter((table) => !loaded.has(key(table)));
}

async function currentInsertLsn(source: pg.ClientBase): Promise<Lsn> {
  const { rows } = await source.query<{ lsn: string }>(
    'SELECT pg_current_wal_insert_lsn()::text AS lsn',
  );
  return parseLsn(rows[0]!.lsn);
}

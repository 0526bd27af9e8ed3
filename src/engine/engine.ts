import { createHash } from 'node:crypto';
import type pg from 'pg';
import type { AuditTrailConfig } from '../config';
import { requireChangeHistory } from '../config/change-history';
import { connectClient } from '../postgres/connect';
import { InitialLoadStopped } from './initial-load';
import { createJsonLogger, type EngineLogger } from './logger';
import { noProgress, type ProgressReporter } from '../support/progress';
import { formatLsn, type Lsn } from './lsn';
import { secondsSince, type PgTimestamp } from './pg-time';
import { PositionStore, type StoredPosition } from './position-store';
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
import { SchemaChangeError, SchemaChangeStop } from './relation-binding';
import { ReplicationConnection } from './replication-connection';
import { SchemaChangePositions } from './schema-change-positions';
import { claimSlot, DEFAULT_SLOT_WAIT_MS, engineLockKey, SlotInUseError } from './slot-holder';
import { checkSource, ensurePublication, slotConfirmedFlush, SlotGoneError } from './source-setup';
import { refusePositionAheadOfSource, refuseTargetBehindSlot } from './target-behind-slot';
import { currentInsertLsn } from './source-position';
import { readStagingTables } from './staging-tables';
import {
  PartitionAttached,
  StreamApplier,
  type ApplierHost,
  type StreamApplierOptions,
} from './stream-applier';
import { listLeaves, relationKey } from './partition-loading';
import {
  attachedLeaves,
  loadAddedTables,
  loadFromNewSlot,
  tablesToLoad,
  type LoadContext,
  type LoadResult,
  type LoadTargets,
} from './table-loading';
import { connectText, ENGINE_TARGET_CONNECTION, ENGINE_TARGET_SETTINGS } from './text-client';
import { diagnoseEngineLogin, requireEngineLogin } from '../trust/engine-login';
import { kitRoles } from '../trust/roles';

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
  /**
   * Where the initial load (per table) and large source transactions report how far
   * they got; the CLI draws bars on a terminal. @default {@link noProgress}
   */
  readonly progress?: ProgressReporter;
  /** How often lag is logged while running, in ms; 0 disables. @default 10000 */
  readonly lagIntervalMs?: number;
  /**
   * How often, in ms, a streaming engine checks that its publication still publishes
   * every change. A narrowing is found at the next change the source still sends; one
   * that filters every change sends nothing, and is found by this check (the engine
   * stops with `PUBLICATION_NARROWED`). Not disabled by any value. @default 10000
   */
  readonly publicationCheckMs?: number;
  /**
   * How {@link Engine.run} retries after losing the source or target connection once
   * it has streamed: capped exponential backoff with jitter, each attempt logged, and
   * an {@link EngineGaveUpError} when one outage lasts longer than `giveUpAfterMs`.
   * Failures before the first stream, and every failure of `runUntilIdle`, are not
   * retried. @default {@link DEFAULT_RECONNECT_POLICY} (1 s doubling to 30 s, give up after 10 min)
   */
  readonly reconnect?: Partial<ReconnectPolicy>;
  /**
   * How long a start waits, before any load or apply step, for its replication slot to
   * be released by another process (a killed engine's walsender the server has not
   * reaped yet), logging that it waits; a slot still held after that ends the start
   * with a {@link SlotInUseError} naming the holder. @default {@link DEFAULT_SLOT_WAIT_MS}
   */
  readonly slotWaitMs?: number;
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

/**
 * The engine's lifecycle: connect, load (first run, or tables added since), stream,
 * and reconnect after a lost connection. Applying the stream is {@link StreamApplier}'s
 * job, loading is in `table-loading.ts`; both see the engine only as an {@link ApplierHost}.
 */
class CdcEngine implements Engine, ApplierHost {
  readonly logger: EngineLogger;
  readonly progress: ProgressReporter;
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
    this.progress = options.progress ?? noProgress;
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

  async runUntilIdle(): Promise<EngineRunResult> {
    for (;;) {
      try {
        return await this.execute(true);
      } catch (error) {
        if (!(error instanceof PartitionAttached) || this.stopRequested) throw error;
        this.logger.log('info', 'partition attached; loading it', { partition: error.partition });
      }
    }
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
        if (error instanceof PartitionAttached && !this.stopRequested) {
          // Not an outage: start again at once, and load the partition.
          this.logger.log('info', 'partition attached; loading it', { partition: error.partition });
          continue;
        }
        // After streaming, a slot still held is the lost connection's walsender: retried.
        const transient = isConnectionLoss(error) || error instanceof SlotInUseError;
        if (!this.streamedOnce || this.stopRequested || !transient) throw error;
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
    let connectedTarget: pg.Client | null = null;
    try {
      const target = this.watch(
        await connectText(
          targetUrl,
          'audit-trail-engine',
          'target',
          ENGINE_TARGET_SETTINGS,
          ENGINE_TARGET_CONNECTION,
        ),
        'target',
      );
      connectedTarget = target;
      closers.push(() => target.end());
      // Before any setup or load step: a second engine on this slot must change nothing.
      await claimSlot(
        { source, target },
        { slot: this.slot, key: engineLockKey(config.auditSchema, this.slot) },
        {
          waitMs: this.options.slotWaitMs ?? DEFAULT_SLOT_WAIT_MS,
          onWait: (pid, side) =>
            this.logger.log('warn', 'replication slot in use; waiting', {
              slot: this.slot,
              pid,
              side,
            }),
          stopped: () => this.stopRequested,
        },
      );
      if (this.stopRequested) return this.result(this.initialLoadRows);
      await checkSource(source, config.tables);
      // Before the target's first kit table: a login without the engine role (DMS's, or
      // one from before migration 0027) is refused by name, not by a permission error.
      await requireEngineLogin(target, kitRoles(config));
      const tables = await readStagingTables(target, config);
      const positions = new PositionStore(config.auditSchema, this.slot);
      await positions.requireInstalled(target);
      const schemaChanges = await SchemaChangePositions.read(
        target,
        config.auditSchema,
        this.slot,
        tables,
      );
      await ensurePublication(source, this.publication, config.tables);
      const stopLsn = untilIdle ? await currentInsertLsn(source) : null;
      const repl = new ReplicationConnection(sourceUrl);
      this.repl = repl;
      await repl.connect();
      closers.unshift(() => repl.close());
      this.logger.log('info', 'engine starting', {
        slot: this.slot,
        publication: this.publication,
        untilIdle,
      });

      const track = (opened: ReplicationConnection) => closers.unshift(() => opened.close());
      const knownLeaves = new Map(
        (await listLeaves(source, tables)).map((leaf) => [
          relationKey(leaf.schema, leaf.name),
          leaf.attachment,
        ]),
      );
      const on: LoadTargets = {
        ...{ source, target, repl, tables, positions },
        ...{ schemaChanges, knownLeaves },
      };
      const loaded = await this.load(on, track);
      if (loaded === null) return this.result({});
      const { position, initialLoadRows } = loaded;
      this.lastApplied = position.lastEndLsn;
      this.initialLoadRows = { ...this.initialLoadRows, ...initialLoadRows };
      if (this.stopRequested) return this.result(this.initialLoadRows);
      const applier = { ...on, repl: loaded.repl, start: position, stopLsn };
      await this.stream(applier, track);
      return this.result(this.initialLoadRows);
    } catch (error) {
      throw connectedTarget ? await this.diagnosed(error, connectedTarget) : error;
    } finally {
      this.state = 'stopped';
      this.repl = null;
      for (const close of closers) await close().catch(() => undefined);
    }
  }

  /**
   * A permission error on the target after the start check: the login lost a kit role
   * while the engine ran. The failed target transaction was rolled back (ended here too,
   * should a path have left it open, so the check can run), so the error that names the
   * role and the GRANT ({@link diagnoseEngineLogin}) says nothing of it was applied.
   */
  private async diagnosed(error: unknown, target: pg.Client): Promise<unknown> {
    if ((error as { code?: unknown }).code !== '42501') return error;
    await target.query('ROLLBACK').catch(() => undefined);
    const { config } = this.options;
    return diagnoseEngineLogin(target, kitRoles(config), config, error);
  }

  /**
   * Loads what needs loading before streaming: every table on the first run, tables
   * added to the config since on later runs.
   * @returns where to stream from, on which replication connection (a new one when the
   *   added tables' catch-up used the first; `track` learns of it), or null when asked
   *   to stop mid-load.
   */
  private async load(
    on: LoadTargets,
    track: (opened: ReplicationConnection) => void,
  ): Promise<(LoadResult & { readonly repl: ReplicationConnection }) | null> {
    const position = await on.positions.read(on.target);
    if (!position?.initialLoadDone) {
      this.state = 'initial-load';
      try {
        return { ...(await loadFromNewSlot(this.loadContext, on)), repl: on.repl };
      } catch (error) {
        if (!(error instanceof InitialLoadStopped)) throw error;
        this.logger.log('info', 'initial load stopped; the next run starts it again');
        return null;
      }
    }
    if (!(await this.requireSlot(on, position))) return null;
    const added = await tablesToLoad(on.target, on.tables, on.positions);
    const leaves = await attachedLeaves(on, added, this.logger);
    if (added.length === 0 && leaves.length === 0)
      return { position, initialLoadRows: {}, repl: on.repl };
    this.state = 'initial-load';
    const loaded = await loadAddedTables(this.loadContext, on, added, position, leaves);
    if (loaded === null) return null;
    const repl = new ReplicationConnection(this.options.sourceUrl);
    this.repl = repl;
    track(repl);
    await repl.connect();
    return { ...loaded, repl };
  }

  /**
   * A slot that vanished after changes were applied, one confirmed past what the
   * target records (a target restored from a backup), or a stored position past the
   * source's WAL (written by someone else) means changes were, or would be, lost: stop
   * and say so.
   * @returns false when asked to stop while waiting for a standby source to replay its own
   *   WAL (refusePositionAheadOfSource), true once checked
   */
  private async requireSlot(on: LoadTargets, position: StoredPosition): Promise<boolean> {
    const appliedUpTo = position.lastEndLsn;
    const confirmed = await slotConfirmedFlush(on.source, this.slot);
    if (confirmed === undefined)
      throw new SlotGoneError(this.slot, formatLsn(appliedUpTo), this.options.config.auditSchema);
    // One read for both checks.
    const acknowledged = await on.positions.acknowledged(on.target);
    const checked = await refusePositionAheadOfSource(on, this.slot, position, acknowledged, {
      logger: this.logger,
      stopped: () => this.stopRequested,
      maxWaitMs: this.reconnectPolicy.giveUpAfterMs,
    });
    if (!checked) return false;
    await refuseTargetBehindSlot(
      on,
      { name: this.slot, confirmed, appliedUpTo, acknowledged },
      this.logger,
    );
    return true;
  }

  /**
   * Streams from the stored position until stopped (or idle). A schema change met in
   * the middle of a grouped target transaction rolls the group back: the source
   * transactions completed before it are applied again on a new connection
   * ({@link applyBefore}); `track` learns of it so the caller closes it.
   */
  private async stream(
    on: LoadTargets & { readonly start: StoredPosition; readonly stopLsn: Lsn | null },
    track: (opened: ReplicationConnection) => void,
  ): Promise<void> {
    this.state = 'streaming';
    on.repl.startReplication(this.slot, this.publication, on.start.lastEndLsn);
    this.logger.log('info', 'streaming', {
      from: formatLsn(on.start.lastEndLsn),
      slot: this.slot,
      ...(this.lastError === undefined ? {} : { reconnected: true }),
    });
    this.streamedOnce = true;
    this.streamedSinceLoss = true;
    this.lastError = undefined;
    try {
      await new StreamApplier({ ...this.applierOptions, ...on }).apply();
    } catch (error) {
      if (!(error instanceof SchemaChangeStop)) throw error;
      await on.repl.close();
      const again = new ReplicationConnection(this.options.sourceUrl);
      this.repl = again;
      track(again);
      await this.applyBefore(error, { ...on, repl: again });
    }
  }

  /**
   * After a schema change met mid-group: the target group was rolled back, so stream
   * again from the last stored position and apply every source transaction committed
   * before the one that met the change, then stop with the change's error.
   */
  private async applyBefore(stop: SchemaChangeStop, on: LoadTargets): Promise<never> {
    await on.repl.connect();
    const position = await on.positions.read(on.target);
    if (!position) throw new SchemaChangeError(stop.message);
    on.repl.startReplication(this.slot, this.publication, position.lastEndLsn);
    await new StreamApplier({
      ...this.applierOptions,
      ...on,
      start: position,
      halt: { commitLsn: stop.commitLsn, message: stop.message },
    }).apply();
    throw new SchemaChangeError(stop.message);
  }

  /** What loading needs from this engine. */
  private get loadContext(): LoadContext {
    return {
      host: this,
      sourceUrl: this.options.sourceUrl,
      slot: this.slot,
      publication: this.publication,
      batchSize: this.options.batchSize,
      lagIntervalMs: this.lagIntervalMs,
    };
  }

  /** The applier options every apply of this engine shares. */
  private get applierOptions(): Pick<
    StreamApplierOptions,
    'host' | 'publication' | 'publicationCheckMs' | 'batchSize' | 'lagIntervalMs'
  > {
    return {
      host: this,
      publication: this.publication,
      ...(this.options.publicationCheckMs === undefined
        ? {}
        : { publicationCheckMs: this.options.publicationCheckMs }),
      batchSize: this.options.batchSize,
      lagIntervalMs: this.lagIntervalMs,
    };
  }

  private get lagIntervalMs(): number {
    return this.options.lagIntervalMs ?? 10_000;
  }

  /** {@link ApplierHost}: called after each target commit. */
  applied(transactions: number, changes: number, lastEnd: Lsn): void {
    this.transactions += transactions;
    this.changes += changes;
    this.lastApplied = lastEnd;
  }

  /** {@link ApplierHost}: a lag measurement, shown by {@link status}. */
  lagMeasured(bytes: number, oldestUnapplied: PgTimestamp | null): void {
    this.lagBytes = bytes;
    this.oldestUnapplied = oldestUnapplied;
  }

  /** {@link ApplierHost}: the totals the lag log line shows. */
  totals(): { lagSeconds: number; transactions: number; changes: number } {
    const { lagSeconds, transactions, changes } = this.status();
    return { lagSeconds, transactions, changes };
  }

  /** {@link ApplierHost}: whether a stop was asked for. */
  get stopping(): boolean {
    return this.stopRequested;
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

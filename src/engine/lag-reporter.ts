import type pg from 'pg';
import type { EngineLogger } from './logger';
import { formatLsn, type Lsn } from './lsn';
import { PeriodicTask } from './periodic-task';
import type { PgTimestamp } from './pg-time';
import { currentInsertLsn } from './source-position';

/** What the applier knows about its own progress when lag is measured. */
export interface ApplyState {
  /** End LSN of the last source transaction committed on the target. */
  readonly appliedLsn: Lsn;
  /** True when nothing is open, pending or buffered: the engine has caught up. */
  readonly caughtUp: boolean;
  /** Commit time of the source transaction being applied, if any. */
  readonly openCommitTime: PgTimestamp | null;
}

/** Where a lag measurement goes, and the running totals logged beside it. */
export interface LagSink {
  /** Records the measurement (the engine's {@link EngineStatus} shows it). */
  lagMeasured(bytes: number, oldestUnapplied: PgTimestamp | null): void;
  /** Totals for the log line, read after {@link lagMeasured}. */
  totals(): {
    readonly lagSeconds: number;
    readonly transactions: number;
    readonly changes: number;
  };
}

/**
 * Measures and logs how far the engine is behind the source, on a timer. A check
 * still running when the next one is due is not doubled, and a failed check is
 * logged, never thrown: lag reporting must not stop the apply.
 */
export class LagReporter {
  private readonly task = new PeriodicTask(() => this.measure());

  constructor(
    private readonly source: pg.ClientBase,
    private readonly logger: EngineLogger,
    private readonly sink: LagSink,
    private readonly readState: () => ApplyState,
  ) {}

  /** Checks every `intervalMs` until {@link stop}; 0 disables. */
  start(intervalMs: number): void {
    if (intervalMs > 0) this.task.start(intervalMs);
  }

  /** Stops the timer and waits for a check in flight. */
  stop(): Promise<void> {
    return this.task.stop();
  }

  private async measure(): Promise<void> {
    try {
      const current = await currentInsertLsn(this.source);
      const state = this.readState();
      const behind = current > state.appliedLsn ? Number(current - state.appliedLsn) : 0;
      this.sink.lagMeasured(behind, state.caughtUp ? null : state.openCommitTime);
      const totals = this.sink.totals();
      this.logger.log('info', 'lag', {
        lagBytes: state.caughtUp ? 0 : behind,
        lagSeconds: totals.lagSeconds,
        appliedLsn: formatLsn(state.appliedLsn),
        transactions: totals.transactions,
        changes: totals.changes,
      });
    } catch (error) {
      this.logger.log('warn', 'lag check failed', { error: (error as Error).message });
    }
  }
}

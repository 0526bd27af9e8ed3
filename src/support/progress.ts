import type { EngineLogger } from '../engine/logger';

/**
 * Where long work (an initial load, a verification, a large transaction being applied)
 * reports how far it got. The library only counts; the CLI draws the counts as
 * progress bars on a terminal ({@link noProgress} everywhere else), so the library's
 * output and its JSON log lines are the same with or without one.
 *
 * @example
 * ```ts
 * const task = progress.start('verify public.items', total);
 * for (const row of rows) task.advance(1);
 * task.done();
 * ```
 */
export interface ProgressReporter {
  /**
   * Starts a unit of work of `total` items (undefined when the total is not known in
   * advance: a rate is shown, no ETA), counted in `unit` (default `'rows'`; an engine
   * catching up on the stream counts WAL `'bytes'`).
   */
  start(label: string, total?: number, unit?: ProgressUnit): ProgressTask;
  /**
   * Whether `start` should be given a total. Work whose total costs a query (verify
   * counts the rows of each table) skips that query when this is false.
   *
   * @default true
   */
  readonly countsTotals?: boolean;
}

/** What a task counts. */
export type ProgressUnit = 'rows' | 'bytes';

/** One unit of long work, as returned by {@link ProgressReporter.start}. */
export interface ProgressTask {
  /** `count` more items are done. */
  advance(count: number): void;
  /** The work ended (finished, failed or abandoned): nothing more is reported. */
  done(): void;
}

const NO_TASK: ProgressTask = { advance: () => undefined, done: () => undefined };

/** A reporter that shows nothing: the default of every option that takes one. */
export const noProgress: ProgressReporter = { start: () => NO_TASK };

/** {@link loggedProgress}'s least time between two records of one task, in ms. */
export const DEFAULT_PROGRESS_INTERVAL_MS = 10_000;

/** Options for {@link loggedProgress}. */
export interface LoggedProgressOptions {
  /** Least time between two records of one task, in ms. @default {@link DEFAULT_PROGRESS_INTERVAL_MS} */
  readonly intervalMs?: number;
}

/**
 * Progress as log records, for a pipe, a file or a service's log: an `info` record
 * `progress` per task at most every `intervalMs` while it works, with what is done and
 * the rate (`{"task":"initial load public.items","rows":420000,"total":1000000,"rowsPerSecond":41987}`;
 * a task counting bytes says `bytes` and `bytesPerSecond`). A task done sooner logs
 * nothing. No totals are asked for (`countsTotals: false`), so verify runs no extra
 * count for them; a total the work knows anyway is logged.
 *
 * @example
 * ```ts
 * const logger = createJsonLogger();
 * const engine = createEngine({ config, sourceUrl, targetUrl, logger, progress: loggedProgress(logger) });
 * ```
 */
export function loggedProgress(
  logger: EngineLogger,
  options: LoggedProgressOptions = {},
): ProgressReporter {
  const intervalMs = options.intervalMs ?? DEFAULT_PROGRESS_INTERVAL_MS;
  return {
    countsTotals: false,
    start(label, total, unit = 'rows') {
      const started = Date.now();
      let logged = started;
      let done = 0;
      let finished = false;
      return {
        advance: (count) => {
          if (finished) return;
          done += count;
          const now = Date.now();
          if (now - logged < intervalMs) return;
          logged = now;
          const seconds = (now - started) / 1000;
          logger.log('info', 'progress', {
            task: label,
            [unit]: done,
            ...(total !== undefined && { total }),
            [`${unit}PerSecond`]: seconds > 0 ? Math.round(done / seconds) : null,
          });
        },
        done: () => {
          finished = true;
        },
      };
    },
  };
}

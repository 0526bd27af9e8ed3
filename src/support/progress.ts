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
   * advance: a rate is shown, no ETA).
   */
  start(label: string, total?: number): ProgressTask;
  /**
   * Whether `start` should be given a total. Work whose total costs a query (verify
   * counts the rows of each table) skips that query when this is false.
   *
   * @default true
   */
  readonly countsTotals?: boolean;
}

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

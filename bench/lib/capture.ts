/**
 * What the benchmarks need from the kit's change capture, so the cases do not depend
 * on how the engine is started: catch up on everything committed, or run live.
 */
export interface CaptureDriver {
  /** Applies everything committed on the source so far, then stops; reports how long applying took. */
  catchUp(): Promise<CatchUpResult>;
  /** Starts applying live; `stop()` drains what is committed, stops, and reports. */
  startLive(): Promise<LiveCapture>;
  /** Releases everything the driver holds (the slot stays, as in production). */
  close(): Promise<void>;
}

/** Outcome of one catch-up. */
export interface CatchUpResult {
  /** Milliseconds spent applying (engine start-up excluded where the engine can say). */
  readonly applyMs: number;
  /** Row changes applied, as the engine counts them. */
  readonly changes?: number;
  /** Peak resident set of the engine process, in kB, when measured. */
  readonly peakRssKb?: number;
}

/** A running live capture. */
export interface LiveCapture {
  /** Waits until everything committed is applied, then stops the engine. */
  stop(): Promise<{ drainMs: number }>;
}

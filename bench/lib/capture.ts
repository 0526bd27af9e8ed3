/**
 * What the benchmarks need from the kit's change capture, so the cases do not depend
 * on how the engine is started: catch up on everything committed, or run live.
 */
export interface CaptureDriver {
  /** Applies everything committed on the source so far, then stops; reports how long applying took. */
  catchUp(): Promise<CatchUpResult>;
  /**
   * Moves the engine's slot to the source's current position without applying: the
   * changes of the cases that are not the kit's (A, C, D) are not its to audit, and
   * no case may inherit a backlog. Untimed.
   */
  discardBacklog(): Promise<void>;
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
  /**
   * Stops the engine and reports how far behind the source it was (bytes of WAL
   * between the source's position and the slot's confirmed position).
   */
  stop(): Promise<{ behindBytes: number }>;
}

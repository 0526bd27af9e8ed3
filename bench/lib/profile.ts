/** Sizes for the quick (default) and full profiles. */
export interface Profile {
  readonly name: 'quick' | 'full';
  /** Source overhead: interleaved rounds of A/B/C/D/E. */
  readonly sourceRounds: number;
  /** Source overhead: seconds of pgbench per case per round. */
  readonly sourceSeconds: number;
  /** Source overhead: rounds whose case E also times the catch-up (later rounds discard the backlog). */
  readonly catchUpRounds: number;
  /**
   * Source context: rounds and seconds per variant. Short runs, many rounds: every
   * order of the three variants comes up equally often (rounds a multiple of 6).
   */
  readonly contextRounds: number;
  readonly contextSeconds: number;
  /** Source overhead: rows in the accounts table. */
  readonly sourceAccounts: number;
  /** Engine throughput: changes generated per transaction size per round. */
  readonly throughputChanges: number;
  readonly throughputRounds: number;
  /** Engine lag: seconds at a steady 2,000 changes/s. */
  readonly lagSeconds: number;
  /** Engine memory: rows in the one big transaction. */
  readonly bigTransactionRows: number;
  /** Target trigger cost: staging statements per round, and rounds. */
  readonly triggerChanges: number;
  readonly triggerRounds: number;
  /** History queries: audit rows generated, and queries timed per kind. */
  readonly historyRows: number;
  readonly historyQueries: number;
  /** verify --integrity memory: audit rows in the hash chain it checks. */
  readonly verifyRows: number;
  /** Parser: lines parsed per round, rounds. */
  readonly parserLines: number;
  readonly parserRounds: number;
}

export const QUICK: Profile = {
  name: 'quick',
  sourceRounds: 5,
  sourceSeconds: 6,
  catchUpRounds: 2,
  contextRounds: 6,
  contextSeconds: 4,
  sourceAccounts: 50_000,
  throughputChanges: 10_000,
  throughputRounds: 2,
  lagSeconds: 15,
  bigTransactionRows: 100_000,
  triggerChanges: 10_000,
  triggerRounds: 3,
  historyRows: 1_000_000,
  historyQueries: 300,
  verifyRows: 1_000_000,
  parserLines: 100_000,
  parserRounds: 5,
};

export const FULL: Profile = {
  name: 'full',
  sourceRounds: 5,
  sourceSeconds: 20,
  catchUpRounds: 5,
  contextRounds: 18,
  contextSeconds: 6,
  sourceAccounts: 100_000,
  throughputChanges: 100_000,
  throughputRounds: 3,
  lagSeconds: 60,
  bigTransactionRows: 1_000_000,
  triggerChanges: 30_000,
  triggerRounds: 5,
  historyRows: 10_000_000,
  historyQueries: 1000,
  verifyRows: 10_000_000,
  parserLines: 500_000,
  parserRounds: 5,
};

/** Everything a case gets from the runner. */
export interface BenchContext {
  readonly profile: Profile;
  log(message: string): void;
}

/** Tiny sizes for the harness's own smoke test (`--smoke`): checks plumbing, not speed. */
export const SMOKE: Profile = {
  name: 'quick',
  sourceRounds: 1,
  sourceSeconds: 2,
  catchUpRounds: 1,
  contextRounds: 1,
  contextSeconds: 2,
  sourceAccounts: 1_000,
  throughputChanges: 500,
  throughputRounds: 1,
  lagSeconds: 2,
  bigTransactionRows: 2_000,
  triggerChanges: 300,
  triggerRounds: 1,
  historyRows: 5_000,
  historyQueries: 20,
  verifyRows: 30_000,
  parserLines: 2_000,
  parserRounds: 1,
};

/** How a long-running engine retries after losing a database connection. */
export interface ReconnectPolicy {
  /** Delay before the first retry, in ms; each further retry doubles it. @default 1000 */
  readonly initialDelayMs: number;
  /** Longest delay between two retries, in ms. @default 30000 */
  readonly maxDelayMs: number;
  /**
   * How long the engine keeps retrying one outage before it stops with an
   * {@link EngineGaveUpError}, in ms. @default 600000 (10 minutes)
   */
  readonly giveUpAfterMs: number;
}

/** The defaults of {@link ReconnectPolicy}. */
export const DEFAULT_RECONNECT_POLICY: ReconnectPolicy = {
  initialDelayMs: 1_000,
  maxDelayMs: 30_000,
  giveUpAfterMs: 600_000,
};

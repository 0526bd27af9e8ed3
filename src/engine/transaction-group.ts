/** Commit a grouped target transaction after this many changes… */
export const GROUP_MAX_CHANGES = 20_000;
/** …or after it has been open this long. */
export const GROUP_MAX_MS = 500;

/**
 * How many source transactions and changes the open target transaction holds. As DMS
 * does (batch apply), the engine applies several small source transactions in one
 * target transaction, and commits it once it is big or old enough: one commit per
 * group instead of per source transaction, with the position stored in the same commit.
 */
export class TransactionGroup {
  private openedAt = 0;
  /** Source transactions with at least one applied change. */
  transactions = 0;
  /** Row changes applied. */
  changes = 0;

  /** A target transaction has just begun. */
  begin(now: number = Date.now()): void {
    this.openedAt = now;
    this.transactions = 0;
    this.changes = 0;
  }

  /** Whether the group should be committed after the source transaction that just ended. */
  isFull(now: number = Date.now()): boolean {
    return this.changes >= GROUP_MAX_CHANGES || now - this.openedAt >= GROUP_MAX_MS;
  }
}

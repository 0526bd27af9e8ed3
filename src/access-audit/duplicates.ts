import type { AuditEvent, Verdict } from './types';

/**
 * pgAudit can log one statement twice: an OBJECT record (the relation is granted to
 * `pgaudit.role`) and a SESSION record (the role's `pgaudit.log`), with the same
 * statement and sub-statement ids. They are written back to back by the same backend,
 * so remembering the last few thousand alert keys is enough to alert once.
 */
export class DuplicateAlertFilter {
  private readonly seen = new Set<string>();

  /** @param capacity keys remembered before the oldest are forgotten. @default 4096 */
  constructor(private readonly capacity = 4096) {}

  /**
   * Returns `verdict`, or an `excluded: duplicate` verdict when the same statement part
   * already alerted. `scope` separates sources whose pids may collide (log streams).
   */
  apply(event: AuditEvent, verdict: Verdict, scope = ''): Verdict {
    if (verdict.kind !== 'alert') return verdict;
    const key = `${scope}\u0000${event.pid ?? ''}\u0000${event.statementId}\u0000${event.substatementId}\u0000${event.command}\u0000${event.objectName}`;
    if (this.seen.has(key)) return { kind: 'excluded', reason: 'duplicate' };
    this.seen.add(key);
    if (this.seen.size > this.capacity) {
      const oldest = this.seen.values().next().value;
      if (oldest !== undefined) this.seen.delete(oldest);
    }
    return verdict;
  }
}

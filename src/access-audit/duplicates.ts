import { conflictAlert } from './integrity';
import type { AuditEvent, Verdict } from './types';

/** What pgAudit writes as the statement of later records with `pgaudit.log_statement_once`. */
const PREVIOUSLY_LOGGED = '<previously logged>';

interface StatementSeen {
  statement: string;
  /** `TYPE\0COMMAND\0OBJECT` of each record seen for this statement part. */
  records: string[];
}

/**
 * Follows the records of each statement part (session, statement id, sub-statement id).
 *
 * pgAudit can log one statement twice: an OBJECT record (the relation is granted to
 * `pgaudit.role`) and a SESSION record (the role's `pgaudit.log`), with the same ids,
 * command, object and statement text. Only such twins are merged, so the statement
 * alerts once. Statement ids are sequential per session and therefore predictable:
 * a second record with the same ids but another statement text cannot both be
 * pgAudit's, so it raises `statement-id-conflict` instead of being dropped.
 *
 * A session is its pid together with its remote host, port, user and database, so a
 * reused pid is a new session. The last `capacity` statement parts are remembered.
 */
export class StatementTracker {
  private readonly seen = new Map<string, StatementSeen>();

  /** @param capacity statement parts remembered before the oldest are forgotten. @default 4096 */
  constructor(private readonly capacity = 4096) {}

  /**
   * Returns `verdict`, `excluded: duplicate` for the twin of an alerted record, or a
   * `statement-id-conflict` alert. `scope` separates sources whose pids may collide
   * (log streams, instances).
   */
  apply(event: AuditEvent, verdict: Verdict, scope = ''): Verdict {
    const key = `${scope}\u0000${event.pid ?? ''}\u0000${event.remoteHost ?? ''}\u0000${event.remotePort ?? ''}\u0000${event.user ?? ''}\u0000${event.database ?? ''}\u0000${event.statementId}\u0000${event.substatementId}`;
    const record = `${event.auditType}\u0000${event.command}\u0000${event.objectName}`;
    const seen = this.seen.get(key);
    if (seen === undefined) {
      this.remember(key, { statement: event.statement, records: [record] });
      return verdict;
    }
    if (!sameText(seen.statement, event.statement))
      return { kind: 'alert', alert: conflictAlert(event, seen.statement) };
    if (seen.statement === PREVIOUSLY_LOGGED) seen.statement = event.statement;
    const twinType = event.auditType === 'OBJECT' ? 'SESSION' : 'OBJECT';
    const twin = seen.records.includes(
      `${twinType}\u0000${event.command}\u0000${event.objectName}`,
    );
    seen.records.push(record);
    return twin && verdict.kind === 'alert' ? { kind: 'excluded', reason: 'duplicate' } : verdict;
  }

  private remember(key: string, value: StatementSeen): void {
    this.seen.set(key, value);
    if (this.seen.size > this.capacity) {
      const oldest = this.seen.keys().next().value;
      if (oldest !== undefined) this.seen.delete(oldest);
    }
  }
}

function sameText(first: string, second: string): boolean {
  return first === second || first === PREVIOUSLY_LOGGED || second === PREVIOUSLY_LOGGED;
}

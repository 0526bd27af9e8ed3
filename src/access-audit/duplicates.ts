import { conflictAlert } from './integrity';
import type { AuditEvent, Verdict } from './types';

/** What pgAudit writes as the statement of later records with `pgaudit.log_statement_once`. */
const PREVIOUSLY_LOGGED = '<previously logged>';

/** Statement parts remembered per session: twins and forged ids sit close together. */
const PARTS_PER_SESSION = 16;

interface StatementSeen {
  statementId: number;
  substatementId: number;
  statement: string;
  /** The first record's fields: most parts have one record, so no key is built for it. */
  auditType: string;
  auditClass: string;
  command: string;
  objectName: string;
  /** `TYPE\0CLASS\0COMMAND\0OBJECT` of each later record seen for this statement part. */
  later: string[] | undefined;
}

interface SessionSeen {
  remoteHost: string | undefined;
  remotePort: number | undefined;
  user: string | undefined;
  database: string | undefined;
  sessionId: string | undefined;
  /** Most recent last. */
  parts: StatementSeen[];
}

/**
 * Follows the records of each statement part (session, statement id, sub-statement id).
 *
 * pgAudit can log one statement twice: an OBJECT record (the relation is granted to
 * `pgaudit.role`) and a SESSION record (the role's `pgaudit.log`), with the same ids,
 * class, command, object and statement text. With `pgaudit.log_relation` it also
 * writes one record per reference to a relation, so a statement naming a table twice
 * (a self-join) logs the same record twice. Only such twins and repeats are merged, so
 * the statement alerts once per relation and class (`UPDATE items … FROM items` still
 * alerts on its WRITE and its READ). Statement ids are sequential per session and therefore predictable:
 * a second record with the same ids but another statement text cannot both be
 * pgAudit's, so it raises `statement-id-conflict` instead of being dropped.
 *
 * A session is its pid together with its remote host, port, user and database, so a
 * reused pid is a new session. The last {@link PARTS_PER_SESSION} statement parts of
 * the last `capacity` sessions are remembered: enough for twins, which pgAudit writes
 * back to back, and for a forged id a few statements ahead (forged records are caught
 * on their own by the forgery check).
 */
export class StatementTracker {
  // Two generations instead of evicting the oldest key one by one: deleting from the
  // front of a Map leaves holes that make every later `keys().next()` slower.
  private current = new Map<string | number, SessionSeen>();
  private previous = new Map<string | number, SessionSeen>();

  /** @param capacity sessions remembered (at least; up to twice as many). @default 2048 */
  constructor(private readonly capacity = 2048) {}

  /**
   * Returns `verdict`, `excluded: duplicate` for the twin or repeat of an alerted record, or a
   * `statement-id-conflict` alert. `scope` separates sources whose pids may collide
   * (log streams, instances).
   */
  apply(event: AuditEvent, verdict: Verdict, scope = ''): Verdict {
    const session = this.session(event, scope);
    const seen = findPart(session.parts, event.statementId, event.substatementId);
    if (seen === undefined) {
      if (session.parts.length === PARTS_PER_SESSION) session.parts.shift();
      session.parts.push({
        statementId: event.statementId,
        substatementId: event.substatementId,
        statement: event.statement,
        auditType: event.auditType,
        auditClass: event.auditClass,
        command: event.command,
        objectName: event.objectName,
        later: undefined,
      });
      return verdict;
    }
    if (!sameText(seen.statement, event.statement))
      return { kind: 'alert', alert: conflictAlert(event, seen.statement) };
    if (seen.statement === PREVIOUSLY_LOGGED) seen.statement = event.statement;
    const twinType = event.auditType === 'OBJECT' ? 'SESSION' : 'OBJECT';
    const repeat = logged(seen, event, twinType) || logged(seen, event, event.auditType);
    (seen.later ??= []).push(partKey(event.auditType, event));
    return repeat && verdict.kind === 'alert' ? { kind: 'excluded', reason: 'duplicate' } : verdict;
  }

  /**
   * The text of the statement a substatement's record ran in: its session's record of
   * the same statement id and substatement 1 (a `DO` block's, a function call's), if
   * remembered (the last {@link PARTS_PER_SESSION} parts); `undefined` otherwise, and for
   * a record of substatement 1.
   */
  topLevelStatement(event: AuditEvent, scope = ''): string | undefined {
    if (event.substatementId <= 1) return undefined;
    const key = scope === '' ? (event.pid ?? -1) : `${scope}\u0000${event.pid}`;
    const session = this.current.get(key) ?? this.previous.get(key);
    if (session === undefined || !sameSession(session, event)) return undefined;
    const text = findPart(session.parts, event.statementId, 1)?.statement;
    return text === PREVIOUSLY_LOGGED ? undefined : text;
  }

  private session(event: AuditEvent, scope: string): SessionSeen {
    // The pid alone when there is no scope (one Map key type, no string built per record).
    const key = scope === '' ? (event.pid ?? -1) : `${scope}\u0000${event.pid}`;
    const known = this.current.get(key) ?? this.previous.get(key);
    if (known !== undefined && sameSession(known, event)) return known;
    const session: SessionSeen = {
      remoteHost: event.remoteHost,
      remotePort: event.remotePort,
      user: event.user,
      database: event.database,
      sessionId: event.sessionId,
      parts: [],
    };
    if (this.current.size >= this.capacity) {
      this.previous = this.current;
      this.current = new Map();
    }
    this.current.set(key, session);
    return session;
  }
}

/** True when `seen` already holds a record of `auditType` with the event's class, command and object. */
function logged(seen: StatementSeen, event: AuditEvent, auditType: string): boolean {
  if (
    seen.auditType === auditType &&
    seen.auditClass === event.auditClass &&
    seen.command === event.command &&
    seen.objectName === event.objectName
  )
    return true;
  return seen.later?.includes(partKey(auditType, event)) ?? false;
}

function partKey(auditType: string, event: AuditEvent): string {
  return `${auditType}\u0000${event.auditClass}\u0000${event.command}\u0000${event.objectName}`;
}

/** The remembered part with these ids (a loop: this runs for every record). */
function findPart(
  parts: readonly StatementSeen[],
  statementId: number,
  substatementId: number,
): StatementSeen | undefined {
  for (let i = parts.length - 1; i >= 0; i--) {
    const part = parts[i]!;
    if (part.statementId === statementId && part.substatementId === substatementId) return part;
  }
  return undefined;
}

function sameSession(session: SessionSeen, event: AuditEvent): boolean {
  return (
    session.remotePort === event.remotePort &&
    session.remoteHost === event.remoteHost &&
    session.user === event.user &&
    session.database === event.database &&
    session.sessionId === event.sessionId
  );
}

function sameText(first: string, second: string): boolean {
  return first === second || first === PREVIOUSLY_LOGGED || second === PREVIOUSLY_LOGGED;
}

import { FORGERY_WINDOW } from './forgery';
import { INTEGRITY_RULES, maxSeverity } from './integrity';
import type { AuditEvent, Verdict } from './types';

/** What pgAudit writes for the statement and parameters with `pgaudit.log_statement_once`. */
const PREVIOUSLY_LOGGED = '<previously logged>';

/** Records apart (in log order) within which a worker's record and its leader's are matched. */
export const PARALLEL_WORKER_WINDOW = FORGERY_WINDOW;

/** Records remembered: a power of two above the window, so every record in it is there. */
const RING_SIZE = 512;

/**
 * Integrity alerts that never fold and never lead: the record cannot be taken at face
 * value. Not `unexpected-audit-level`: that record is genuine, only written at another
 * severity, and its workers write at the same one (they inherit the leader's
 * pgaudit.log_level), so it folds and leads like any record, severity for severity.
 */
const UNFOLDABLE_RULE_NAMES: ReadonlySet<string> = new Set(
  Object.values(INTEGRITY_RULES)
    .filter((rule) => rule !== INTEGRITY_RULES.unexpectedLevel)
    .map((rule) => rule.name),
);

/** One record with its verdict, as the pipeline decided it. */
export interface Decided {
  event: AuditEvent;
  verdict: Verdict;
}

/** A record's statement text and parameters, `<previously logged>` resolved. */
interface Text {
  statement: string;
  parameters: string;
}

/** An outcome held back to keep log order behind a waiting candidate. */
interface Held<O> {
  out: O;
  /** Set while the record is a candidate waiting for a leader logged after it. */
  candidate: Candidate | undefined;
}

interface Candidate {
  record: Decided;
  seq: number;
  text: Text;
  /** The leader's record it was folded into, once folded. */
  leader: Decided | undefined;
}

/**
 * Folds the records pgAudit writes from parallel workers (every release before 18.0;
 * reproduced with 1.7.0 on PostgreSQL 15) into the record of the statement's leader,
 * so a parallel query alerts once, naming who ran it.
 * A worker has no client connection: its records carry no user, database or host,
 * statement id 1, and otherwise the leader's record (type, class, command, object,
 * statement text, parameters). They come right after the leader's record, or right
 * before it with `pgaudit.log_rows` (then everyone logs at the statement's end and the
 * leader waits for its workers).
 *
 * The rule, per record R without user, database and host (a folded R becomes
 * `excluded: parallel-worker` with the leader's pid):
 * - the log names leaders (`%P` in the prefix, csvlog/jsonlog `leader_pid`): R is folded
 *   into a record of the pid R names with the same type, class, command, object, text
 *   and parameters, within {@link PARALLEL_WORKER_WINDOW} records either way, whatever
 *   the leader's verdict (R is that statement). PostgreSQL writes a leader pid only for
 *   parallel workers, so a background worker's record is never folded.
 * - the log does not name leaders (RDS's prefix): R with statement id 1 that alerts is
 *   folded into a record with a user that matches it as above and alerts at least as
 *   severely. A background worker (pg_cron) logs exactly like a parallel worker, so R
 *   may be one; it is folded only when the same statement text, parameters and object
 *   already page under a name, so whatever R ran is in an alert either way. A record
 *   that matches no alerting leader (a service account's, an excluded one) alerts on
 *   its own, as before.
 *
 * Integrity alerts (forged, unreadable, statement-id conflict, ambiguous identity) never
 * fold and never lead; a record at another severity than `pgauditLogLevel`
 * (`unexpected-audit-level`) folds into a leader's record at that same severity only. Outcomes come out in log order: behind a candidate that matched
 * no earlier leader, they wait until the window has passed or {@link flush}. One stage
 * per source (a pipeline has one).
 */
export class ParallelWorkerFolder<O> {
  /** The last {@link RING_SIZE} records and their sequence numbers. */
  private readonly ring: (Decided | undefined)[] = new Array<Decided | undefined>(RING_SIZE);
  private seq = 0;
  private held: Held<O>[] = [];
  private heldHead = 0;
  /** Candidates still waiting, oldest first. */
  private waiting: Candidate[] = [];

  /**
   * @param leaderPidLogged whether the log names each parallel worker's leader (see
   * `prefixLogsLeaderPid`; csvlog and jsonlog of PostgreSQL 14+ do).
   * @param fold the outcome of a folded record, from its original outcome.
   */
  constructor(
    private readonly leaderPidLogged: boolean,
    private readonly fold: (out: O, verdict: Verdict) => O,
  ) {}

  /** Adds one record in log order; appends the outcomes now decided to `ready`. */
  push(record: Decided, out: O, ready: O[]): void {
    const seq = ++this.seq;
    this.ring[seq & (RING_SIZE - 1)] = record;
    this.expire(ready);
    if (this.isCandidate(record)) {
      const text = this.textOf(record.event, seq);
      const leader = text === undefined ? undefined : this.earlierLeader(record, text, seq);
      if (leader !== undefined) out = this.folded(out, leader);
      else if (text !== undefined) {
        const candidate: Candidate = { record, seq, text, leader: undefined };
        this.waiting.push(candidate);
        this.held.push({ out, candidate });
        return;
      }
    } else if (this.waiting.length > 0 && this.canLead(record)) {
      this.foldWaiting(record, seq);
    }
    if (this.heldHead < this.held.length) this.held.push({ out, candidate: undefined });
    else ready.push(out);
    this.release(ready);
  }

  /** Adds an outcome that is no record (kept in its place in log order). */
  pass(out: O, ready: O[]): void {
    if (this.heldHead < this.held.length) this.held.push({ out, candidate: undefined });
    else ready.push(out);
  }

  /** Decides every waiting candidate as it is; appends the rest to `ready`. */
  flush(ready: O[]): void {
    this.waiting = [];
    this.release(ready);
  }

  private isCandidate({ event, verdict }: Decided): boolean {
    if (!noIdentity(event) || integrityAlert(verdict)) return false;
    if (this.leaderPidLogged) return event.leaderPid !== undefined;
    return event.statementId === 1 && verdict.kind === 'alert';
  }

  private canLead({ event, verdict }: Decided): boolean {
    return event.user !== undefined && event.user !== '' && !integrityAlert(verdict);
  }

  /** The latest matching leader logged before `worker`, if any. */
  private earlierLeader(worker: Decided, text: Text, seq: number): Decided | undefined {
    for (let at = seq - 1; at > 0 && seq - at <= PARALLEL_WORKER_WINDOW; at--) {
      const leader = this.ring[at & (RING_SIZE - 1)]!;
      if (this.canLead(leader) && this.matches(worker, text, leader, at)) return leader;
    }
    return undefined;
  }

  /** Folds the waiting candidates that `leader`, just logged, matches. */
  private foldWaiting(leader: Decided, seq: number): void {
    let kept = 0;
    for (const candidate of this.waiting) {
      if (this.matches(candidate.record, candidate.text, leader, seq)) candidate.leader = leader;
      else this.waiting[kept++] = candidate;
    }
    this.waiting.length = kept;
  }

  private matches(worker: Decided, text: Text, leader: Decided, leaderSeq: number): boolean {
    const w = worker.event;
    const l = leader.event;
    if (this.leaderPidLogged ? w.leaderPid !== l.pid : !pagesAtLeastAs(leader, worker))
      return false;
    if (
      // A record at another severity than its leader's is not that statement's worker
      // (workers write at the leader's level): folded, the level change would go unseen.
      w.severity !== l.severity ||
      w.auditType !== l.auditType ||
      w.auditClass !== l.auditClass ||
      w.command !== l.command ||
      w.objectType !== l.objectType ||
      w.objectName !== l.objectName
    )
      return false;
    const leaderText = this.textOf(l, leaderSeq);
    return (
      leaderText !== undefined &&
      leaderText.statement === text.statement &&
      leaderText.parameters === text.parameters
    );
  }

  /**
   * The statement and parameters of the record logged at `seq`; `<previously logged>`
   * is taken from the same process's earlier record of the statement, `undefined` when
   * that is no longer remembered.
   */
  private textOf(event: AuditEvent, seq: number): Text | undefined {
    const parameters =
      event.parameterStatus === 'logged' ? event.parameters.join('\u0000') : event.parameterStatus;
    if (event.statement !== PREVIOUSLY_LOGGED) return { statement: event.statement, parameters };
    for (let at = seq - 1; at > 0 && seq - at < RING_SIZE; at--) {
      const earlier = this.ring[at & (RING_SIZE - 1)]!.event;
      if (
        earlier.pid === event.pid &&
        earlier.statementId === event.statementId &&
        earlier.statement !== PREVIOUSLY_LOGGED
      ) {
        const first = this.textOf(earlier, at)!;
        return event.parameterStatus === 'previously-logged'
          ? first
          : { statement: first.statement, parameters };
      }
    }
    return undefined;
  }

  /** Candidates whose window has passed are decided as they are. */
  private expire(ready: O[]): void {
    if (this.waiting.length === 0 || this.seq - this.waiting[0]!.seq <= PARALLEL_WORKER_WINDOW)
      return;
    this.waiting = this.waiting.filter(
      (candidate) => this.seq - candidate.seq <= PARALLEL_WORKER_WINDOW,
    );
    this.release(ready);
  }

  /** Moves held outcomes up to the first candidate still waiting to `ready`. */
  private release(ready: O[]): void {
    const held = this.held;
    while (this.heldHead < held.length) {
      const entry = held[this.heldHead]!;
      const candidate = entry.candidate;
      if (candidate !== undefined) {
        if (this.waiting.includes(candidate)) break;
        if (candidate.leader !== undefined) entry.out = this.folded(entry.out, candidate.leader);
      }
      ready.push(entry.out);
      this.heldHead++;
    }
    if (this.heldHead === held.length) {
      if (held.length === 0) return;
      this.held = [];
      this.heldHead = 0;
    } else if (this.heldHead > 1024) {
      this.held = held.slice(this.heldHead);
      this.heldHead = 0;
    }
  }

  private folded(out: O, leader: Decided): O {
    const leaderPid = leader.event.pid;
    return this.fold(out, {
      kind: 'excluded',
      reason: 'parallel-worker',
      ...(leaderPid === undefined ? {} : { leaderPid }),
    });
  }
}

/** No user, database or remote host: a process without a client connection. */
function noIdentity(event: AuditEvent): boolean {
  return (
    (event.user ?? '') === '' && (event.database ?? '') === '' && event.remoteHost === undefined
  );
}

/** True when `leader` alerts with at least the severity of `worker`'s alert. */
function pagesAtLeastAs(leader: Decided, worker: Decided): boolean {
  const l = leader.verdict;
  const w = worker.verdict;
  return (
    l.kind === 'alert' &&
    w.kind === 'alert' &&
    maxSeverity(w.alert.severity, l.alert.severity) === l.alert.severity
  );
}

function integrityAlert(verdict: Verdict): boolean {
  return verdict.kind === 'alert' && UNFOLDABLE_RULE_NAMES.has(verdict.alert.rule);
}

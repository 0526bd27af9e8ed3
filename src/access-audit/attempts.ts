import { FORGERY_WINDOW } from './forgery';
import { identityOf } from './identity';
import { pidOfEntry, type LogEntry } from './parser';
import type { Classified } from './pipeline';
import { AUDIT_TAMPERING_ATTEMPT_RULE, AUDIT_TAMPERING_RULE, summarize } from './rules';
import type { AccessAlert, AuditEvent } from './types';

/** A verdict on a record (or a failure) that alerted, with its alert. */
type Alerted<T> = Extract<Classified<T>, { kind: 'verdict' }> & {
  verdict: { kind: 'alert'; alert: AccessAlert };
};

/** An outcome in log order; an open one (a held record) keeps every later one back. */
interface Slot<T> {
  outcome: Classified<T>;
  open: boolean;
}

/**
 * The `audit-tampering` records of one statement of one process, not yet decided: the
 * records with its text (each statement of a multi-statement query string carries the
 * whole string, under its own statement id) and their substatements' (a `DO` block's
 * `PERFORM set_config(…)`, logged with its own text under the same statement id).
 */
interface Held<T> {
  readonly user: string | undefined;
  readonly statement: string;
  readonly statementIds: Set<number>;
  readonly slots: Slot<T>[];
  /** The pipeline record count when the first was held. */
  readonly since: number;
}

/** Processes holding records at once, at most (one per process, as the failure reader). */
const MAX_HELD = 1024;

const NOTHING: never[] = [];

/**
 * One alert per act for a statement pgAudit logs before it runs (a `set_config` call, a
 * `DO` block, a multi-statement query string) and the server then ends with an error:
 * its records alerted as `audit-tampering`, its failure as `audit-tampering-attempt`. The
 * attempt is the more precise (the server's own refusal, or why it failed), so it is the
 * alert; it takes the first record's pgAudit fields (class, command, statement id, …)
 * and what the records' alert said, and the records pass with the verdict `excluded`
 * (`attempt`).
 *
 * An `audit-tampering` record is held (and everything after it, to keep log order) until
 * its process logs something that is not this statement's: a record of another
 * statement, any line but the error's while no error of it waits for its STATEMENT. Then
 * the attempt of the same user and statement text folds it, and anything else passes it
 * on as it was; so do {@link FORGERY_WINDOW} further log records and {@link flush}. A
 * record is never dropped: when the record and its error arrive in different deliveries
 * (the Lambda flushes at the end of each), both alert, as before.
 */
export class AttemptFolder<T> {
  private readonly held = new Map<number | undefined, Held<T>>();
  private queue: Slot<T>[] = [];
  private seq = 0;

  /**
   * The outcomes of one log record, in log order, and the record's entry; returns what is
   * ready to pass on. `errorWaits(pid)`: an error of that process waits for its STATEMENT.
   */
  push(
    outcomes: Classified<T>[],
    entry: LogEntry | undefined,
    errorWaits: (pid: number | undefined) => boolean,
  ): Classified<T>[] {
    const seq = ++this.seq;
    // Nearly every record: nothing held, nothing that alerted as tampering.
    if (this.held.size === 0 && this.queue.length === 0 && !outcomes.some(isTamperingRecord))
      return outcomes;
    this.expire(seq);
    for (const outcome of outcomes) this.take(outcome, seq);
    if (entry !== undefined && this.held.size > 0) this.moveOn(entry, errorWaits);
    return this.drain();
  }

  /** Decides every record still held, as it was (end of a file or of a delivery). */
  flush(outcomes: Classified<T>[]): Classified<T>[] {
    if (this.held.size === 0 && this.queue.length === 0) return outcomes;
    for (const outcome of outcomes) this.take(outcome, this.seq);
    for (const held of this.held.values()) release(held);
    this.held.clear();
    return this.drain();
  }

  private take(outcome: Classified<T>, seq: number): void {
    if (outcome.kind !== 'verdict') {
      this.queue.push({ outcome, open: false });
      return;
    }
    const { pid, user, statement, statementId } = outcome.event;
    const held = this.held.get(pid);
    const ofHeld =
      held !== undefined &&
      held.user === user &&
      (held.statement === statement || held.statementIds.has(statementId));
    if (isTamperingRecord(outcome)) {
      const slot = { outcome, open: true };
      this.queue.push(slot);
      if (ofHeld) {
        held.slots.push(slot);
        if (held.statement === statement) held.statementIds.add(statementId);
        return;
      }
      if (held !== undefined) release(held);
      this.held.delete(pid);
      this.held.set(pid, {
        user,
        statement,
        statementIds: new Set([statementId]),
        slots: [slot],
        since: seq,
      });
      if (this.held.size > MAX_HELD) this.expire(seq);
      return;
    }
    const attempt = isAlertOf(outcome, AUDIT_TAMPERING_ATTEMPT_RULE.name) ? outcome : undefined;
    if (held !== undefined && !(ofHeld && attempt === undefined)) {
      // Anything of the process but a record of the held statement decides it.
      this.held.delete(pid);
      if (attempt !== undefined && ofHeld && held.statement === statement) {
        const records = held.slots.map((slot) => slot.outcome as Alerted<T>);
        for (const slot of held.slots) {
          slot.outcome = folded(slot.outcome);
          slot.open = false;
        }
        this.queue.push({ outcome: carrying(attempt, records), open: false });
        return;
      }
      release(held);
    }
    this.queue.push({ outcome, open: false });
  }

  /** Passes on a process's held records once it logged a line that is not their statement's. */
  private moveOn(entry: LogEntry, errorWaits: (pid: number | undefined) => boolean): void {
    const pid = pidOfEntry(entry);
    const held = this.held.get(pid);
    if (held === undefined) return;
    if (entry.kind === 'audit') {
      const { user, statement, statementId } = entry.event;
      if (
        user === held.user &&
        (statement === held.statement || held.statementIds.has(statementId))
      )
        return;
    } else if (errorWaits(pid)) return;
    this.held.delete(pid);
    release(held);
  }

  /** Passes on the records held longer than the window (oldest first), or beyond {@link MAX_HELD} processes. */
  private expire(seq: number): void {
    for (const [pid, held] of this.held) {
      if (seq - held.since <= FORGERY_WINDOW && this.held.size <= MAX_HELD) break;
      this.held.delete(pid);
      release(held);
    }
  }

  /** The outcomes up to the first still held, in log order. */
  private drain(): Classified<T>[] {
    let ready = 0;
    while (ready < this.queue.length && !this.queue[ready]!.open) ready++;
    if (ready === 0) return NOTHING;
    const out = this.queue.slice(0, ready).map((slot) => slot.outcome);
    this.queue = this.queue.slice(ready);
    return out;
  }
}

function release<T>(held: Held<T>): void {
  for (const slot of held.slots) slot.open = false;
}

function isTamperingRecord<T>(outcome: Classified<T>): boolean {
  return isAlertOf(outcome, AUDIT_TAMPERING_RULE.name);
}

function isAlertOf<T>(outcome: Classified<T>, rule: string): outcome is Alerted<T> {
  return (
    outcome.kind === 'verdict' &&
    outcome.verdict.kind === 'alert' &&
    outcome.verdict.alert.rule === rule
  );
}

/** A record whose alert the attempt carries. */
function folded<T>(record: Classified<T>): Classified<T> {
  return record.kind === 'verdict'
    ? { ...record, verdict: { kind: 'excluded', reason: 'attempt' } }
    : record;
}

/**
 * The attempt's alert with its records': the first record's pgAudit fields (the failure
 * keeps its severity, time and message) and what the records' alert said.
 */
function carrying<T>(attempt: Alerted<T>, records: readonly Alerted<T>[]): Alerted<T> {
  const record = records[0]!.event;
  // The records' alert said `<summarize(record)>: <what>`; the attempt's names the identity.
  const said = records[0]!.verdict.alert.summary;
  const head = summarize(record);
  const what = said.startsWith(`${head}: `) ? said.slice(head.length + 2) : said;
  const shown = head.slice(identityOf(record).length + 2);
  const count = records.length === 1 ? '' : ` (${records.length} records)`;
  const event: AuditEvent = {
    ...attempt.event,
    auditType: record.auditType,
    statementId: record.statementId,
    substatementId: record.substatementId,
    auditClass: record.auditClass,
    command: record.command,
    objectType: record.objectType,
    objectName: record.objectName,
    parameterStatus: record.parameterStatus,
    parameters: record.parameters,
    rows: record.rows,
  };
  const alert: AccessAlert = {
    ...attempt.verdict.alert,
    summary: `${attempt.verdict.alert.summary}; logged by pgAudit as ${shown}: ${what}${count}`,
    event,
  };
  return { ...attempt, event, verdict: { kind: 'alert', alert } };
}

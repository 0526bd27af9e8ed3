import { FORGERY_WINDOW } from './forgery';
import { identityOf } from './identity';
import { pidOfEntry, type LogEntry } from './parser';
import type { Classified } from './pipeline';
import { AUDIT_TAMPERING_ATTEMPT_RULE, AUDIT_TAMPERING_RULE, summarize } from './rules';
import { statementCount } from './sql-tokens';
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
  /**
   * For records of substatements: the text of the statement they ran in (a `DO` block's,
   * a function call's), when the log showed it (`AccessAlert.act`); its error's STATEMENT
   * has that text.
   */
  act: string | undefined;
  readonly statementIds: Set<number>;
  /**
   * How many statements `statement` holds: a record of the same text under a new
   * statement id is another of them only while fewer ids were seen. Beyond that it is
   * the same text sent again, another act: the first may have succeeded (a `DROP
   * PUBLICATION` that ran, then failed as "does not exist" when repeated).
   */
  readonly statementsInText: number;
  readonly slots: Slot<T>[];
  /**
   * Every record of the statement, in log order, `audit-tampering` or not (a `DO` block's
   * `INSERT` and `COMMIT` before its refused `PERFORM`): what the attempt says ran.
   */
  readonly records: AuditEvent[];
  /** The pipeline record count when the first was held. */
  readonly since: number;
}

/** Processes holding records at once, at most (one per process, as the failure reader). */
const MAX_HELD = 1024;

const NOTHING: never[] = [];

/**
 * Messages a statement writes while it runs and goes on: the server's warnings (a COMMIT
 * in a query string: `there is no transaction in progress`), a `RAISE NOTICE`, and the
 * DETAIL, HINT or CONTEXT lines that belong to them. Such a line says nothing about
 * whether the statement then ends with an error, so a held record keeps waiting. (An
 * `ERROR` line and its lines are the failure reader's: `errorWaits`.)
 */
const WRITTEN_WHILE_RUNNING: ReadonlySet<string> = new Set([
  'WARNING',
  'NOTICE',
  'INFO',
  'DEBUG',
  'DEBUG1',
  'DEBUG2',
  'DEBUG3',
  'DEBUG4',
  'DEBUG5',
  'DETAIL',
  'HINT',
  'CONTEXT',
]);

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
   * @param blockOf the text of the statement a substatement's record ran in (its
   * session's record of the same statement id, substatement 1), when the pipeline read
   * it: the record's act (`AccessAlert.act`).
   */
  constructor(private readonly blockOf: (event: AuditEvent) => string | undefined) {}

  /**
   * Whether {@link push} would pass `outcomes` on as they are: nothing held and no
   * `audit-tampering` record among them (nearly every record). The pipeline asks this
   * first and calls {@link push} only when not, which keeps the folder's code out of the
   * pipeline's compiled hot path (BENCHMARKS 5, hparse3: -1.2% instructions a line).
   * Not pushing loses nothing then: `seq` only counts how long a record is held, and
   * while one is held every record is pushed.
   */
  passesThrough(outcomes: readonly Classified<T>[]): boolean {
    return this.held.size === 0 && this.queue.length === 0 && !outcomes.some(isTamperingRecord);
  }

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
    if (this.passesThrough(outcomes)) return outcomes;
    this.expire(seq);
    for (const outcome of outcomes) this.take(outcome, seq);
    if (entry !== undefined && this.held.size > 0) this.moveOn(entry, errorWaits);
    return this.drain();
  }

  /** Decides every record still held, as it was (end of a file or of a delivery). */
  flush(outcomes: Classified<T>[]): Classified<T>[] {
    // A tampering record among them still takes its act (`withAct`).
    if (this.passesThrough(outcomes)) return outcomes;
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
    const ofHeld = held !== undefined && isOf(held, user, statement, statementId);
    if (isTamperingRecord(outcome)) {
      const slot = { outcome: this.withAct(outcome), open: true };
      this.queue.push(slot);
      if (ofHeld) {
        held.slots.push(slot);
        held.records.push(outcome.event);
        held.act ??= slot.outcome.verdict.alert.act;
        if (held.statement === statement) held.statementIds.add(statementId);
        return;
      }
      if (held !== undefined) release(held);
      this.held.delete(pid);
      this.held.set(pid, {
        user,
        statement,
        act: slot.outcome.verdict.alert.act,
        statementIds: new Set([statementId]),
        statementsInText: statementCount(statement),
        slots: [slot],
        records: [outcome.event],
        since: seq,
      });
      if (this.held.size > MAX_HELD) this.expire(seq);
      return;
    }
    const attempt = isAlertOf(outcome, AUDIT_TAMPERING_ATTEMPT_RULE.name) ? outcome : undefined;
    if (held !== undefined && !(ofHeld && attempt === undefined)) {
      // Anything of the process but a record of the held statement decides it.
      this.held.delete(pid);
      if (attempt !== undefined && held.user === user && endedBy(held, attempt)) {
        const records = held.slots.map((slot) => slot.outcome as Alerted<T>);
        for (const slot of held.slots) {
          slot.outcome = folded(slot.outcome);
          slot.open = false;
        }
        this.queue.push({ outcome: carrying(attempt, records, held.records), open: false });
        return;
      }
      release(held);
    } else if (ofHeld) held.records.push(outcome.event);
    this.queue.push({ outcome, open: false });
  }

  /**
   * A substatement's `audit-tampering` record with its act, the statement it ran in, which
   * its block's record and its block's error are keyed by, when the pipeline read it.
   */
  private withAct(record: Alerted<T>): Alerted<T> {
    if (record.event.substatementId <= 1) return record;
    const act = this.blockOf(record.event);
    if (act === undefined) return record;
    return { ...record, verdict: { kind: 'alert', alert: { ...record.verdict.alert, act } } };
  }

  /** Passes on a process's held records once it logged a line that is not their statement's. */
  private moveOn(entry: LogEntry, errorWaits: (pid: number | undefined) => boolean): void {
    const pid = pidOfEntry(entry);
    const held = this.held.get(pid);
    if (held === undefined) return;
    if (entry.kind === 'audit') {
      const { user, statement, statementId } = entry.event;
      if (isOf(held, user, statement, statementId)) return;
    } else if (errorWaits(pid) || WRITTEN_WHILE_RUNNING.has(entry.severity)) return;
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

/**
 * Whether the attempt's error ended the held statement, as the log shows: the error's
 * STATEMENT is the held records' text, or the text of the statement they ran in
 * (`act`: a `DO` block's or function call's record, read in this delivery). When the
 * held records are substatements' and that statement's record is not in this delivery
 * (another Lambda invocation took it), the error's CONTEXT names the statement it ended:
 * one of theirs is the server's word that they are its act. (Held records are only
 * ever of one process with nothing else of it between them and the error; the records
 * of the statement the error ended would stand between, had pgAudit logged them.)
 */
function endedBy<T>(held: Held<T>, attempt: Alerted<T>): boolean {
  // Logged once it had run: an error after it, of a text holding no other statement, is
  // the same text sent again (a DROP that ran, then "does not exist").
  if (held.statementsInText === 1 && loggedAfterItRan(held.records[0]!)) return false;
  const statement = attempt.event.statement;
  if (held.statement === statement || held.act === statement) return true;
  const ended = attempt.verdict.alert.ended;
  if (ended === undefined || held.act !== undefined || held.records[0]!.substatementId <= 1)
    return false;
  return held.records.some(
    (record) => record.substatementId > 1 && ended.includes(record.statement),
  );
}

/** Utility statements' classes: pgAudit logs these as they finish (its ProcessUtility hook). */
const UTILITY_CLASSES: ReadonlySet<string> = new Set(['DDL', 'ROLE', 'MISC', 'MISC_SET']);

/** The utility statements pgAudit logs before they run (so that an error cannot hide them). */
const LOGGED_BEFORE_RUNNING: ReadonlySet<string> = new Set([
  'DO',
  'CREATE EXTENSION',
  'ALTER EXTENSION',
  'CLOSE CURSOR',
]);

/**
 * Whether pgAudit wrote this record only once its statement had run: a top-level utility
 * statement (DDL, ROLE, MISC), but for the few it logs first. A query (`SELECT
 * set_config(…)`, `INSERT`), a function call or a `DO` block is logged before it runs.
 */
function loggedAfterItRan(event: AuditEvent): boolean {
  return (
    event.substatementId === 1 &&
    UTILITY_CLASSES.has(event.auditClass) &&
    !LOGGED_BEFORE_RUNNING.has(event.command)
  );
}

/**
 * Whether a record is of the held statement: the same user, and a statement id seen (its
 * substatements, whatever their text) or the same text under another of the statements
 * that text holds (each statement of a query string logs the whole string).
 */
function isOf<T>(
  held: Held<T>,
  user: string | undefined,
  statement: string,
  statementId: number,
): boolean {
  if (held.user !== user) return false;
  if (held.statementIds.has(statementId)) return true;
  return held.statement === statement && held.statementIds.size < held.statementsInText;
}

function release<T>(held: Held<T>): void {
  for (const slot of held.slots) slot.open = false;
}

function isTamperingRecord<T>(outcome: Classified<T>): outcome is Alerted<T> {
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

/** Longest statement text an alert shows for a substatement it names. */
const SUBSTATEMENT_SHOWN = 120;

/**
 * What the act's records show ran before the server's error, when more than the refused
 * statement may have: `; logged before the error: statement 1 INSERT TABLE public.items
 * (WRITE), statement 2 COMMIT (MISC), statement 3 SELECT (READ); what ran before the
 * refused statement may have taken effect`. A query string of several statements runs
 * them one by one (a `COMMIT` among them keeps what came before it), and a call such as
 * `pg_drop_replication_slot` is not undone by a later error; the records cannot say
 * which statement the error ended, so all are named, in log order. A statement that only
 * holds the next one (a `DO` block, `SELECT f()` whose function ran it, the function's
 * call) is left out; a substatement is shown with its own text. `''` when the act is one
 * statement with one record.
 */
function ranBefore(records: readonly AuditEvent[], queryString: string): string {
  const shown: string[] = [];
  for (let i = 0; i < records.length; i++) {
    const record = records[i]!;
    const next = records[i + 1];
    const holdsNext =
      next !== undefined &&
      next.statementId === record.statementId &&
      next.substatementId > record.substatementId;
    if (holdsNext && (record.substatementId === 1 || record.auditClass === 'FUNCTION')) continue;
    const object = record.objectName === '' ? '' : ` ${record.objectType} ${record.objectName}`;
    const text =
      record.substatementId === 1
        ? ''
        : ` ${JSON.stringify(clip(record.statement, SUBSTATEMENT_SHOWN))}`;
    const id =
      record.substatementId === 1
        ? `${record.statementId}`
        : `${record.statementId}.${record.substatementId}`;
    shown.push(`statement ${id} ${record.command}${object} (${record.auditClass})${text}`);
  }
  if (shown.length < 2 && statementCount(queryString) < 2) return '';
  return `; logged before the error: ${shown.join(', ')}; what ran before the refused statement may have taken effect`;
}

/** `text` cut to `length` characters, with `…` when cut. */
function clip(text: string, length: number): string {
  return text.length <= length ? text : `${text.slice(0, length)}…`;
}

/**
 * The attempt's alert with its records': the first record's pgAudit fields (the failure
 * keeps its severity, time and message) and what the records' alert said.
 */
function carrying<T>(
  attempt: Alerted<T>,
  records: readonly Alerted<T>[],
  statementRecords: readonly AuditEvent[],
): Alerted<T> {
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
    summary: `${attempt.verdict.alert.summary}; logged by pgAudit as ${shown}: ${what}${count}${ranBefore(statementRecords, attempt.event.statement)}`,
    event,
  };
  return { ...attempt, event, verdict: { kind: 'alert', alert } };
}

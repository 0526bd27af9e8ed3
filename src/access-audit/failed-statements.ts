import { FORGERY_WINDOW } from './forgery';
import {
  CONTEXT_SEVERITY,
  FAILURE_SEVERITIES,
  pidOfEntry,
  STATEMENT_SEVERITY,
  type LogEntry,
} from './parser';
import type { LogPrefixFields } from './types';

/**
 * A statement (or a connection) the server ended with an error: who, the error's
 * severity, message and CONTEXT (where the error was raised: a statement run inside a
 * function or DO block, a RAISE), and the statement when the log has it
 * (`log_min_error_statement` at ERROR or lower; a connection refused at startup has none).
 */
export interface FailedStatement {
  readonly fields: LogPrefixFields;
  readonly severity: string;
  readonly message: string;
  readonly context: string | undefined;
  readonly statement: string | undefined;
}

/** Lines PostgreSQL writes between an error and its STATEMENT. */
const BETWEEN_ERROR_AND_STATEMENT = new Set(['DETAIL', 'HINT', 'QUERY', 'CONTEXT']);

const NOTHING: never[] = [];

/** Errors waiting for their STATEMENT, at most this many (one per process). */
const MAX_WAITING = 1024;

/** A failure and the caller's tag for where its error line came from. */
export interface Completed<T> {
  failure: FailedStatement;
  tag: T;
}

interface Waiting<T> {
  failure: Omit<FailedStatement, 'statement' | 'context'>;
  /** stderr: the CONTEXT line written between the error and its STATEMENT. */
  context: string | undefined;
  tag: T;
  seq: number;
}

/**
 * Joins an error with the statement it interrupted. csvlog and jsonlog carry both in one
 * record; stderr writes the ERROR (or FATAL) line, maybe DETAIL, HINT, QUERY or CONTEXT
 * lines, then `STATEMENT:` with the text, all under the process's pid. An error whose
 * process logs anything else next, or nothing within {@link FORGERY_WINDOW} records, or
 * before {@link flush}, had no statement logged.
 */
export class FailedStatementReader<T> {
  private readonly waiting = new Map<number | undefined, Waiting<T>>();
  private seq = 0;

  /** @param statementFollows whether the statement is a line of its own (stderr). */
  constructor(private readonly statementFollows: boolean) {}

  /** Adds one parsed entry; returns the failures now complete, each with the tag of its error's line. */
  push(entry: LogEntry | undefined, tag: T): Completed<T>[] {
    if (entry === undefined) return NOTHING;
    const seq = ++this.seq;
    // The common case, every record of a log without failures: nothing waits, nothing starts.
    if (this.waiting.size === 0 && (entry.kind !== 'message' || entry.fields === undefined))
      return NOTHING;
    const done = this.expire(seq);
    const pid = pidOfEntry(entry);
    const pending = this.waiting.get(pid);
    if (pending !== undefined) {
      if (entry.kind === 'message' && BETWEEN_ERROR_AND_STATEMENT.has(entry.severity)) {
        if (entry.severity === CONTEXT_SEVERITY) pending.context = entry.message;
        return done;
      }
      this.waiting.delete(pid);
      const statement =
        entry.kind === 'message' && entry.severity === STATEMENT_SEVERITY
          ? entry.message
          : undefined;
      done.push(completed(pending, statement));
    }
    if (
      entry.kind !== 'message' ||
      entry.fields === undefined ||
      !FAILURE_SEVERITIES.has(entry.severity)
    )
      return done;
    const failure = { fields: entry.fields, severity: entry.severity, message: entry.message };
    if (this.statementFollows)
      this.waiting.set(pid, { failure, context: undefined, tag, seq: this.seq });
    else
      done.push({
        failure: { ...failure, context: entry.context, statement: entry.statement },
        tag,
      });
    return done;
  }

  /** Whether an error of this process waits for its STATEMENT (stderr). */
  waitsFor(pid: number | undefined): boolean {
    return this.waiting.has(pid);
  }

  /** The failures still waiting for a statement, without one. */
  flush(): Completed<T>[] {
    const done = [...this.waiting.values()].map((pending) => completed(pending, undefined));
    this.waiting.clear();
    return done;
  }

  private expire(seq: number): Completed<T>[] {
    const done: Completed<T>[] = [];
    for (const [pid, pending] of this.waiting) {
      if (seq - pending.seq <= FORGERY_WINDOW && this.waiting.size <= MAX_WAITING) break;
      this.waiting.delete(pid);
      done.push(completed(pending, undefined));
    }
    return done;
  }
}

function completed<T>(pending: Waiting<T>, statement: string | undefined): Completed<T> {
  return { failure: { ...pending.failure, context: pending.context, statement }, tag: pending.tag };
}

import { type LogEntry, placeholderEvent } from './parser';
import type { AuditEvent, Verdict } from './types';

/**
 * One item read from a PostgreSQL log:
 * - `event`: a genuine pgAudit record;
 * - `forged`: a line that looks like a pgAudit record but was written by something
 *   else (`RAISE LOG 'AUDIT: …'`): PostgreSQL gave it a CONTEXT, which pgAudit's own
 *   records never have. `event` is what the line claimed, under the real prefix of
 *   whoever wrote it;
 * - `relayed`: a parallel worker's record logged again by its leader, under the leader's
 *   identity (see {@link PARALLEL_WORKER_CONTEXT}); the worker's own record is an `event`;
 * - `decided`: no pgAudit record, judged by the caller (a refused attempt to change a
 *   setting, read from the server's error), kept in its place in log order;
 * - `unreadable`: a record that claims to be pgAudit's but cannot be read. `event`
 *   carries the prefix's identity and the raw text when the prefix could be read.
 */
export type LogItem =
  | { kind: 'event'; event: AuditEvent }
  | { kind: 'decided'; event: AuditEvent; verdict: Verdict }
  | { kind: 'relayed'; event: AuditEvent }
  | { kind: 'forged'; event: AuditEvent; context: string }
  | { kind: 'unreadable'; error: string; record: string; event: AuditEvent | undefined };

/** An item and the caller's tag for where it came from. */
export interface TaggedItem<T> {
  item: LogItem;
  tag: T;
}

/** Lines that PostgreSQL writes after a message and before its CONTEXT line. */
const BEFORE_CONTEXT = new Set(['DETAIL', 'HINT', 'QUERY']);

/**
 * A record stays undecided until its process logs again; a forger's CONTEXT line is
 * written with the record in one write, so it is the very next line of that pid.
 * After this many further records of other processes it is decided as genuine, which
 * bounds how far output lags input.
 */
export const FORGERY_WINDOW = 256;

interface Slot<T> extends TaggedItem<T> {
  open: boolean;
  seq: number;
}

const NOTHING: never[] = [];

/**
 * Tells genuine pgAudit records from forged ones. pgAudit emits its records with
 * `errhidecontext`, so a genuine record is never followed by a CONTEXT line; a
 * `RAISE LOG 'AUDIT: …'` in PL/pgSQL always is (`… at RAISE`), and `log_error_verbosity`
 * that could hide it is superuser-only. In stderr logs the CONTEXT is its own line
 * with the same pid, so each record waits for the next line of its process
 * (DETAIL, HINT and QUERY lines come before CONTEXT and are passed over). csvlog and
 * jsonlog carry the context in the record itself and are decided at once.
 *
 * Items come out in log order. Records still waiting at {@link flush} (end of file or
 * of a Lambda invocation) are decided as genuine: a forgery whose CONTEXT line falls
 * into the next CloudWatch delivery is not caught (README, "Limits").
 */
export class ForgeryDetector<T> {
  /** Slots in log order; `queue[head]` is the oldest not yet returned. */
  private queue: Slot<T>[] = [];
  private head = 0;
  private readonly waiting = new Map<number | undefined, Slot<T>>();
  private seq = 0;

  /** Adds one parsed entry; returns the items decided so far, in log order. */
  push(entry: LogEntry | undefined, tag: T): TaggedItem<T>[] {
    if (entry === undefined) return NOTHING;
    this.seq++;
    if (entry.kind === 'message') {
      this.follow(entry.pid, entry.severity, entry.message);
    } else {
      const pid = entry.kind === 'audit' ? entry.event.pid : entry.fields?.pid;
      this.decide(this.waiting.get(pid));
      const slot: Slot<T> = { item: toItem(entry), tag, open: false, seq: this.seq };
      if (entry.kind === 'unreadable' && entry.fields === undefined) {
        // No prefix, so no process to wait for: it is reported as unreadable either way.
      } else if (entry.context === undefined) {
        slot.open = true;
        this.waiting.set(pid, slot);
      } else if (entry.context !== '') {
        slot.item = withContext(slot.item, entry.context);
      }
      this.queue.push(slot);
    }
    return this.drain(false);
  }

  /** Adds an item judged elsewhere after the entries pushed so far; returns the items decided so far. */
  pushDecided(item: LogItem, tag: T): TaggedItem<T>[] {
    this.queue.push({ item, tag, open: false, seq: this.seq });
    return this.drain(false);
  }

  /** Decides every waiting record as genuine and returns the rest of the items. */
  flush(): TaggedItem<T>[] {
    return this.drain(true);
  }

  private follow(pid: number | undefined, severity: string, message: string): void {
    const slot = this.waiting.get(pid);
    if (slot === undefined || BEFORE_CONTEXT.has(severity)) return;
    if (severity === 'CONTEXT') slot.item = withContext(slot.item, message);
    this.decide(slot);
  }

  private decide(slot: Slot<T> | undefined): void {
    if (slot === undefined) return;
    slot.open = false;
    const pid = slot.item.event?.pid;
    if (this.waiting.get(pid) === slot) this.waiting.delete(pid);
  }

  private drain(all: boolean): TaggedItem<T>[] {
    let ready: TaggedItem<T>[] | undefined;
    const queue = this.queue;
    while (this.head < queue.length) {
      const slot = queue[this.head]!;
      if (slot.open && (all || this.seq - slot.seq > FORGERY_WINDOW)) this.decide(slot);
      if (slot.open) break;
      // Most pushes decide one item: an array of exactly one, not a grown empty one.
      if (ready === undefined) ready = [slot];
      else ready.push(slot);
      this.head++;
    }
    if (this.head === queue.length) {
      this.queue = [];
      this.head = 0;
    } else if (this.head > 1024) {
      this.queue = queue.slice(this.head);
      this.head = 0;
    }
    return ready ?? NOTHING;
  }
}

function toItem(entry: Exclude<LogEntry, { kind: 'message' }>): LogItem {
  if (entry.kind === 'audit') return { kind: 'event', event: entry.event };
  return {
    kind: 'unreadable',
    error: entry.error,
    record: entry.record,
    event:
      entry.fields === undefined
        ? undefined
        : placeholderEvent(entry.fields, entry.severity, entry.message),
  };
}

/**
 * The CONTEXT a leader gives a parallel worker's message it passes on (PostgreSQL's
 * HandleParallelMessage appends it to the worker's own context, which pgAudit's records
 * have none of): with `pgaudit.log_client = on` at a level sent to the client (INFO
 * always, WARNING and NOTICE by client_min_messages), each worker's record is logged
 * again by its leader, under the leader's identity. A `RAISE` in a worker keeps its
 * `PL/pgSQL function …` line before it.
 */
export const PARALLEL_WORKER_CONTEXT = 'parallel worker';

/** A record followed by `context`: the copy of a worker's record its leader logged, or forged. */
function withContext(item: LogItem, context: string): LogItem {
  if (item.kind === 'event' && context === PARALLEL_WORKER_CONTEXT)
    return { kind: 'relayed', event: item.event };
  return forged(item, context);
}

function forged(item: LogItem, context: string): LogItem {
  const event =
    item.event ??
    // A forged line whose prefix could not be read cannot be waiting on a pid; kept for completeness.
    placeholderEvent({}, '', item.kind === 'unreadable' ? item.record : '');
  return { kind: 'forged', event, context };
}

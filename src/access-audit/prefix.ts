import type { LogPrefixFields } from './types';
import { AuditTrailError } from '../errors';
import { isDigit } from './sql-tokens';

/** The RDS / Aurora PostgreSQL default `log_line_prefix`. */
export const RDS_LOG_LINE_PREFIX = '%t:%r:%u@%d:[%p]:';

/** Thrown for a log_line_prefix the parser cannot follow. */
export class LogPrefixError extends AuditTrailError {
  override readonly name = 'LogPrefixError';
  constructor(message: string, options: { readonly hint?: string; readonly cause?: unknown } = {}) {
    super(message, { code: 'LOG_PREFIX_INVALID', kind: 'usage', ...options });
  }
}

/** The prefix fields a free-text escape fills. */
type TextField = 'user' | 'database' | 'applicationName' | 'sessionId';

/** One piece of a compiled prefix: literal text, or an escape and how to read it. */
type Part =
  | { kind: 'literal'; text: string }
  | { kind: 'timestamp'; field: 'timestamp' | 'ignored'; fractional: boolean }
  | { kind: 'epoch'; field: 'timestamp' }
  | { kind: 'remote'; withPort: boolean }
  | { kind: 'number'; field: 'pid' | 'leaderPid' | 'ignored' }
  | { kind: 'text'; field: TextField | 'ignored'; padded: boolean }
  /** `%q`: where the lines of processes without a session end. */
  | { kind: 'sessionEnd' };

/** A parsed prefix: the fields it carried and where the message starts. */
export interface PrefixMatch {
  fields: LogPrefixFields;
  /** Offset just past the prefix. */
  end: number;
}

/** Reads the prefix of one log line; `undefined` when the line does not start with it. */
export type PrefixParser = (line: string) => PrefixMatch | undefined;

const TEXT_ESCAPES: Readonly<Record<string, TextField>> = {
  u: 'user',
  d: 'database',
  a: 'applicationName',
  c: 'sessionId',
};

/** Options for {@link compileLogPrefix}. */
export interface PrefixOptions {
  /**
   * True when a record of interest starts at `pos` (just past a prefix). When given, a
   * name that could be split another way makes the line ambiguous only if that other
   * split is also followed by such a record: a prefix ending in a free-text escape and
   * a space (Debian's `%u@%d `) can otherwise always be split at a later space.
   */
  readonly recordAt?: (line: string, pos: number) => boolean;
}

/**
 * Compiles a PostgreSQL `log_line_prefix` into a parser. The parser walks the line
 * once, left to right, without regular expressions: timestamps have a fixed shape,
 * `%r` is `host(port)` (IPv6 hosts contain colons, so the port's parentheses anchor
 * it), and free-text escapes (`%u`, `%d`, `%a`, …) run up to the next literal.
 * A role or database name that itself contains the following literal (for example
 * a user named `a@b` with `%u@%d`) cannot be told apart: the line is split at the
 * first one and marked {@link LogPrefixFields.identityAmbiguous}, so rules alert on it
 * instead of trusting the split. Values are taken byte for byte (`"app_svc "` is not
 * `app_svc`); only escapes with a padding width (`%-10u`) are trimmed.
 * This parser reads the lines of sessions, which carry the whole prefix; see
 * {@link compileSessionlessPrefix} for the lines of processes without one.
 * @throws LogPrefixError for a prefix with two free-text escapes in a row.
 */
export function compileLogPrefix(
  prefix: string = RDS_LOG_LINE_PREFIX,
  options: PrefixOptions = {},
): PrefixParser {
  const steps = compileSteps(sessionParts(splitPrefix(prefix)));
  return (line) => matchParts(steps, line, options.recordAt);
}

/**
 * The parser for the lines of processes without a session (parallel workers, background
 * workers such as a `pg_cron` job, the checkpointer): PostgreSQL ends their prefix at
 * `%q`, so they carry none of the escapes after it. `undefined` when the prefix has no
 * `%q` (every line then carries the whole prefix).
 * @throws LogPrefixError as {@link compileLogPrefix}.
 */
export function compileSessionlessPrefix(
  prefix: string = RDS_LOG_LINE_PREFIX,
  options: PrefixOptions = {},
): PrefixParser | undefined {
  const parts = splitPrefix(prefix);
  const end = parts.findIndex((part) => part.kind === 'sessionEnd');
  if (end < 0) return undefined;
  const sessionless = compileSteps(parts.slice(0, end));
  return (line) => matchParts(sessionless, line, options.recordAt);
}

/**
 * True when the prefix has `%P` where a parallel worker's line carries it (before any
 * `%q`, at which a worker's line ends), so every parallel worker's line names its leader.
 */
export function prefixLogsLeaderPid(prefix: string = RDS_LOG_LINE_PREFIX): boolean {
  const parts = splitPrefix(prefix);
  const end = parts.findIndex((part) => part.kind === 'sessionEnd');
  return (end < 0 ? parts : parts.slice(0, end)).some(
    (part) => part.kind === 'number' && part.field === 'leaderPid',
  );
}

function splitPrefix(prefix: string): Part[] {
  const parts: Part[] = [];
  let literal = '';
  const flush = () => {
    if (literal !== '') parts.push({ kind: 'literal', text: literal });
    literal = '';
  };
  for (let i = 0; i < prefix.length; i++) {
    const char = prefix[i]!;
    if (char !== '%') {
      literal += char;
      continue;
    }
    i++;
    // Padding such as %-10u pads the value with spaces: such values are trimmed.
    const paddingStart = i;
    while (i < prefix.length && /[-0-9]/.test(prefix[i]!)) i++;
    const padded = i > paddingStart;
    const escape = prefix[i];
    if (escape === undefined)
      throw new LogPrefixError(`log_line_prefix "${prefix}" ends with a lone %`);
    if (escape === '%') {
      literal += '%';
      continue;
    }
    flush();
    // %q ends the prefix for processes without a session; session lines carry everything.
    if (escape === 'q') {
      if (!parts.some((part) => part.kind === 'sessionEnd')) parts.push({ kind: 'sessionEnd' });
      continue;
    }
    parts.push(escapePart(escape, padded));
  }
  flush();
  sessionParts(parts).forEach((part, index, session) => {
    const next = session[index + 1];
    if (isFreeText(part) && next !== undefined && isFreeText(next)) {
      throw new LogPrefixError(
        `log_line_prefix "${prefix}" has two free-text escapes with nothing between them`,
      );
    }
  });
  return parts;
}

/** A session's line: `%q` dropped, the literals either side of it one literal. */
function sessionParts(parts: readonly Part[]): Part[] {
  const session: Part[] = [];
  for (const part of parts) {
    if (part.kind === 'sessionEnd') continue;
    const last = session[session.length - 1];
    if (part.kind === 'literal' && last?.kind === 'literal')
      session[session.length - 1] = { kind: 'literal', text: last.text + part.text };
    else session.push(part);
  }
  return session;
}

function escapePart(escape: string, padded: boolean): Part {
  switch (escape) {
    case 't':
      return { kind: 'timestamp', field: 'timestamp', fractional: false };
    case 'm':
      return { kind: 'timestamp', field: 'timestamp', fractional: true };
    case 's':
      return { kind: 'timestamp', field: 'ignored', fractional: false };
    case 'n':
      return { kind: 'epoch', field: 'timestamp' };
    case 'r':
      return { kind: 'remote', withPort: true };
    case 'h':
      return { kind: 'remote', withPort: false };
    case 'p':
      return { kind: 'number', field: 'pid' };
    case 'P':
      return { kind: 'number', field: 'leaderPid' };
    case 'l':
      return { kind: 'number', field: 'ignored' };
    default:
      return { kind: 'text', field: TEXT_ESCAPES[escape] ?? 'ignored', padded };
  }
}

function isFreeText(part: Part): boolean {
  return part.kind === 'text' || part.kind === 'remote';
}

/** Where a part's value goes. */
type StepField = Extract<Part, { field: unknown }>['field'];

/**
 * A part as the matcher reads it, for every line: one object shape for every kind (the
 * union's five shapes made each `part.kind` read a megamorphic lookup), with the literal
 * that ends its value and whether a name could be split another way worked out once.
 */
interface Step {
  readonly kind: Part['kind'];
  /** A literal's text; `''` for the other kinds. */
  readonly text: string;
  /** Where a timestamp, number or text value goes. */
  readonly field: StepField;
  readonly fractional: boolean;
  readonly withPort: boolean;
  readonly padded: boolean;
  /** The literal right after this part, where its value ends; `undefined` when none follows. */
  readonly stop: string | undefined;
  /** A named text value followed by a literal: a later occurrence of it may split the name another way. */
  readonly mayHaveOtherSplit: boolean;
}

function compileSteps(parts: readonly Part[]): Step[] {
  return parts.map((part, index): Step => {
    const next = parts[index + 1];
    const stop = next?.kind === 'literal' ? next.text : undefined;
    const field = 'field' in part ? part.field : 'ignored';
    return {
      kind: part.kind,
      text: part.kind === 'literal' ? part.text : '',
      field,
      fractional: part.kind === 'timestamp' && part.fractional,
      withPort: part.kind === 'remote' && part.withPort,
      padded: part.kind === 'text' && part.padded,
      stop,
      mayHaveOtherSplit: part.kind === 'text' && field !== 'ignored' && stop !== undefined,
    };
  });
}

function matchParts(
  steps: readonly Step[],
  line: string,
  recordAt: PrefixOptions['recordAt'],
): PrefixMatch | undefined {
  // Every key present from the start: one hidden class for all lines.
  const fields: LogPrefixFields = {
    timestamp: undefined,
    remoteHost: undefined,
    remotePort: undefined,
    user: undefined,
    database: undefined,
    pid: undefined,
    leaderPid: undefined,
    applicationName: undefined,
    sessionId: undefined,
    identityAmbiguous: undefined,
  };
  const end = matchFrom(steps, 0, line, 0, fields, recordAt ?? anyRecord);
  if (end < 0) return undefined;
  return { fields, end };
}

/** Role, database and application names are at most NAMEDATALEN - 1 = 63 bytes. */
const MAX_NAME_LENGTH = 63;

/**
 * Matches `steps[from..]` at `pos`, splitting each free-text value at the first
 * occurrence of the literal after it. With `recordAt`, also tries every later
 * occurrence a name could still reach; if any other split also matches the whole
 * prefix and is followed by a record, the fields are marked ambiguous.
 */
function matchFrom(
  steps: readonly Step[],
  from: number,
  line: string,
  start: number,
  fields: LogPrefixFields,
  recordAt: ((line: string, pos: number) => boolean) | undefined,
): number {
  let pos = start;
  for (let index = from; index < steps.length; index++) {
    const step = steps[index]!;
    const end = matchStep(step, line, pos, fields);
    if (end < 0) return -1;
    if (
      recordAt !== undefined &&
      step.mayHaveOtherSplit &&
      hasOtherSplit(steps, index, line, pos, end, step.stop!, recordAt)
    )
      fields.identityAmbiguous = true;
    pos = end;
  }
  return pos;
}

function hasOtherSplit(
  steps: readonly Step[],
  index: number,
  line: string,
  valueStart: number,
  firstEnd: number,
  stop: string,
  recordAt: (line: string, pos: number) => boolean,
): boolean {
  // A name is at most 63 characters, so only a literal starting within that bound can split
  // it another way: a search that did not stop there would scan the whole rest of the record
  // (the statement) for every name of every line. The window is searched with indexOf on a
  // copy of it: lastIndexOf, which takes a bound, is a call out of V8's compiled code.
  const from = firstEnd + 1;
  const window = line.slice(from, valueStart + MAX_NAME_LENGTH + stop.length);
  for (let at = window.indexOf(stop); at >= 0; at = window.indexOf(stop, at + 1)) {
    const end = matchFrom(steps, index + 1, line, from + at, {}, undefined);
    if (end >= 0 && recordAt(line, end)) return true;
  }
  return false;
}

/** Returns the offset after `step`, or -1 when the line does not match. */
function matchStep(step: Step, line: string, pos: number, fields: LogPrefixFields): number {
  switch (step.kind) {
    case 'literal':
      return line.startsWith(step.text, pos) ? pos + step.text.length : -1;
    case 'timestamp':
      return matchTimestamp(line, pos, step.fractional, step.stop, step.field, fields);
    case 'epoch': {
      const end = skipWhile(line, pos, isEpochChar);
      fields.timestamp = line.slice(pos, end);
      return end;
    }
    case 'number': {
      const end = skipWhile(line, pos, isDigit);
      if (step.field === 'pid') fields.pid = Number(line.slice(pos, end));
      // %P is empty for every process but a parallel worker.
      else if (step.field === 'leaderPid' && end > pos)
        fields.leaderPid = Number(line.slice(pos, end));
      return end;
    }
    case 'remote':
      return matchRemote(line, pos, step.withPort, step.stop, fields);
    case 'text': {
      const end = textEnd(line, pos, step.stop);
      // Empty for a process without one (a parallel or background worker has no user,
      // database or client): absent, as csvlog and jsonlog read it.
      if (end >= 0 && step.field !== 'ignored')
        setText(fields, step.field, textValue(line, pos, end, step.padded));
      return end;
    }
    case 'sessionEnd':
      return pos;
  }
}

/** Stores a free-text value; an empty one stays absent. */
function setText(fields: LogPrefixFields, field: StepField, value: string): void {
  if (value === '') return;
  // One named store per field rather than fields[field]: a keyed store with a varying key.
  switch (field) {
    case 'user':
      fields.user = value;
      return;
    case 'database':
      fields.database = value;
      return;
    case 'applicationName':
      fields.applicationName = value;
      return;
    case 'sessionId':
      fields.sessionId = value;
      return;
    default:
      // A text part's field is a TextField: TEXT_ESCAPES names no other.
      throw new Error(`prefix field ${field} is not a text field`);
  }
}

/** Without a `recordAt`, any line after a prefix counts. */
function anyRecord(): boolean {
  return true;
}

/** `YYYY-MM-DD HH:MM:SS[.mmm] ZONE`: fixed width, then a zone abbreviation or offset. */
function matchTimestamp(
  line: string,
  pos: number,
  fractional: boolean,
  stop: string | undefined,
  field: StepField,
  fields: LogPrefixFields,
): number {
  const width = fractional ? 23 : 19;
  if (
    line.length < pos + width + 2 ||
    line.charCodeAt(pos + 4) !== 45 ||
    line.charCodeAt(pos + 10) !== 32
  )
    return -1;
  let end = pos + width;
  if (line.charCodeAt(end) !== 32) return -1;
  end++;
  const stopCode = stop?.charCodeAt(0);
  while (end < line.length && line.charCodeAt(end) !== 32 && line.charCodeAt(end) !== stopCode)
    end++;
  if (field === 'timestamp') fields.timestamp = line.slice(pos, end);
  return end;
}

/** `host(port)`, `[local]`, or empty for background processes. */
function matchRemote(
  line: string,
  pos: number,
  withPort: boolean,
  stop: string | undefined,
  fields: LogPrefixFields,
): number {
  if (line.startsWith('[local]', pos)) {
    fields.remoteHost = '[local]';
    return pos + 7;
  }
  if (withPort) {
    // Host names and addresses never contain '(' so the first one opens the port.
    const open = line.indexOf('(', pos);
    if (open > pos && open - pos <= 255) {
      let close = open + 1;
      while (close < line.length && isDigit(line.charCodeAt(close))) close++;
      if (
        close > open + 1 &&
        line.charCodeAt(close) === 41 &&
        (stop === undefined || line.startsWith(stop, close + 1))
      ) {
        fields.remoteHost = line.slice(pos, open);
        fields.remotePort = Number(line.slice(open + 1, close));
        return close + 1;
      }
    }
    return stop !== undefined && line.startsWith(stop, pos) ? pos : -1;
  }
  const end = textEnd(line, pos, stop);
  if (end >= 0) {
    const value = line.slice(pos, end);
    if (value !== '') fields.remoteHost = value;
  }
  return end;
}

/** Where a free-text value starting at `pos` ends, or -1 when its end is not on the line. */
function textEnd(line: string, pos: number, stop: string | undefined): number {
  // Last escape of the prefix: runs to the first space (the severity follows it).
  return stop === undefined ? line.indexOf(' ', pos) : line.indexOf(stop, pos);
}

function textValue(line: string, pos: number, end: number, padded: boolean): string {
  const value = line.slice(pos, end);
  return padded ? value.trim() : value;
}

/** The offset of the first character from `pos` on that `accept` refuses (or the line's end). */
function skipWhile(line: string, pos: number, accept: (code: number) => boolean): number {
  let end = pos;
  while (end < line.length && accept(line.charCodeAt(end))) end++;
  return end;
}

function isEpochChar(code: number): boolean {
  return isDigit(code) || code === 46;
}

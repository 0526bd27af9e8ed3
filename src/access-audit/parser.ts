import { CsvError, splitCsv } from './csv';
import {
  compileLogPrefix,
  compileSessionlessPrefix,
  type PrefixMatch,
  type PrefixParser,
  RDS_LOG_LINE_PREFIX,
} from './prefix';
import type { AuditEvent, AuditType, LogPrefixFields, ParameterStatus } from './types';

/** Thrown for a record that is a pgAudit record but cannot be read (truncated, bad CSV). */
export class AuditRecordError extends Error {
  override readonly name = 'AuditRecordError';
}

/**
 * How the PostgreSQL log is written (`log_destination`): `stderr` lines with the
 * `log_line_prefix`, `csvlog` rows or PostgreSQL 15+ `jsonlog` objects. csvlog and
 * jsonlog are unambiguous: every field is delimited and the CONTEXT of a message is a
 * column of the same row.
 */
export type LogFormat = 'stderr' | 'csvlog' | 'jsonlog';

/** `pgaudit.log_level` values; the DEBUG levels are all logged as `DEBUG`. */
export type PgauditLogLevel =
  'debug5' | 'debug4' | 'debug3' | 'debug2' | 'debug1' | 'info' | 'notice' | 'warning' | 'log';

/** The severity word a `pgaudit.log_level` shows up as in the log. */
export function severityOf(level: PgauditLogLevel): string {
  return level.startsWith('debug') ? 'DEBUG' : level.toUpperCase();
}

/**
 * Every severity word pgAudit can write a record at (`pgaudit.log_level` with
 * `pgaudit.log_client = on`; LOG otherwise). A record at another one than the configured
 * level is still read: the level was changed where no statement shows it (the parameter
 * group), and dropping its records would silence the audit (`unexpected-audit-level`).
 */
const PGAUDIT_SEVERITIES: ReadonlySet<string> = new Set([
  'LOG',
  'WARNING',
  'NOTICE',
  'INFO',
  'DEBUG',
]);

function isRecordSeverity(severity: string, auditSeverity: string): boolean {
  return severity === auditSeverity || PGAUDIT_SEVERITIES.has(severity);
}

/**
 * One log record as the access audit sees it:
 * - `audit`: a pgAudit record at a severity pgAudit writes (`event.severity`; the
 *   configured `pgauditLogLevel` or another one), read field by field;
 * - `unreadable`: a record that claims to be one (`AUDIT: ` at such a severity) but
 *   cannot be read; `fields` are its prefix when the prefix could be read;
 * - `message`: any other line (CONTEXT, STATEMENT, ERROR, …), kept only so the
 *   forgery check can see what followed a record of the same process.
 *
 * `context` is the CONTEXT of the message when the format carries it in the same
 * record (csvlog, jsonlog; `''` for none) and `undefined` in stderr logs, where it
 * follows as its own line.
 */
export type LogEntry =
  | { kind: 'audit'; event: AuditEvent; context: string | undefined }
  | {
      kind: 'unreadable';
      error: string;
      record: string;
      fields: LogPrefixFields | undefined;
      severity: string;
      message: string;
      context: string | undefined;
    }
  | {
      kind: 'message';
      severity: string;
      pid: number | undefined;
      /** The text of a CONTEXT, STATEMENT or failure ({@link FAILURE_SEVERITIES}) line; `''` otherwise. */
      message: string;
      /** A failure's or STATEMENT line's writer, as the prefix (or csvlog/jsonlog) names it. */
      fields?: LogPrefixFields;
      /**
       * csvlog and jsonlog: the statement a failure interrupted (`query`, `statement`),
       * logged under `log_min_error_statement`. stderr writes it as a STATEMENT line.
       */
      statement?: string;
      /**
       * csvlog and jsonlog: a failure's CONTEXT (`context`), when it has one. stderr writes
       * it as a CONTEXT line.
       */
      context?: string;
    };

/** The server process that wrote an entry, as far as the entry says. */
export function pidOfEntry(entry: LogEntry): number | undefined {
  return entry.kind === 'audit'
    ? entry.event.pid
    : entry.kind === 'message'
      ? entry.pid
      : entry.fields?.pid;
}

/**
 * Severities of a message that ends a statement or a connection with an error; under
 * `log_min_error_statement` (ERROR by default) the statement follows. A refused attempt to
 * change a pgaudit setting leaves no pgAudit record (pgAudit logs a utility statement
 * after it ran), only these.
 */
export const FAILURE_SEVERITIES: ReadonlySet<string> = new Set(['ERROR', 'FATAL', 'PANIC']);
/** The stderr line that carries the statement of a failure. */
export const STATEMENT_SEVERITY = 'STATEMENT';

/** Whether a message line's text is kept (see {@link LogEntry}). */
function keepsText(severity: string): boolean {
  return (
    severity === CONTEXT_SEVERITY ||
    severity === STATEMENT_SEVERITY ||
    FAILURE_SEVERITIES.has(severity)
  );
}

/** Reads one complete log record (continuation lines already joined); `undefined` for a line of no interest. */
export type LogEntryParser = (record: string) => LogEntry | undefined;

const AUDIT_MARK = 'AUDIT: ';
/** pgAudit writes at least TYPE … PARAMETER; ROWS is optional. */
const MIN_FIELDS = 9;
const MAX_FIELDS = 10;
/** Lines that belong to the message before them; their text matters only for CONTEXT. */
export const CONTEXT_SEVERITY = 'CONTEXT';

/**
 * A Map, not an object literal: a bind value such as `constructor` is a whole PARAMETER
 * field too, and must not find Object.prototype's members.
 */
const PARAMETER_MARKERS: ReadonlyMap<string, ParameterStatus> = new Map([
  ['<none>', 'none'],
  ['<not logged>', 'not-logged'],
  ['<previously logged>', 'previously-logged'],
]);

/** Options for {@link createAuditParser} and {@link createLogEntryParser}. */
export interface AuditParserOptions {
  /** The server's `log_line_prefix` (stderr format only). @default "%t:%r:%u@%d:[%p]:" (RDS) */
  readonly logLinePrefix?: string;
  /** The log format. @default "stderr" */
  readonly logFormat?: LogFormat;
  /**
   * `pgaudit.log_level`: messages of this severity that start with `AUDIT: ` are records;
   * so are those at any other severity pgAudit can write (LOG, WARNING, NOTICE, INFO,
   * DEBUG), which the pipeline reports as `unexpected-audit-level`. @default "log"
   */
  readonly pgauditLogLevel?: PgauditLogLevel;
}

/** Parses one complete log record (continuation lines already joined). */
export type AuditRecordParser = (record: string) => AuditEvent | undefined;

/**
 * Builds a parser for complete log records of the given format. See {@link LogEntry}.
 * Only messages at a severity pgAudit writes whose text starts with `AUDIT: ` are
 * records: a `STATEMENT:`, `DETAIL:`, `CONTEXT:`, `HINT:` or `ERROR:` line quoting one
 * never is.
 *
 * @example
 * const parse = createLogEntryParser({ logFormat: 'stderr' });
 * parse('2026-11-22 22:39:36 UTC:10.0.0.5(36646):alice@appdb:[4273]:LOG:  AUDIT: SESSION,1,1,READ,SELECT,,,SELECT 1,<none>');
 * // → { kind: 'audit', event: { user: 'alice', command: 'SELECT', … }, context: undefined }
 */
export function createLogEntryParser(options: AuditParserOptions = {}): LogEntryParser {
  const severity = severityOf(options.pgauditLogLevel ?? 'log');
  switch (options.logFormat ?? 'stderr') {
    case 'stderr': {
      const prefix = options.logLinePrefix ?? RDS_LOG_LINE_PREFIX;
      const matchSession = compileLogPrefix(prefix, { recordAt: auditRecordAt });
      const matchSessionless = compileSessionlessPrefix(prefix, { recordAt: auditRecordAt });
      return (record) => parseStderrRecord(record, matchSession, matchSessionless, severity);
    }
    case 'csvlog':
      return (record) => parseCsvlogRecord(record, severity);
    case 'jsonlog':
      return (record) => parseJsonlogRecord(record, severity);
  }
}

/**
 * Builds a parser that returns the typed event for a pgAudit record and `undefined`
 * for any other log line, and throws {@link AuditRecordError} for a pgAudit record it
 * cannot read. It looks at one record alone: use {@link readAuditLog} or the
 * {@link AccessAuditPipeline} to also catch records forged with `RAISE`.
 */
export function createAuditParser(options: AuditParserOptions = {}): AuditRecordParser {
  const parse = createLogEntryParser(options);
  return (record) => {
    const entry = parse(record);
    if (entry === undefined || entry.kind === 'message') return undefined;
    if (entry.kind === 'unreadable') throw new AuditRecordError(entry.error);
    return entry.event;
  };
}

/**
 * A stderr record: read with the whole prefix (a session's line), or, when the prefix
 * has `%q`, with the part before it (the line of a process without a session: a parallel
 * worker, a `pg_cron` job), whichever is followed by a pgAudit record (else by any
 * message: a worker's CONTEXT line marks its RAISE'd record forged). A line that reads
 * as a record both ways (a role named like a record) is marked ambiguous. A line that
 * looks like a pgAudit record but reads as none is unreadable, never dropped.
 */
function parseStderrRecord(
  record: string,
  matchSession: PrefixParser,
  matchSessionless: PrefixParser | undefined,
  auditSeverity: string,
): LogEntry | undefined {
  const session = matchSession(record);
  const sessionless = matchSessionless?.(record);
  const sessionlessRecord = sessionless !== undefined && auditRecordAt(record, sessionless.end);
  let message: LogEntry | undefined;
  if (session !== undefined) {
    if (sessionlessRecord && auditRecordAt(record, session.end))
      session.fields.identityAmbiguous = true;
    message = afterPrefix(record, session, auditSeverity);
    if (message !== undefined && message.kind !== 'message') return message;
  }
  // Also a worker's CONTEXT line, which the forgery check must see as such under the
  // worker's pid: preferred to a session reading whose "severity" holds a space (split
  // inside the message at an '@' the worker's text carries).
  const other =
    sessionless === undefined ? undefined : afterPrefix(record, sessionless, auditSeverity);
  if (
    other !== undefined &&
    (other.kind !== 'message' || message === undefined || !other.severity.includes(' '))
  )
    return other;
  if (message !== undefined) return message;
  if (!looksLikeAudit(record)) return undefined;
  return unreadable('pgAudit record does not match the log_line_prefix', record, undefined, '');
}

/** The message after a prefix; `undefined` when no "SEVERITY:  " follows it. */
function afterPrefix(
  record: string,
  prefix: PrefixMatch,
  auditSeverity: string,
): LogEntry | undefined {
  // "<SEVERITY>:  message" follows the prefix, possibly after a space the prefix ends with.
  let pos = prefix.end;
  while (record.charCodeAt(pos) === 32) pos++;
  const colon = record.indexOf(':', pos);
  if (colon < 0 || colon - pos > 10 || record.charCodeAt(colon + 1) !== 32) return undefined;
  // The configured level (nearly every record) without a copy of the word.
  const severity =
    colon - pos === auditSeverity.length && record.startsWith(auditSeverity, pos)
      ? auditSeverity
      : record.slice(pos, colon);
  const messageStart = colon + 3;
  if (!record.startsWith(AUDIT_MARK, messageStart) || !isRecordSeverity(severity, auditSeverity)) {
    if (!keepsText(severity))
      return { kind: 'message', severity, pid: prefix.fields.pid, message: '' };
    return {
      kind: 'message',
      severity,
      pid: prefix.fields.pid,
      message: record.slice(messageStart),
      fields: prefix.fields,
    };
  }
  return auditEntry(record, messageStart, severity, prefix.fields, undefined);
}

/**
 * True when `SEVERITY:  AUDIT: ` starts at `pos` (after spaces): a severity word of at
 * most 10 characters without spaces (whatever the level or the language of the
 * messages), then pgAudit's mark.
 */
function auditRecordAt(line: string, pos: number): boolean {
  while (line.charCodeAt(pos) === 32) pos++;
  const colon = line.indexOf(':', pos);
  if (colon <= pos || colon - pos > 10) return false;
  const space = line.indexOf(' ', pos);
  if (space >= 0 && space < colon) return false;
  return line.startsWith('  ', colon + 1) && line.startsWith(AUDIT_MARK, colon + 3);
}

/** Reads the `AUDIT: …` text starting at `messageStart` of `text`. */
function auditEntry(
  text: string,
  messageStart: number,
  severity: string,
  prefix: LogPrefixFields,
  context: string | undefined,
): LogEntry {
  try {
    const fields = splitCsv(text, messageStart + AUDIT_MARK.length);
    return { kind: 'audit', event: toEvent(fields, severity, prefix), context };
  } catch (error) {
    const reason =
      error instanceof CsvError
        ? `pgAudit record is not valid CSV: ${error.message}`
        : error instanceof AuditRecordError
          ? error.message
          : undefined;
    if (reason === undefined) throw error;
    return {
      ...unreadable(reason, text, prefix, severity),
      message: text.slice(messageStart),
      context,
    };
  }
}

function unreadable(
  error: string,
  record: string,
  fields: LogPrefixFields | undefined,
  severity: string,
): Extract<LogEntry, { kind: 'unreadable' }> {
  return {
    kind: 'unreadable',
    error,
    record,
    fields,
    severity,
    message: record,
    context: undefined,
  };
}

function looksLikeAudit(record: string): boolean {
  const mark = record.indexOf(':  AUDIT: ');
  return mark >= 0 && mark < 400;
}

/** csvlog columns (PostgreSQL 13–17 share the first 23). */
const CSV = {
  time: 0,
  user: 1,
  database: 2,
  pid: 3,
  connectionFrom: 4,
  sessionId: 5,
  severity: 11,
  message: 13,
  context: 18,
  /** The statement of an error, under log_min_error_statement. */
  query: 19,
  applicationName: 22,
  /** PostgreSQL 14+; empty unless the process is a parallel worker. */
  leaderPid: 24,
} as const;
const CSV_MIN_COLUMNS = 23;

function parseCsvlogRecord(record: string, auditSeverity: string): LogEntry | undefined {
  let columns: string[];
  try {
    columns = splitCsv(record);
  } catch (error) {
    if (!(error instanceof CsvError)) throw error;
    return record.includes(AUDIT_MARK)
      ? unreadable(`csvlog row is not valid CSV: ${error.message}`, record, undefined, '')
      : undefined;
  }
  if (columns.length < CSV_MIN_COLUMNS) {
    return record.includes(AUDIT_MARK)
      ? unreadable(`csvlog row has ${columns.length} columns`, record, undefined, '')
      : undefined;
  }
  const severity = columns[CSV.severity]!;
  const message = columns[CSV.message]!;
  const pid = optionalInteger(columns[CSV.pid]!);
  const isRecord = message.startsWith(AUDIT_MARK) && isRecordSeverity(severity, auditSeverity);
  if (!isRecord && !FAILURE_SEVERITIES.has(severity))
    return { kind: 'message', severity, pid, message };
  const { host, port } = splitConnection(columns[CSV.connectionFrom]!);
  const fields: LogPrefixFields = {
    timestamp: columns[CSV.time]!,
    remoteHost: host,
    remotePort: port,
    user: optionalText(columns[CSV.user]!),
    database: optionalText(columns[CSV.database]!),
    pid,
    leaderPid: optionalInteger(columns[CSV.leaderPid] ?? ''),
    applicationName: optionalText(columns[CSV.applicationName]!),
    sessionId: optionalText(columns[CSV.sessionId]!),
    identityAmbiguous: undefined,
  };
  if (!isRecord) {
    const statement = optionalText(columns[CSV.query] ?? '');
    const context = optionalText(columns[CSV.context]!);
    return {
      kind: 'message',
      severity,
      pid,
      message,
      fields,
      ...(statement === undefined ? {} : { statement }),
      ...(context === undefined ? {} : { context }),
    };
  }
  return auditEntry(message, 0, severity, fields, columns[CSV.context]!);
}

/** csvlog's connection_from: `host:port`, `[local]`, or empty. */
function splitConnection(value: string): { host?: string; port?: number } {
  if (value === '') return {};
  const colon = value.lastIndexOf(':');
  const port = colon < 0 ? undefined : optionalInteger(value.slice(colon + 1));
  return port === undefined ? { host: value } : { host: value.slice(0, colon), port };
}

/**
 * An empty column is a value the process does not have (a worker's user and database, a
 * client without application_name): absent, as jsonlog (which leaves the key out) and a
 * stderr prefix read it. No role or database name is empty.
 */
function optionalText(text: string): string | undefined {
  return text === '' ? undefined : text;
}

function optionalInteger(text: string): number | undefined {
  if (!/^\d+$/.test(text)) return undefined;
  return Number(text);
}

function parseJsonlogRecord(record: string, auditSeverity: string): LogEntry | undefined {
  let json: Record<string, unknown>;
  try {
    const parsed: unknown = JSON.parse(record);
    if (typeof parsed !== 'object' || parsed === null) throw new Error('not a JSON object');
    json = parsed as Record<string, unknown>;
  } catch (error) {
    return record.includes(AUDIT_MARK)
      ? unreadable(`jsonlog line is not JSON: ${(error as Error).message}`, record, undefined, '')
      : undefined;
  }
  const text = (key: string) => (typeof json[key] === 'string' ? json[key] : undefined);
  const number = (key: string) => (typeof json[key] === 'number' ? json[key] : undefined);
  const severity = text('error_severity') ?? '';
  const message = text('message') ?? '';
  const isRecord = message.startsWith(AUDIT_MARK) && isRecordSeverity(severity, auditSeverity);
  if (!isRecord && !FAILURE_SEVERITIES.has(severity))
    return { kind: 'message', severity, pid: number('pid'), message };
  const fields: LogPrefixFields = {
    timestamp: text('timestamp'),
    remoteHost: text('remote_host'),
    remotePort: number('remote_port'),
    user: text('user'),
    database: text('dbname'),
    pid: number('pid'),
    leaderPid: number('leader_pid'),
    applicationName: text('application_name'),
    sessionId: text('session_id'),
    identityAmbiguous: undefined,
  };
  if (!isRecord) {
    const statement = text('statement');
    const context = text('context');
    return {
      kind: 'message',
      severity,
      pid: fields.pid,
      message,
      fields,
      ...(statement === undefined ? {} : { statement }),
      ...(context === undefined || context === '' ? {} : { context }),
    };
  }
  return auditEntry(message, 0, severity, fields, text('context') ?? '');
}

function toEvent(fields: string[], severity: string, prefix: LogPrefixFields): AuditEvent {
  if (fields.length < MIN_FIELDS || fields.length > MAX_FIELDS) {
    throw new AuditRecordError(
      `pgAudit record has ${fields.length} fields, expected ${MIN_FIELDS} or ${MAX_FIELDS}`,
    );
  }
  const [
    type,
    statementId,
    substatementId,
    auditClass,
    command,
    objectType,
    objectName,
    statement,
    parameter,
    rows,
  ] = fields as [
    string,
    string,
    string,
    string,
    string,
    string,
    string,
    string,
    string,
    string | undefined,
  ];
  if (type !== 'SESSION' && type !== 'OBJECT')
    throw new AuditRecordError(`unknown pgAudit record type "${type}"`);
  const marker = parameterMarker(parameter);
  const parameters = marker === undefined ? parseParameters(parameter) : [];
  // One object literal with every key in a fixed order: V8 keeps a single hidden
  // class for all events, which is what keeps parsing allocation-cheap.
  return {
    timestamp: prefix.timestamp,
    time: prefix.timestamp === undefined ? undefined : toIsoTime(prefix.timestamp),
    remoteHost: prefix.remoteHost,
    remotePort: prefix.remotePort,
    user: prefix.user,
    database: prefix.database,
    pid: prefix.pid,
    leaderPid: prefix.leaderPid,
    applicationName: prefix.applicationName,
    sessionId: prefix.sessionId,
    identityAmbiguous: prefix.identityAmbiguous,
    severity,
    auditType: type as AuditType,
    statementId: toInteger(statementId, 'STATEMENT_ID'),
    substatementId: toInteger(substatementId, 'SUBSTATEMENT_ID'),
    auditClass,
    command,
    objectType,
    objectName,
    statement,
    parameterStatus: marker ?? 'logged',
    parameters,
    rows: rows === undefined ? undefined : toInteger(rows, 'ROWS'),
  };
}

/**
 * The event an alert carries for a record that could not be read as pgAudit fields:
 * the prefix's identity, and the message text as the statement so the responder sees it.
 */
export function placeholderEvent(
  fields: LogPrefixFields,
  severity: string,
  message: string,
): AuditEvent {
  return {
    timestamp: fields.timestamp,
    time: fields.timestamp === undefined ? undefined : toIsoTime(fields.timestamp),
    remoteHost: fields.remoteHost,
    remotePort: fields.remotePort,
    user: fields.user,
    database: fields.database,
    pid: fields.pid,
    leaderPid: fields.leaderPid,
    applicationName: fields.applicationName,
    sessionId: fields.sessionId,
    identityAmbiguous: fields.identityAmbiguous,
    severity,
    auditType: 'SESSION',
    statementId: 0,
    substatementId: 0,
    auditClass: '',
    command: '',
    objectType: '',
    objectName: '',
    statement: message,
    parameterStatus: 'none',
    parameters: [],
    rows: undefined,
  };
}

function toInteger(text: string, field: string): number {
  const value = Number(text);
  if (text === '' || !Number.isSafeInteger(value) || value < 0) {
    throw new AuditRecordError(`pgAudit ${field} "${text.slice(0, 40)}" is not a number`);
  }
  return value;
}

/** The marker a PARAMETER field is (`<none>`, …), or `undefined` for a list of values. */
function parameterMarker(field: string): ParameterStatus | undefined {
  // Every marker starts with '<': no lookup for the common list of values.
  return field.charCodeAt(0) === 60 ? PARAMETER_MARKERS.get(field) : undefined;
}

/**
 * PARAMETER, when no marker: itself a CSV list, quoted again as one field of the record.
 */
function parseParameters(field: string): string[] {
  try {
    return splitCsv(field);
  } catch (error) {
    throw new AuditRecordError(
      `pgAudit PARAMETER list is not valid CSV: ${(error as Error).message}`,
    );
  }
}

/**
 * `2026-11-22 22:39:36 UTC` → `2026-11-22T22:39:36Z`. Zone abbreviations other
 * than UTC/GMT are ambiguous, so only those and numeric offsets are converted;
 * `%n` (epoch seconds) is converted too.
 */
export function toIsoTime(timestamp: string): string | undefined {
  // Fast path for the RDS format, which is UTC.
  if (timestamp.length === 23 && timestamp.endsWith(' UTC')) {
    return `${timestamp.slice(0, 10)}T${timestamp.slice(11, 19)}Z`;
  }
  if (/^\d+(\.\d+)?$/.test(timestamp)) {
    const date = new Date(Number(timestamp) * 1000);
    return Number.isNaN(date.getTime()) ? undefined : date.toISOString();
  }
  const space = timestamp.lastIndexOf(' ');
  if (space !== 19 && space !== 23) return undefined;
  const local = `${timestamp.slice(0, 10)}T${timestamp.slice(11, space)}`;
  const zone = timestamp.slice(space + 1);
  if (zone === 'UTC' || zone === 'GMT') return `${local}Z`;
  const offset = /^([+-])(\d\d)(?::?(\d\d))?$/.exec(zone);
  if (offset === null) return undefined;
  return `${local}${offset[1]}${offset[2]}:${offset[3] ?? '00'}`;
}

import { CsvError, splitCsv } from './csv';
import { compileLogPrefix, type PrefixParser, RDS_LOG_LINE_PREFIX } from './prefix';
import type { AuditEvent, AuditType, LogPrefixFields, ParameterStatus } from './types';

/** Thrown for a record that is a pgAudit record but cannot be read (truncated, bad CSV). */
export class AuditRecordError extends Error {
  override readonly name = 'AuditRecordError';
}

const AUDIT_MARK = 'AUDIT: ';
/** pgAudit writes at least TYPE … PARAMETER; ROWS is optional. */
const MIN_FIELDS = 9;
const MAX_FIELDS = 10;

const PARAMETER_MARKERS: Readonly<Record<string, ParameterStatus>> = {
  '<none>': 'none',
  '<not logged>': 'not-logged',
  '<previously logged>': 'previously-logged',
};

/** Options for {@link createAuditParser}. */
export interface AuditParserOptions {
  /** The server's `log_line_prefix`. @default "%t:%r:%u@%d:[%p]:" (RDS) */
  readonly logLinePrefix?: string;
}

/** Parses one complete log record (continuation lines already joined). */
export type AuditRecordParser = (record: string) => AuditEvent | undefined;

/**
 * Builds a parser for complete log records. It returns the typed event for a pgAudit
 * record and `undefined` for any other log line (connection messages, errors,
 * `STATEMENT:` lines), and throws {@link AuditRecordError} for a pgAudit record it
 * cannot read, so a caller can count it.
 */
export function createAuditParser(options: AuditParserOptions = {}): AuditRecordParser {
  const matchPrefix = compileLogPrefix(options.logLinePrefix ?? RDS_LOG_LINE_PREFIX);
  return (record) => parseRecord(record, matchPrefix);
}

function parseRecord(record: string, matchPrefix: PrefixParser): AuditEvent | undefined {
  const prefix = matchPrefix(record);
  if (prefix === undefined) {
    if (looksLikeAudit(record))
      throw new AuditRecordError('pgAudit record does not match the log_line_prefix');
    return undefined;
  }
  // "<SEVERITY>:  AUDIT: " follows the prefix, possibly after a space the prefix ends with.
  let pos = prefix.end;
  while (record.charCodeAt(pos) === 32) pos++;
  const colon = record.indexOf(':', pos);
  if (colon < 0 || colon - pos > 10) return undefined;
  const messageStart = colon + 3;
  if (record.charCodeAt(colon + 1) !== 32 || !record.startsWith(AUDIT_MARK, messageStart))
    return undefined;
  const severity = record.slice(pos, colon);
  let fields: string[];
  try {
    fields = splitCsv(record, messageStart + AUDIT_MARK.length);
  } catch (error) {
    if (error instanceof CsvError)
      throw new AuditRecordError(`pgAudit record is not valid CSV: ${error.message}`);
    throw error;
  }
  return toEvent(fields, severity, prefix.fields);
}

function looksLikeAudit(record: string): boolean {
  const mark = record.indexOf(':  AUDIT: ');
  return mark >= 0 && mark < 400;
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
  const { parameterStatus, parameters } = parseParameters(parameter);
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
    applicationName: prefix.applicationName,
    sessionId: prefix.sessionId,
    severity,
    auditType: type as AuditType,
    statementId: toInteger(statementId, 'STATEMENT_ID'),
    substatementId: toInteger(substatementId, 'SUBSTATEMENT_ID'),
    auditClass,
    command,
    objectType,
    objectName,
    statement,
    parameterStatus,
    parameters,
    rows: rows === undefined ? undefined : toInteger(rows, 'ROWS'),
  };
}

function toInteger(text: string, field: string): number {
  const value = Number(text);
  if (text === '' || !Number.isSafeInteger(value) || value < 0) {
    throw new AuditRecordError(`pgAudit ${field} "${text.slice(0, 40)}" is not a number`);
  }
  return value;
}

/**
 * PARAMETER is itself a CSV list, quoted again as one field of the record, or a
 * marker such as `<none>`.
 */
function parseParameters(field: string): {
  parameterStatus: ParameterStatus;
  parameters: string[];
} {
  const marker = PARAMETER_MARKERS[field];
  if (marker !== undefined) return { parameterStatus: marker, parameters: [] };
  try {
    return { parameterStatus: 'logged', parameters: splitCsv(field) };
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

import type { AuditEvent, Verdict } from '../types';

/**
 * One column of the activity archive: the key of every archived JSON line and the Glue
 * table column Athena (and Firehose's Parquet conversion) read it as. The Glue table is
 * built from this list, so the archive's lines and its table cannot drift apart.
 */
export interface ArchiveColumn {
  readonly name: string;
  /** Hive/Glue type. */
  readonly type: 'string' | 'bigint' | 'int' | 'boolean' | 'array<string>';
  readonly comment: string;
}

/** Every column of an archived activity event, in table order. */
export const ARCHIVE_COLUMNS = [
  {
    name: 'event_id',
    type: 'string',
    comment:
      'Kinesis event id / position in the record: unique per event; a retried record is archived again under the same id, so count DISTINCT event_id',
  },
  { name: 'cluster_resource_id', type: 'string', comment: 'DbClusterResourceId of the source' },
  { name: 'instance_id', type: 'string', comment: 'DB instance that recorded the event' },
  {
    name: 'event_time',
    type: 'string',
    comment:
      'Statement start, ISO 8601 with microseconds (DAS startTime); from_iso8601_timestamp() reads it',
  },
  { name: 'db_user', type: 'string', comment: 'Database role that ran the statement' },
  { name: 'database_name', type: 'string', comment: 'Database' },
  { name: 'remote_host', type: 'string', comment: 'Client address' },
  { name: 'remote_port', type: 'int', comment: 'Client port' },
  { name: 'application_name', type: 'string', comment: 'Client application_name' },
  { name: 'session_id', type: 'string', comment: 'DAS session id' },
  { name: 'pid', type: 'int', comment: 'Backend process id' },
  { name: 'class', type: 'string', comment: 'READ, WRITE, ROLE, DDL, FUNCTION, MISC, ...' },
  { name: 'command', type: 'string', comment: 'Command tag: SELECT, GRANT, CREATE ROLE, ...' },
  { name: 'object_type', type: 'string', comment: 'TABLE, VIEW, ... or empty' },
  { name: 'object_name', type: 'string', comment: 'Schema-qualified object, or empty' },
  { name: 'statement', type: 'string', comment: 'Statement text (see truncated)' },
  { name: 'parameters', type: 'array<string>', comment: 'Bind values (see truncated)' },
  { name: 'row_count', type: 'bigint', comment: 'Rows read or written, when recorded' },
  { name: 'exit_code', type: 'int', comment: 'Non-zero: the statement or login failed' },
  { name: 'error_message', type: 'string', comment: 'Error of a failed statement or login' },
  { name: 'statement_id', type: 'bigint', comment: 'Statement number per backend' },
  { name: 'substatement_id', type: 'bigint', comment: 'Sub-statement number' },
  {
    name: 'verdict',
    type: 'string',
    comment: 'What the access-audit rules made of it: alert, pass, noise, excluded, canary',
  },
  { name: 'rule', type: 'string', comment: 'Alert rule, ignore rule or exclusion reason' },
  { name: 'severity', type: 'string', comment: 'Alert severity' },
  {
    name: 'truncated',
    type: 'boolean',
    comment:
      'True when parameters, statement or error_message were cut to fit a 1,000 KiB Firehose record',
  },
] as const satisfies readonly ArchiveColumn[];

/** Name of an archive column. */
export type ArchiveColumnName = (typeof ARCHIVE_COLUMNS)[number]['name'];

/** One archived activity event: a JSON line whose keys are the archive columns. */
export type ArchiveRecord = { [name in ArchiveColumnName]: unknown };

/** Where an archived event came from. */
export interface ArchiveOrigin {
  /** The Kinesis record's event id (`shardId-…:sequence`), or its sequence number. */
  kinesisEventId: string;
  /** Position of the event in the decrypted record. */
  position: number;
  clusterResourceId: string;
  instanceId?: string;
}

/**
 * Firehose takes records up to 1,000 KiB; a line is kept under this many bytes so the
 * trailing newline and any JSON escaping margin fit.
 */
export const MAX_ARCHIVE_LINE_BYTES = 1_000_000;

/**
 * The archive line of one event: its columns as JSON plus a newline (Firehose concatenates
 * records; one event per line keeps the objects newline-delimited JSON). A line that
 * would exceed {@link MAX_ARCHIVE_LINE_BYTES} loses its bind values, then as much of the
 * statement text (and error message) as needed, and is flagged `truncated`: never dropped,
 * never passed off as whole.
 *
 * @example
 * archiveLine(event, { kind: 'pass' }, { kinesisEventId: 'shardId-0:495…', position: 0, clusterResourceId })
 * // → '{"event_id":"shardId-0:495…/0",…,"verdict":"pass",…,"truncated":false}\n'
 */
export function archiveLine(event: AuditEvent, verdict: Verdict, origin: ArchiveOrigin): string {
  let record = archiveRecord(event, verdict, origin);
  // The free-text columns, longest first in practice; each is cut only if still needed.
  for (const column of ['parameters', 'statement', 'error_message'] as const) {
    const line = JSON.stringify(record);
    // A UTF-16 unit is at most 3 bytes of UTF-8: most lines need no count.
    if (line.length * 3 <= MAX_ARCHIVE_LINE_BYTES) return `${line}\n`;
    const size = Buffer.byteLength(line);
    if (size <= MAX_ARCHIVE_LINE_BYTES) return `${line}\n`;
    record = { ...record, truncated: true, [column]: cut(record[column], size) };
  }
  return `${JSON.stringify(record)}\n`;
}

/** `value` shortened by enough to take `size` bytes of JSON under the limit. */
function cut(value: unknown, size: number): unknown {
  if (Array.isArray(value)) return [];
  if (typeof value !== 'string') return value;
  const room = MAX_ARCHIVE_LINE_BYTES - (size - Buffer.byteLength(JSON.stringify(value)));
  // Escaping can make one UTF-16 unit cost up to 6 bytes of JSON: cut by that worst case.
  return value.slice(0, Math.max(0, Math.floor((room - 2) / 6)));
}

/** The archive columns of one event. */
export function archiveRecord(
  event: AuditEvent,
  verdict: Verdict,
  origin: ArchiveOrigin,
): ArchiveRecord {
  return {
    event_id: `${origin.kinesisEventId}/${origin.position}`,
    cluster_resource_id: origin.clusterResourceId,
    instance_id: origin.instanceId ?? null,
    event_time: event.time ?? event.timestamp ?? null,
    db_user: event.user ?? null,
    database_name: event.database ?? null,
    remote_host: event.remoteHost ?? null,
    remote_port: event.remotePort ?? null,
    application_name: event.applicationName ?? null,
    session_id: event.sessionId ?? null,
    pid: event.pid ?? null,
    class: event.auditClass,
    command: event.command,
    object_type: event.objectType,
    object_name: event.objectName,
    statement: event.statement,
    parameters: event.parameters,
    row_count: event.rows ?? null,
    exit_code: event.exitCode ?? null,
    error_message: event.errorMessage ?? null,
    statement_id: event.statementId,
    substatement_id: event.substatementId,
    ...verdictColumns(verdict),
    truncated: false,
  };
}

function verdictColumns(verdict: Verdict): Pick<ArchiveRecord, 'verdict' | 'rule' | 'severity'> {
  switch (verdict.kind) {
    case 'alert':
      return { verdict: 'alert', rule: verdict.alert.rule, severity: verdict.alert.severity };
    case 'noise':
      return { verdict: 'noise', rule: verdict.reason, severity: null };
    case 'excluded':
      return { verdict: 'excluded', rule: verdict.rule ?? verdict.reason, severity: null };
    default:
      return { verdict: verdict.kind, rule: null, severity: null };
  }
}

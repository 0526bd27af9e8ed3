import type { AuditEvent } from '../types';
import {
  dasActivityEventSchema,
  describeIssues,
  isPlainActivityEvent,
  type DasActivityEvent,
} from './record';

/** RDS's own maintenance role: its activity is not the customer's and is dropped. */
const RDS_ADMIN = 'rdsadmin';

/** What became of one activity event of a decrypted record. */
export type NormalizedDasEvent =
  | { kind: 'event'; event: AuditEvent }
  | { kind: 'dropped'; reason: 'heartbeat' | 'rdsadmin' }
  | { kind: 'invalid'; error: string };

/**
 * Turns one DAS activity event into the access event the pgAudit parser produces, so
 * the same rule engine, noise filters and service-account exclusions apply. DAS on
 * Aurora PostgreSQL uses pgAudit's classes (`READ`, `WRITE`, `ROLE`, `DDL`, …), so a
 * `GRANT` arrives as class `ROLE` and alerts as a privilege change. Heartbeats and
 * `rdsadmin` activity are dropped; an event without the fields every rule reads is
 * `invalid`, never guessed.
 *
 * @example
 * normalizeDasEvent({ type: 'record', class: 'ROLE', command: 'GRANT', dbUserName: 'alice', … })
 * // → { kind: 'event', event: { auditClass: 'ROLE', command: 'GRANT', user: 'alice', … } }
 */
export function normalizeDasEvent(raw: unknown): NormalizedDasEvent {
  let das: DasActivityEvent;
  // The event itself when the schema would accept it as it is (zod copies the same
  // values into a new object); zod where it would not, for the message that says why.
  if (isPlainActivityEvent(raw)) das = raw;
  else {
    const parsed = dasActivityEventSchema.safeParse(raw);
    if (!parsed.success) return { kind: 'invalid', error: describeIssues(parsed.error) };
    das = parsed.data;
  }
  if (das.type === 'heartbeat') return { kind: 'dropped', reason: 'heartbeat' };
  if (das.dbUserName === RDS_ADMIN) return { kind: 'dropped', reason: 'rdsadmin' };
  if (!hasText(das.class) || !hasText(das.command) || !hasText(das.dbUserName)) {
    const missing = REQUIRED_TEXT.filter((field) => !hasText(das[field]));
    return { kind: 'invalid', error: `activity event without ${missing.join(', ')}` };
  }
  return { kind: 'event', event: toAuditEvent(das) };
}

/** The fields every rule reads, in the order an invalid event's error names them. */
const REQUIRED_TEXT = ['class', 'command', 'dbUserName'] as const;

/** A non-empty string. Read field by field above: a list of field names read by key cost a keyed load each per event. */
function hasText(value: unknown): value is string {
  return typeof value === 'string' && value !== '';
}

function toAuditEvent(das: DasActivityEvent): AuditEvent {
  const parameters =
    das.paramList == null || das.paramList.length === 0
      ? []
      : das.paramList.map((value) => (typeof value === 'string' ? value : JSON.stringify(value)));
  const event: AuditEvent = {
    severity: 'LOG',
    auditType: 'SESSION',
    statementId: integer(das.statementId) ?? 0,
    substatementId: integer(das.substatementId) ?? 0,
    auditClass: das.class!,
    command: das.command!,
    objectType: das.objectType ?? '',
    objectName: das.objectName ?? '',
    statement: das.commandText ?? '',
    parameterStatus: parameters.length > 0 ? 'logged' : 'none',
    parameters,
    user: das.dbUserName!,
  };
  // Only the fields the event has: an absent field is absent, never `undefined`. Stored
  // one by one, in this order (the key order of every JSON made of the event): a helper
  // taking the key made each store a megamorphic keyed store (BENCHMARKS 6).
  if (das.startTime != null) {
    event.timestamp = das.startTime;
    const time = dasTimeToIso(das.startTime);
    if (time !== undefined) event.time = time;
  }
  if (das.databaseName != null) event.database = das.databaseName;
  if (das.remoteHost != null) event.remoteHost = das.remoteHost;
  const remotePort = integer(das.remotePort);
  if (remotePort !== undefined) event.remotePort = remotePort;
  const pid = integer(das.pid);
  if (pid !== undefined) event.pid = pid;
  if (das.clientApplication != null) event.applicationName = das.clientApplication;
  if (das.sessionId != null) event.sessionId = das.sessionId;
  const rows = integer(das.rowCount);
  if (rows !== undefined) event.rows = rows;
  const exitCode = integer(das.exitCode);
  if (exitCode !== undefined) event.exitCode = exitCode;
  if (das.errorMessage != null) event.errorMessage = das.errorMessage;
  return event;
}

/**
 * `2026-11-22 22:39:36.940668+00` (DAS's `startTime`) → `2026-11-22T22:39:36.940668+00:00`,
 * keeping the microseconds; `undefined` for any other shape.
 */
export function dasTimeToIso(time: string): string | undefined {
  const match = /^(\d{4}-\d\d-\d\d)[ T](\d\d:\d\d:\d\d(?:\.\d{1,9})?)(Z|[+-]\d\d(?::?\d\d)?)$/.exec(
    time,
  );
  if (match === null) return undefined;
  const zone = match[3]!;
  const offset =
    zone === 'Z' ? 'Z' : `${zone.slice(0, 3)}:${zone.slice(3).replace(':', '') || '00'}`;
  return `${match[1]}T${match[2]}${offset}`;
}

function integer(value: number | string | null | undefined): number | undefined {
  if (value === null || value === undefined || value === '') return undefined;
  const number = typeof value === 'number' ? value : Number(value);
  return Number.isSafeInteger(number) ? number : undefined;
}

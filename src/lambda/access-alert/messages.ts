import { createHash } from 'node:crypto';
import type { MessageAttributeValue } from '@aws-sdk/client-sns';
import { hasNoIdentity, UNKNOWN_IDENTITY, UNKNOWN_USER } from '../../access-audit/identity';
import { AUDIT_TAMPERING_ATTEMPT_RULE, AUDIT_TAMPERING_RULE } from '../../access-audit/rules';
import type { AccessAlert, AlertSeverity, AuditEvent } from '../../access-audit/types';

/** Where an alert's record came from in CloudWatch Logs. */
export interface LogSource {
  logGroup: string;
  logStream: string;
  logEventId: string;
}

/** An alert with its log location, as the Lambda delivers it. */
export interface LocatedAlert {
  alert: AccessAlert;
  source: LogSource;
}

/** Settings that shape messages (from `accessAudit.alerts`). */
export interface MessageSettings {
  subjectPrefix: string;
  maxStatementLength: number;
}

/** One SNS publish request's content. */
export interface SnsMessage {
  subject: string;
  /** `MessageStructure: json` body: text for e-mail, JSON for HTTPS/SQS/Lambda. */
  message: string;
  attributes: Record<string, MessageAttributeValue>;
}

const SEVERITY_ORDER: readonly AlertSeverity[] = ['low', 'medium', 'high', 'critical'];
/** SNS caps subjects at 100 characters. */
const MAX_SUBJECT = 100;
/** SNS and SQS messages are at most 256 KB, attributes and subject included: keep a margin. */
const MESSAGE_BUDGET_BYTES = 240 * 1024;

/** How much of each alert goes into a message; shrunk step by step until it fits. */
export interface MessageLimits {
  statement: number;
  /** Characters of each parameter value. */
  parameter: number;
  /** Parameter values kept. */
  parameters: number;
  /** Alerts listed in a digest. */
  digestEntries: number;
}

function limitSteps(settings: MessageSettings): MessageLimits[] {
  return [
    { statement: settings.maxStatementLength, parameter: 1000, parameters: 100, digestEntries: 50 },
    {
      statement: Math.min(settings.maxStatementLength, 1000),
      parameter: 200,
      parameters: 20,
      digestEntries: 20,
    },
    { statement: 200, parameter: 0, parameters: 0, digestEntries: 5 },
  ];
}

/** The event with its statement and parameters cut to `limits`, and what was cut. */
export function boundedEvent(
  event: AuditEvent,
  limits: MessageLimits,
): { event: AuditEvent; truncated: boolean } {
  const statement = truncate(event.statement, limits.statement);
  const parameters = event.parameters
    .slice(0, limits.parameters)
    .map((value) => truncate(value, limits.parameter));
  const truncated =
    statement.truncated ||
    parameters.length < event.parameters.length ||
    parameters.some((value) => value.truncated);
  return {
    event: {
      ...event,
      statement: statement.statement,
      parameters: parameters.map((value) => value.statement),
    },
    truncated,
  };
}

/**
 * The statement with literals, numbers, parameters and whitespace normalised:
 * `UPDATE t SET a = 'x' WHERE id = 7` and `… = 'y' WHERE id = 8` share a fingerprint.
 */
export function statementFingerprint(statement: string): string {
  return statement
    .replace(/'(?:[^']|'')*'/g, '?')
    .replace(/\$\d+/g, '?')
    .replace(/\b\d+(?:\.\d+)?\b/g, '?')
    .replace(/\s+/g, ' ')
    .trim()
    .toLowerCase();
}

/**
 * A stable key for incident platforms (PagerDuty `dedup_key`, Opsgenie alias) and
 * consumers that deduplicate: the same rule, user, database and statement fingerprint
 * always give the same key, so repeats of one activity group into one incident. An act of
 * audit tampering is keyed by the act instead (see {@link TAMPERING_ACT_RULES}).
 */
export function alertDedupKey(located: LocatedAlert): string {
  const { alert } = located;
  let key = dedupKeys.get(alert);
  if (key === undefined) {
    key = computeDedupKey(located);
    dedupKeys.set(alert, key);
  }
  return key;
}

/**
 * The rules that report one act of audit tampering: `audit-tampering` from its pgAudit
 * records, `audit-tampering-attempt` from the server's error that ended it (carrying the
 * records when both came in one delivery). Split across two deliveries (two Lambda
 * invocations, in either order), the act alerts under both rules, so their key is the
 * act's, not the rule's: the server (log group and stream: the instance), the session
 * (pid, `%c` session id, client address and port), user, database and the statement
 * text as sent (the whole query string: every record of a multi-statement string carries
 * it, as does the error's STATEMENT; a substatement's record, a `DO` block's `PERFORM`,
 * its block's text when the log showed it: `AccessAlert.act`). The same text again in
 * the same session is the same key (the error names no statement id to tell them apart).
 */
const TAMPERING_ACT_RULES: ReadonlySet<string> = new Set([
  AUDIT_TAMPERING_RULE.name,
  AUDIT_TAMPERING_ATTEMPT_RULE.name,
]);

/**
 * Keys already computed, by alert: one alert message puts its key in the JSON document
 * and in an attribute, and the queue's document again (the fingerprint's four regular
 * expressions and a SHA-256 each time). An alert is not changed once made.
 */
const dedupKeys = new WeakMap<AccessAlert, string>();

function computeDedupKey({ alert, source }: LocatedAlert): string {
  const { event } = alert;
  const parts = TAMPERING_ACT_RULES.has(alert.rule)
    ? [
        'audit-tampering act',
        source.logGroup,
        source.logStream,
        String(event.pid ?? ''),
        event.sessionId ?? '',
        event.remoteHost ?? '',
        String(event.remotePort ?? ''),
        event.user ?? '',
        event.database ?? '',
        alert.act ?? event.statement,
      ]
    : [alert.rule, event.user ?? '', event.database ?? '', statementFingerprint(event.statement)];
  return createHash('sha256').update(parts.join('\u0000')).digest('hex').slice(0, 32);
}

/** The JSON document HTTPS, SQS and Lambda subscribers receive for one alert (format version 1). */
export function alertDocument(
  located: LocatedAlert,
  settings: MessageSettings,
  limits: MessageLimits = limitSteps(settings)[0]!,
): Record<string, unknown> {
  return documentOf(located, boundedEvent(located.alert.event, limits));
}

/** {@link alertDocument} of an event already cut to the message's limits. */
function documentOf(
  located: LocatedAlert,
  { event, truncated }: ReturnType<typeof boundedEvent>,
): Record<string, unknown> {
  const { alert, source } = located;
  return {
    version: 1,
    kind: 'alert',
    rule: alert.rule,
    severity: alert.severity,
    summary: alert.summary,
    dedupKey: alertDedupKey(located),
    ...(alert.actingAs === undefined ? {} : { actingAs: alert.actingAs }),
    event,
    truncated,
    source,
  };
}

/**
 * One message per alert: readable text for e-mail, the JSON document for machines. The
 * event is cut once per size step for both, and the subject and attributes (which no
 * step changes) are made once.
 */
export function alertMessage(located: LocatedAlert, settings: MessageSettings): SnsMessage {
  const { alert } = located;
  const subjectLine = subject(
    `${settings.subjectPrefix} ${alert.severity.toUpperCase()} ${alert.rule}: ${alert.summary}`,
  );
  const attributes = compactAttributes({
    kind: stringAttribute('alert'),
    severity: stringAttribute(alert.severity),
    rule: stringAttribute(alert.rule),
    user: stringAttribute(alert.event.user),
    database: stringAttribute(alert.event.database),
    auditClass: stringAttribute(alert.event.auditClass),
    command: stringAttribute(alert.event.command),
    dedupKey: stringAttribute(alertDedupKey(located)),
  });
  return fitted(settings, (limits) => {
    const bounded = boundedEvent(alert.event, limits);
    return {
      subject: subjectLine,
      message: structured(
        textOf(located, bounded, limits),
        JSON.stringify(documentOf(located, bounded)),
      ),
      attributes,
    };
  });
}

/** Where an unreadable record sits in its stream, and why it could not be read. */
export interface UnreadableRecord {
  streamArn: string;
  sequenceNumber: string;
  partitionKey?: string;
  errors: readonly string[];
}

/** Unreadable records listed one by one in an alert; the rest are counted. */
const UNREADABLE_LISTED = 20;

/**
 * The alert for stream records that could not be read (malformed, tampered, or under
 * the wrong key): they may hide activity, so they are raised like a critical alert. One
 * message for a run of such records, so a wrong cluster resource id (every record
 * unreadable) sends one message per batch, not one per record; it says how many.
 *
 * @example
 * unreadableRecordMessage([{ streamArn, sequenceNumber, errors: ['decrypt: …'] }], settings);
 */
export function unreadableRecordMessage(
  records: readonly UnreadableRecord[],
  settings: MessageSettings,
): SnsMessage {
  const first = records[0]!;
  const listed = records.slice(0, UNREADABLE_LISTED);
  const errors = distinct(records.flatMap((record) => record.errors)).slice(0, 10);
  const text = [
    records.length === 1
      ? 'A Database Activity Stream record could not be read and may hide activity.'
      : `${records.length} Database Activity Stream records could not be read and may hide activity.`,
    `Stream: ${first.streamArn}`,
    ...listed.map(
      (record) =>
        `Sequence number: ${record.sequenceNumber}${record.partitionKey ? ` (partition key ${record.partitionKey})` : ''}`,
    ),
    ...(records.length > listed.length
      ? [`… and ${records.length - listed.length} more (see the failure queue)`]
      : []),
    `Errors: ${errors.join('; ')}`,
    'The records themselves are in the decrypt function\'s failure queue. See README "Database Activity Streams".',
  ].join('\n');
  const count = records.length === 1 ? '' : `${records.length} unreadable records `;
  return {
    subject: subject(
      `${settings.subjectPrefix} CRITICAL unreadable-das-record: ${count}${first.streamArn}`,
    ),
    message: structured(
      text,
      JSON.stringify({
        kind: 'unreadable-record',
        severity: 'critical',
        count: records.length,
        streamArn: first.streamArn,
        records: listed,
        errors,
      }),
    ),
    attributes: compactAttributes({
      kind: stringAttribute('unreadable-record'),
      severity: stringAttribute('critical'),
      rule: stringAttribute('unreadable-das-record'),
    }),
  };
}

/** One message for many alerts that arrived together. */
export function digestMessage(
  alerts: readonly LocatedAlert[],
  settings: MessageSettings,
): SnsMessage {
  const severity = highestSeverity(alerts.map((located) => located.alert.severity));
  // The JSON's and the attribute's user list keep '?' for a record without a user; the
  // text a reader sees says it in words.
  const users = distinct(alerts.map((located) => located.alert.event.user ?? '?'));
  const userNames = distinct(
    alerts.map((located) =>
      hasNoIdentity(located.alert.event) ? UNKNOWN_IDENTITY : (located.alert.event.user ?? '?'),
    ),
  );
  const rules = distinct(alerts.map((located) => located.alert.rule));
  return fitted(settings, (limits) => {
    const listed = alerts.slice(0, limits.digestEntries);
    const more =
      alerts.length > listed.length
        ? [`… and ${alerts.length - listed.length} more (see the Lambda's log group)`]
        : [];
    const text = [
      `Access audit digest: ${alerts.length} alerts (highest severity ${severity})`,
      `Users: ${userNames.join(', ')}`,
      `Rules: ${rules.join(', ')}`,
      '',
      ...listed.map(
        ({ alert }) =>
          `- [${alert.severity}] ${alert.rule}: ${alert.event.time ?? alert.event.timestamp ?? ''} ${alert.summary}`,
      ),
      ...more,
      '',
      sourceLine(alerts[0]!.source),
      'Runbook: README "When an alert fires".',
    ].join('\n');
    const json = JSON.stringify({
      version: 1,
      kind: 'digest',
      count: alerts.length,
      severity,
      users,
      rules,
      alerts: listed.map((located) =>
        alertDocument(located, settings, { ...limits, statement: Math.min(limits.statement, 500) }),
      ),
    });
    return {
      subject: subject(
        `${settings.subjectPrefix} ${severity.toUpperCase()} ${alerts.length} access alerts: ${userNames.join(', ')}`,
      ),
      message: structured(text, json),
      attributes: compactAttributes({
        kind: stringAttribute('digest'),
        severity: stringAttribute(severity),
        rule: arrayAttribute(rules),
        user: arrayAttribute(users),
        alertCount: { DataType: 'Number', StringValue: String(alerts.length) },
      }),
    };
  });
}

/**
 * `MessageStructure: json`: text for e-mail (and the default), JSON for machines. The
 * text of `JSON.stringify({ default: text, email: text, https: json, http: json, sqs:
 * json, lambda: json })`, with each string escaped once instead of once per protocol:
 * escaping the document four times was a third of an alert's cost (BENCHMARKS 6).
 */
function structured(text: string, json: string): string {
  const textJson = JSON.stringify(text);
  const documentJson = JSON.stringify(json);
  return `{"default":${textJson},"email":${textJson},"https":${documentJson},"http":${documentJson},"sqs":${documentJson},"lambda":${documentJson}}`;
}

/** Builds with the largest limits whose result fits SNS's size limit. */
function fitted(
  settings: MessageSettings,
  build: (limits: MessageLimits) => SnsMessage,
): SnsMessage {
  const steps = limitSteps(settings);
  for (const limits of steps.slice(0, -1)) {
    const message = build(limits);
    // A UTF-16 unit is at most 3 bytes of UTF-8: most messages fit without a count.
    const units = message.message.length + message.subject.length;
    if (
      units * 3 <= MESSAGE_BUDGET_BYTES ||
      Buffer.byteLength(message.message) + Buffer.byteLength(message.subject) <=
        MESSAGE_BUDGET_BYTES
    )
      return message;
  }
  return build(steps[steps.length - 1]!);
}

/** The e-mail text of one alert. */
export function alertText(
  located: LocatedAlert,
  settings: MessageSettings,
  limits: MessageLimits = limitSteps(settings)[0]!,
): string {
  return textOf(located, boundedEvent(located.alert.event, limits), limits);
}

/** {@link alertText} of an event already cut to `limits`. */
function textOf(
  located: LocatedAlert,
  { event, truncated }: ReturnType<typeof boundedEvent>,
  limits: MessageLimits,
): string {
  const { alert, source } = located;
  const lines = [
    `Access audit alert: ${alert.rule} (severity ${alert.severity})`,
    '',
    `Who:        ${hasNoIdentity(event) ? UNKNOWN_USER : (event.user ?? 'unknown: the log names no user')}`,
    `From:       ${formatRemote(event)}`,
    `Database:   ${event.database ?? 'unknown'}`,
    `When:       ${event.time ?? event.timestamp ?? '?'}`,
    `Command:    ${event.command} (class ${event.auditClass}, ${event.auditType})`,
    `Object:     ${event.objectName === '' ? '-' : `${event.objectType} ${event.objectName}`.trim()}`,
    ...(event.rows === undefined ? [] : [`Rows:       ${event.rows}`]),
    // Database Activity Streams record failed statements and logins with their exit code;
    // a refused attempt read from the PostgreSQL log has the server's error, no code.
    ...(event.exitCode !== undefined && event.exitCode !== 0
      ? [`Failed:     exit code ${event.exitCode}${failure(event.errorMessage, limits)}`]
      : event.exitCode === undefined && event.errorMessage !== undefined
        ? [`Failed:     ${event.severity}${failure(event.errorMessage, limits)}`]
        : []),
    ...(event.parameterStatus === 'logged'
      ? [`Parameters: ${event.parameters.map(quoteParameter).join(', ')}`]
      : []),
    `Statement${truncated ? ' (truncated)' : ''}:`,
    ...event.statement.split('\n').map((line) => `  ${line}`),
    '',
    `Session:    pid ${event.pid ?? '?'}, statement ${event.statementId}.${event.substatementId}`,
    sourceLine(source),
    'Runbook: README "When an alert fires".',
  ];
  return lines.join('\n');
}

function failure(errorMessage: string | undefined, limits: MessageLimits): string {
  if (errorMessage === undefined || errorMessage === '') return '';
  return `: ${truncate(errorMessage.replace(/[\r\n]+/g, ' '), limits.statement).statement}`;
}

function sourceLine(source: LogSource): string {
  return `Log:        ${source.logGroup} / ${source.logStream} (event ${source.logEventId})`;
}

function formatRemote(event: AuditEvent): string {
  if (event.remoteHost === undefined)
    return hasNoIdentity(event) ? 'none (no client connection)' : 'unknown (not in the log)';
  return event.remotePort === undefined
    ? event.remoteHost
    : `${event.remoteHost} port ${event.remotePort}`;
}

function quoteParameter(value: string): string {
  return `'${value.replace(/'/g, "''")}'`;
}

function truncate(text: string, max: number): { statement: string; truncated: boolean } {
  return text.length <= max
    ? { statement: text, truncated: false }
    : { statement: `${text.slice(0, max)}…`, truncated: true };
}

/** SNS subjects: printable ASCII, no line breaks, at most 100 characters. */
function subject(text: string): string {
  const clean = text.replace(/[\r\n\t]+/g, ' ').replace(/[^\x20-\x7e]/g, '?');
  return clean.length <= MAX_SUBJECT ? clean : `${clean.slice(0, MAX_SUBJECT - 3)}...`;
}

function stringAttribute(value: string | undefined): MessageAttributeValue | undefined {
  return value === undefined || value === ''
    ? undefined
    : { DataType: 'String', StringValue: value };
}

function arrayAttribute(values: readonly string[]): MessageAttributeValue {
  return { DataType: 'String.Array', StringValue: JSON.stringify(values) };
}

/** The attributes that have a value, in order (a loop: entries and fromEntries cost a tenth of an alert). */
function compactAttributes(
  attributes: Record<string, MessageAttributeValue | undefined>,
): Record<string, MessageAttributeValue> {
  const compact: Record<string, MessageAttributeValue> = {};
  for (const name of Object.keys(attributes)) {
    const value = attributes[name];
    if (value !== undefined) compact[name] = value;
  }
  return compact;
}

/** The most severe of `severities`. */
export function highestSeverity(severities: readonly AlertSeverity[]): AlertSeverity {
  return severities.reduce<AlertSeverity>(
    (worst, next) => (SEVERITY_ORDER.indexOf(next) > SEVERITY_ORDER.indexOf(worst) ? next : worst),
    'low',
  );
}

function distinct(values: readonly string[]): string[] {
  return [...new Set(values)];
}

import type { MessageAttributeValue } from '@aws-sdk/client-sns';
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
/** Digest lists are cut so a message stays far below SNS's 256 KB. */
const MAX_DIGEST_LINES = 200;

/** The JSON document HTTPS and SQS subscribers receive for one alert (format version 1). */
export function alertDocument(
  located: LocatedAlert,
  settings: MessageSettings,
): Record<string, unknown> {
  const { alert, source } = located;
  const { statement, truncated } = truncate(alert.event.statement, settings.maxStatementLength);
  return {
    version: 1,
    kind: 'alert',
    rule: alert.rule,
    severity: alert.severity,
    summary: alert.summary,
    event: { ...alert.event, statement },
    statementTruncated: truncated,
    source,
  };
}

/** One message per alert: readable text for e-mail, the JSON document for machines. */
export function alertMessage(located: LocatedAlert, settings: MessageSettings): SnsMessage {
  const { alert } = located;
  const text = alertText(located, settings);
  const json = JSON.stringify(alertDocument(located, settings));
  return {
    subject: subject(
      `${settings.subjectPrefix} ${alert.severity.toUpperCase()} ${alert.rule}: ${alert.summary}`,
    ),
    message: JSON.stringify({
      default: text,
      email: text,
      'email-json': json,
      https: json,
      http: json,
      sqs: json,
      lambda: json,
    }),
    attributes: compactAttributes({
      kind: stringAttribute('alert'),
      severity: stringAttribute(alert.severity),
      rule: stringAttribute(alert.rule),
      user: stringAttribute(alert.event.user),
      database: stringAttribute(alert.event.database),
      auditClass: stringAttribute(alert.event.auditClass),
      command: stringAttribute(alert.event.command),
    }),
  };
}

/** One message for many alerts that arrived together. */
export function digestMessage(
  alerts: readonly LocatedAlert[],
  settings: MessageSettings,
): SnsMessage {
  const severity = highestSeverity(alerts.map((located) => located.alert.severity));
  const users = distinct(alerts.map((located) => located.alert.event.user ?? '?'));
  const rules = distinct(alerts.map((located) => located.alert.rule));
  const lines = alerts
    .slice(0, MAX_DIGEST_LINES)
    .map(
      ({ alert }) =>
        `- [${alert.severity}] ${alert.rule}: ${alert.event.time ?? alert.event.timestamp ?? ''} ${alert.summary}`,
    );
  const more =
    alerts.length > MAX_DIGEST_LINES
      ? [`… and ${alerts.length - MAX_DIGEST_LINES} more (see the log group)`]
      : [];
  const text = [
    `Access audit digest: ${alerts.length} alerts (highest severity ${severity})`,
    `Users: ${users.join(', ')}`,
    `Rules: ${rules.join(', ')}`,
    '',
    ...lines,
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
    alerts: alerts.slice(0, MAX_DIGEST_LINES).map((located) => alertDocument(located, settings)),
  });
  return {
    subject: subject(
      `${settings.subjectPrefix} ${severity.toUpperCase()} ${alerts.length} access alerts: ${users.join(', ')}`,
    ),
    message: JSON.stringify({
      default: text,
      email: text,
      'email-json': json,
      https: json,
      http: json,
      sqs: json,
      lambda: json,
    }),
    attributes: compactAttributes({
      kind: stringAttribute('digest'),
      severity: stringAttribute(severity),
      rule: arrayAttribute(rules),
      user: arrayAttribute(users),
      alertCount: { DataType: 'Number', StringValue: String(alerts.length) },
    }),
  };
}

/** The e-mail text of one alert. */
export function alertText(located: LocatedAlert, settings: MessageSettings): string {
  const { alert, source } = located;
  const event = alert.event;
  const { statement, truncated } = truncate(event.statement, settings.maxStatementLength);
  const lines = [
    `Access audit alert: ${alert.rule} (severity ${alert.severity})`,
    '',
    `Who:        ${event.user ?? '?'}`,
    `From:       ${formatRemote(event)}`,
    `Database:   ${event.database ?? '?'}`,
    `When:       ${event.time ?? event.timestamp ?? '?'}`,
    `Command:    ${event.command} (class ${event.auditClass}, ${event.auditType})`,
    `Object:     ${event.objectName === '' ? '-' : `${event.objectType} ${event.objectName}`.trim()}`,
    ...(event.rows === undefined ? [] : [`Rows:       ${event.rows}`]),
    ...(event.parameterStatus === 'logged'
      ? [`Parameters: ${event.parameters.map(quoteParameter).join(', ')}`]
      : []),
    `Statement${truncated ? ' (truncated)' : ''}:`,
    ...statement.split('\n').map((line) => `  ${line}`),
    '',
    `Session:    pid ${event.pid ?? '?'}, statement ${event.statementId}.${event.substatementId}`,
    sourceLine(source),
    'Runbook: README "When an alert fires".',
  ];
  return lines.join('\n');
}

function sourceLine(source: LogSource): string {
  return `Log:        ${source.logGroup} / ${source.logStream} (event ${source.logEventId})`;
}

function formatRemote(event: AuditEvent): string {
  if (event.remoteHost === undefined) return '?';
  return event.remotePort === undefined
    ? event.remoteHost
    : `${event.remoteHost} port ${event.remotePort}`;
}

function quoteParameter(value: string): string {
  const shown = value.length > 200 ? `${value.slice(0, 200)}…` : value;
  return `'${shown.replace(/'/g, "''")}'`;
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

function compactAttributes(
  attributes: Record<string, MessageAttributeValue | undefined>,
): Record<string, MessageAttributeValue> {
  return Object.fromEntries(
    Object.entries(attributes).filter(
      (entry): entry is [string, MessageAttributeValue] => entry[1] !== undefined,
    ),
  );
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

import { PublishCommand, type SNSClient } from '@aws-sdk/client-sns';
import {
  SendMessageBatchCommand,
  type SendMessageBatchRequestEntry,
  type SQSClient,
} from '@aws-sdk/client-sqs';
import {
  AccessAuditPipeline,
  type Classified as PipelineOutcome,
} from '../../access-audit/pipeline';
import { splitLogRecords } from '../../access-audit/records';
import type { AuditEvent, Verdict } from '../../access-audit/types';
import {
  alertDocument,
  boundedEvent,
  type MessageLimits,
  type MessageSettings,
  alertMessage,
  digestMessage,
  type LocatedAlert,
  type LogSource,
  type SnsMessage,
} from './messages';
import { sizedBatches } from '../shared/sized-batches';
import { ACCESS_AUDIT_METRICS } from './metrics';
import { decodePayload, PayloadError, toLogEvent, type SubscriptionPayload } from './payload';
import { failedStatementFilter, type RawLogEvent } from './raw-events';
import type { AlertLambdaSettings } from './settings';

/** What the processor needs from Powertools Metrics. */
export interface MetricsSink {
  addMetric(name: string, unit: 'Count', value: number): void;
}

/** What the processor needs from Powertools Logger. */
export interface LogSink {
  info(message: string, extra?: Record<string, unknown>): void;
  warn(message: string, extra?: Record<string, unknown>): void;
  error(message: string, extra?: Record<string, unknown>): void;
}

/** Everything one invocation works with. */
export interface ProcessorDeps {
  settings: AlertLambdaSettings;
  sns: SNSClient;
  /** Required when `settings.queueUrl` is set. */
  sqs?: SQSClient;
  metrics: MetricsSink;
  logger: LogSink;
}

/** Counts of one invocation (also returned by the handler, handy in tests and logs). */
export interface ProcessingStats {
  logEvents: number;
  auditEvents: number;
  alerts: number;
  noise: number;
  excluded: number;
  /** Of `excluded`: parallel workers' records folded into their leader's. */
  parallelWorkerRecords: number;
  passed: number;
  /** The liveness canary's records. */
  canaries: number;
  /** Unreadable payloads, log events and pgAudit records, each skipped. */
  parseErrors: number;
  /** SNS and SQS delivery failures. */
  monitorErrors: number;
  snsMessages: number;
  sqsMessages: number;
  control: boolean;
}

/** An event with its verdict and where it came from. */
export interface Classified {
  event: AuditEvent;
  verdict: Verdict;
  source: LogSource;
}

/** Thrown after delivery failed, so Lambda retries the invocation (asynchronous invocations retry twice). */
export class DeliveryError extends Error {
  override readonly name = 'DeliveryError';
}

const SQS_BATCH = 10;
const SQS_BATCH_BYTES = 240 * 1024;

/**
 * Builds the per-payload processor. Malformed input is counted and skipped (an
 * unreadable record with a readable prefix also alerts); only delivery failures throw.
 */
export function createProcessor(deps: ProcessorDeps): (event: unknown) => Promise<ProcessingStats> {
  const { config } = deps.settings;
  const rawForward =
    config.sqs.forward === 'events' && config.sqs.format !== 'kit'
      ? failedStatementFilter(config)
      : undefined;
  return async (event) => {
    const stats = emptyStats();
    let payload: SubscriptionPayload;
    try {
      payload = decodePayload(event);
    } catch (error) {
      if (!(error instanceof PayloadError)) throw error;
      stats.parseErrors++;
      deps.logger.warn('skipped a malformed subscription payload', { reason: error.message });
      recordMetrics(deps.metrics, stats, []);
      return stats;
    }
    if (payload.messageType === 'CONTROL_MESSAGE') {
      stats.control = true;
      recordMetrics(deps.metrics, stats, []);
      return stats;
    }
    const { classified, logEvents } = classifyAll(payload, config, stats, deps.logger);
    const alerts = classified.flatMap((item) =>
      item.verdict.kind === 'alert' ? [{ alert: item.verdict.alert, source: item.source }] : [],
    );
    // One structured line per alert: the dashboard's "recent alerts" widget queries these.
    for (const { alert, source } of alerts) {
      deps.logger.info('access alert', {
        rule: alert.rule,
        severity: alert.severity,
        summary: alert.summary,
        user: alert.event.user,
        database: alert.event.database,
        remoteHost: alert.event.remoteHost,
        auditClass: alert.event.auditClass,
        command: alert.event.command,
        objectName: alert.event.objectName,
        logEventId: source.logEventId,
      });
    }
    await publishAlerts(alerts, deps, stats);
    await forwardToQueue(
      [
        ...kitEntries(classified, alerts, deps.settings),
        ...(rawForward ? rawEntries(classified, logEvents, rawForward, deps.settings) : []),
      ],
      deps,
      stats,
    );
    recordMetrics(deps.metrics, stats, alerts);
    deps.logger.info('processed subscription payload', {
      logGroup: payload.logGroup,
      logStream: payload.logStream,
      ...stats,
    });
    if (stats.monitorErrors > 0)
      throw new DeliveryError(`${stats.monitorErrors} alert deliveries failed`);
    return stats;
  };
}

/** Counters of one invocation, all zero; shared by the pgAudit and DAS Lambdas. */
export function emptyStats(): ProcessingStats {
  return {
    logEvents: 0,
    auditEvents: 0,
    alerts: 0,
    noise: 0,
    excluded: 0,
    parallelWorkerRecords: 0,
    passed: 0,
    canaries: 0,
    parseErrors: 0,
    monitorErrors: 0,
    snsMessages: 0,
    sqsMessages: 0,
    control: false,
  };
}

/**
 * Runs every record of the payload through the same pipeline `pgaudit scan` uses. One
 * pipeline per payload: a payload is one log stream, in order.
 */
function classifyAll(
  payload: SubscriptionPayload,
  config: AlertLambdaSettings['config'],
  stats: ProcessingStats,
  logger: LogSink,
): { classified: Classified[]; logEvents: RawLogEvent[] } {
  const classified: Classified[] = [];
  const logEvents: RawLogEvent[] = [];
  const pipeline = new AccessAuditPipeline<LogSource>(config, { scope: payload.logStream });
  const take = (outcomes: PipelineOutcome<LogSource>[]) => {
    for (const outcome of outcomes) {
      if (outcome.kind === 'unreadable' || outcome.error !== undefined) {
        stats.parseErrors++;
        logger.warn('unreadable pgAudit record', {
          reason: outcome.error,
          logEventId: outcome.tag.logEventId,
        });
      }
      if (outcome.kind === 'unreadable') continue;
      stats.auditEvents++;
      count(stats, outcome.verdict);
      if (outcome.verdict.kind === 'canary')
        logger.info('canary seen', {
          nonce: outcome.verdict.nonce,
          user: outcome.event.user,
          database: outcome.event.database,
          logEventId: outcome.tag.logEventId,
        });
      classified.push({ event: outcome.event, verdict: outcome.verdict, source: outcome.tag });
    }
  };
  for (const entry of payload.logEvents) {
    stats.logEvents++;
    const logEvent = toLogEvent(entry);
    if (logEvent === undefined) {
      stats.parseErrors++;
      logger.warn('skipped a log event without id, timestamp and message');
      continue;
    }
    logEvents.push({ ...logEvent, logGroup: payload.logGroup, logStream: payload.logStream });
    splitLogRecords(logEvent.message, pipeline.logFormat).forEach((record, index) => {
      const logEventId = index === 0 ? logEvent.id : `${logEvent.id}-${index}`;
      take(
        pipeline.push(record, {
          logGroup: payload.logGroup,
          logStream: payload.logStream,
          logEventId,
        }),
      );
    });
  }
  take(pipeline.flush());
  return { classified, logEvents };
}

function count(stats: ProcessingStats, verdict: Verdict): void {
  if (verdict.kind === 'alert') stats.alerts++;
  else if (verdict.kind === 'noise') stats.noise++;
  else if (verdict.kind === 'excluded') {
    stats.excluded++;
    if (verdict.reason === 'parallel-worker') stats.parallelWorkerRecords++;
  } else if (verdict.kind === 'canary') stats.canaries++;
  else stats.passed++;
}

/** One message per alert, or one digest when more than `digestThreshold` arrived together (also used by the DAS decrypt Lambda). */
export async function publishAlerts(
  alerts: readonly LocatedAlert[],
  deps: ProcessorDeps,
  stats: ProcessingStats,
): Promise<void> {
  if (alerts.length === 0) return;
  const { alerts: settings } = deps.settings.config;
  const messages =
    alerts.length > settings.digestThreshold
      ? [digestMessage(alerts, settings)]
      : alerts.map((located) => alertMessage(located, settings));
  for (const message of messages) await publishMessage(message, deps, stats);
}

/**
 * Publishes one message to the alert topic (also used by the DAS decrypt Lambda). False
 * when SNS refused it: counted as a monitor error and logged, for the caller to retry.
 */
export async function publishMessage(
  message: SnsMessage,
  deps: Pick<ProcessorDeps, 'sns' | 'logger'> & { settings: Pick<AlertLambdaSettings, 'topicArn'> },
  stats: ProcessingStats,
): Promise<boolean> {
  try {
    await deps.sns.send(
      new PublishCommand({
        TopicArn: deps.settings.topicArn,
        Subject: message.subject,
        Message: message.message,
        MessageStructure: 'json',
        MessageAttributes: message.attributes,
      }),
    );
    stats.snsMessages++;
    return true;
  } catch (error) {
    stats.monitorErrors++;
    deps.logger.error('SNS publish failed', {
      error: (error as Error).message,
      subject: message.subject,
    });
    return false;
  }
}

/** One message for the queue, before it gets its batch id. */
export interface QueueMessage {
  /** Kept apart from the body: the ignore lists and FIFO fields read it. */
  readonly user: string | undefined;
  readonly database: string | undefined;
  readonly logStream: string;
  readonly deduplicationId: string;
  readonly body: unknown;
  /** The SQS attribute `format`, set when the queue carries raw events. */
  readonly format?: 'raw' | 'kit';
}

/** The kit's JSON: alerts, or with `forward: "events"` every event that is neither noise nor excluded (also used by the DAS decrypt Lambda). */
export function kitEntries(
  classified: readonly Classified[],
  alerts: readonly LocatedAlert[],
  settings: AlertLambdaSettings,
): QueueMessage[] {
  const { sqs, alerts: messages } = settings.config;
  if (settings.queueUrl === undefined || sqs.format === 'raw') return [];
  const format = sqs.format === 'both' ? ({ format: 'kit' } as const) : {};
  if (sqs.forward === 'alerts')
    return alerts.map((located) => ({
      user: located.alert.event.user,
      database: located.alert.event.database,
      logStream: located.source.logStream,
      deduplicationId: located.source.logEventId,
      body: alertDocument(located, messages),
    }));
  return forwardedEvents(classified).map((item) => ({
    user: item.event.user,
    database: item.event.database,
    logStream: item.source.logStream,
    deduplicationId: item.source.logEventId,
    body: eventDocument(item, messages),
    ...format,
  }));
}

/** With `forward: "events"`, the events the queue gets: alerts and passes. */
export function forwardedEvents(classified: readonly Classified[]): Classified[] {
  return classified.filter((item) => item.verdict.kind === 'alert' || item.verdict.kind === 'pass');
}

/**
 * `sqs.format` raw/both: each CloudWatch log event, as delivered, that holds a forwarded
 * record (after the queue's ignore lists) or reports a failed statement, in log order.
 */
function rawEntries(
  classified: readonly Classified[],
  logEvents: readonly RawLogEvent[],
  failedStatement: (message: string) => boolean,
  settings: AlertLambdaSettings,
): QueueMessage[] {
  if (settings.queueUrl === undefined) return [];
  const ignoreUsers = new Set(settings.config.sqs.ignoreUsers);
  const ignoreDatabases = new Set(settings.config.sqs.ignoreDatabases);
  // A log event's records are tagged <id> and <id>-<n> (see classifyAll).
  const withRecords = new Set(
    forwardedEvents(classified)
      .filter(
        ({ event }) =>
          !ignoreUsers.has(event.user ?? '') && !ignoreDatabases.has(event.database ?? ''),
      )
      .map(({ source }) => source.logEventId.replace(/-\d+$/, '')),
  );
  return logEvents
    .filter((logEvent) => withRecords.has(logEvent.id) || failedStatement(logEvent.message))
    .map((logEvent) => ({
      // Already filtered: the ignore lists do not apply again.
      user: undefined,
      database: undefined,
      logStream: logEvent.logStream,
      deduplicationId: `raw-${logEvent.id}`,
      body: {
        id: logEvent.id,
        timestamp: logEvent.timestamp,
        message: logEvent.message,
        logGroup: logEvent.logGroup,
        logStream: logEvent.logStream,
      },
      format: 'raw' as const,
    }));
}

/**
 * Sends the messages to the optional queue, in batches of ten (and under SQS's batch
 * size), after the queue's ignore lists; refused messages count as monitor errors (also
 * used by the DAS decrypt Lambda).
 */
export async function forwardToQueue(
  messages: readonly QueueMessage[],
  deps: ProcessorDeps,
  stats: ProcessingStats,
): Promise<void> {
  const { queueUrl, fifo, config } = deps.settings;
  if (queueUrl === undefined || deps.sqs === undefined) return;
  const ignoreUsers = new Set(config.sqs.ignoreUsers);
  const ignoreDatabases = new Set(config.sqs.ignoreDatabases);
  const entries = messages
    .filter(
      ({ user, database }) => !ignoreUsers.has(user ?? '') && !ignoreDatabases.has(database ?? ''),
    )
    .map((message, index): SendMessageBatchRequestEntry => ({
      Id: `m${index}`,
      MessageBody: JSON.stringify(message.body),
      ...(message.format && {
        MessageAttributes: { format: { DataType: 'String', StringValue: message.format } },
      }),
      // FIFO: one group per instance keeps its order; the log event id makes retries idempotent.
      ...(fifo
        ? {
            MessageGroupId: message.logStream || 'default',
            MessageDeduplicationId: message.deduplicationId.slice(0, 128),
          }
        : {}),
    }));
  // SQS limits a whole batch to 256 KB: split by size as well as by count.
  const batches = sizedBatches(entries, SQS_BATCH, SQS_BATCH_BYTES, (entry) =>
    Buffer.byteLength(entry.MessageBody ?? ''),
  );
  for (const batch of batches) {
    try {
      const result = await deps.sqs.send(
        new SendMessageBatchCommand({ QueueUrl: queueUrl, Entries: batch }),
      );
      const failed = result.Failed ?? [];
      stats.sqsMessages += batch.length - failed.length;
      if (failed.length > 0) {
        stats.monitorErrors += failed.length;
        deps.logger.error('SQS rejected messages', { failed });
      }
    } catch (error) {
      stats.monitorErrors += batch.length;
      deps.logger.error('SQS send failed', { error: (error as Error).message });
    }
  }
}

function eventDocument(item: Classified, settings: MessageSettings): Record<string, unknown> {
  const alert =
    item.verdict.kind === 'alert'
      ? { rule: item.verdict.alert.rule, severity: item.verdict.alert.severity }
      : {};
  const { event, truncated } = boundedEvent(item.event, FORWARD_LIMITS(settings));
  return { version: 1, kind: 'event', ...alert, event, truncated, source: item.source };
}

/** What one forwarded event may carry; a batch of ten stays within SQS's 256 KB. */
const FORWARD_LIMITS = (settings: MessageSettings): MessageLimits => ({
  statement: settings.maxStatementLength,
  parameter: 1000,
  parameters: 20,
  digestEntries: 0,
});

function recordMetrics(
  metrics: MetricsSink,
  stats: ProcessingStats,
  alerts: readonly LocatedAlert[],
): void {
  const byClass = (auditClass: string) =>
    alerts.filter((located) => located.alert.event.auditClass === auditClass).length;
  metrics.addMetric(ACCESS_AUDIT_METRICS.auditEvents, 'Count', stats.auditEvents);
  metrics.addMetric(ACCESS_AUDIT_METRICS.alerts, 'Count', stats.alerts);
  metrics.addMetric(ACCESS_AUDIT_METRICS.humanDml, 'Count', byClass('WRITE'));
  metrics.addMetric(ACCESS_AUDIT_METRICS.humanReads, 'Count', byClass('READ'));
  metrics.addMetric(ACCESS_AUDIT_METRICS.privilegeChanges, 'Count', byClass('ROLE'));
  metrics.addMetric(ACCESS_AUDIT_METRICS.ddl, 'Count', byClass('DDL'));
  metrics.addMetric(ACCESS_AUDIT_METRICS.noise, 'Count', stats.noise);
  metrics.addMetric(ACCESS_AUDIT_METRICS.excluded, 'Count', stats.excluded);
  metrics.addMetric(
    ACCESS_AUDIT_METRICS.parallelWorkerRecords,
    'Count',
    stats.parallelWorkerRecords,
  );
  metrics.addMetric(ACCESS_AUDIT_METRICS.parseErrors, 'Count', stats.parseErrors);
  metrics.addMetric(ACCESS_AUDIT_METRICS.canarySeen, 'Count', stats.canaries);
  metrics.addMetric(ACCESS_AUDIT_METRICS.monitorErrors, 'Count', stats.monitorErrors);
}

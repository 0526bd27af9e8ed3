import type { SNSClient } from '@aws-sdk/client-sns';
import { SendMessageCommand, type SQSClient } from '@aws-sdk/client-sqs';
import { decodeDasRecords } from '../../access-audit/das/decode';
import { archiveLine, type ArchiveOrigin } from '../../access-audit/das/archive';
import { suiteName } from '../../access-audit/das/decrypt';
import { cachedDataKeySource, type DataKeySource } from '../../access-audit/das/keys';
import { AccessRuleEngine } from '../../access-audit/rules';
import {
  unreadableRecordMessage,
  type LocatedAlert,
  type UnreadableRecord,
} from '../access-alert/messages';
import { ACCESS_AUDIT_METRICS, DAS_STREAM_METRICS } from '../access-alert/metrics';
import {
  forwardToQueue,
  publishAlerts,
  publishMessage,
  type LogSink,
  type MetricsSink,
  type ProcessingStats,
  emptyStats,
} from '../access-alert/processor';
import type { AlertLambdaSettings } from '../access-alert/settings';
import type { ArchiveEntry, ArchiveWriter } from './archive';
import { dasQueueMessages, type ForwardableEvent } from './forward';

/** The fields of a Lambda Kinesis event record the decrypt function reads. */
export interface KinesisEventRecord {
  /** `shardId-…:sequenceNumber`: names the record uniquely in the stream. */
  eventID?: string;
  eventSourceARN?: string;
  kinesis: { data: string; sequenceNumber: string; partitionKey?: string };
}

/** A Lambda Kinesis event. */
export interface KinesisEvent {
  Records: KinesisEventRecord[];
}

/** Partial batch response: Lambda checkpoints before the first failed record and retries from it. */
export interface KinesisBatchResponse {
  batchItemFailures: { itemIdentifier: string }[];
}

/** Everything one invocation of the DAS decrypt function works with. */
export interface DasProcessorDeps {
  /**
   * The alert Lambda's settings: SNS topic, `accessAudit` section (rules, messages, `sqs`)
   * and the forward queue, when there is one.
   */
  settings: Pick<AlertLambdaSettings, 'topicArn' | 'config'> &
    Partial<Pick<AlertLambdaSettings, 'queueUrl' | 'fifo'>>;
  sns: SNSClient;
  /** Required when `settings.queueUrl` is set. */
  sqs?: SQSClient;
  /** Data keys: `kmsDataKeySource(kms, clusterResourceId)` in the function. */
  keys: DataKeySource;
  /** The long-term archive (Firehose), when `activityStream.archive` is deployed. */
  archive?: { writer: ArchiveWriter; clusterResourceId: string };
  /**
   * The function's failure queue: a record that can never be read (malformed, tampered,
   * wrong key or context) is sent to it, alerted on, and the batch goes on.
   * @default such a record is retried, then its range goes to the failure destination
   */
  failureQueue?: { sqs: SQSClient; queueUrl: string };
  logger: LogSink;
  metrics: MetricsSink;
  /**
   * The cluster's own stream metrics ({@link DAS_STREAM_METRICS}): in the function, a
   * sink that adds the `ClusterResourceId` dimension, kept apart from {@link metrics} so
   * the monitor's alarms (dimension `service` only) still count DAS events.
   * @default not published
   */
  streamMetrics?: MetricsSink;
}

/** What one batch showed of the stream itself: records opened with its key, heartbeats in them. */
interface StreamSigns {
  recordsRead: number;
  heartbeats: number;
}

/** One record of the batch, decoded and classified. */
interface DecodedRecord {
  record: KinesisEventRecord;
  /** Every event, for the forward queue; empty when there is none (nothing else reads them). */
  events: ForwardableEvent[];
  alerts: LocatedAlert[];
  lines: string[];
  /** Set when the record, or part of it, can never be read: it goes to the failure queue. */
  unreadable?: UnreadableRecord;
}

/** The kind of body the failure queue gets for an unreadable record (its other bodies are Lambda's). */
export const UNREADABLE_RECORD_KIND = 'unreadable-das-record';

/** Base64 characters of a record's data kept in its failure-queue message (SQS caps bodies at 256 KiB). */
const MAX_QUARANTINED_DATA = 200 * 1024;

/**
 * Builds the Kinesis batch processor for a Database Activity Stream. Records are decoded
 * in shard order up to the first that cannot be decoded for a reason that may pass (KMS
 * throttled, unreachable or failing). A record that can never be read (not a DAS record,
 * refused by the Encryption SDK, a data key KMS refuses as the wrong ciphertext or
 * context, plaintext that does not unzip or parse) is counted as a parse error, sent
 * whole (or cut, flagged `truncated`) to the failure queue, alerted on, and the batch
 * goes on, so one garbage record cannot hide the activity after it; if the failure
 * queue refuses it, it is retried instead. Every event of the decoded records
 * goes to the archive (when there is one), then record by record its queue messages
 * (`accessAudit.sqs`, as the pgAudit path sends them) and its alerts go out through the
 * alert Lambda's SQS and SNS code. The first record that could not be decoded, archived,
 * forwarded or alerted on is reported in `batchItemFailures`: Lambda checkpoints before
 * it and retries from it, so nothing after it is lost, no alert is sent twice, and a
 * record that never succeeds ends, after the mapping's retries, in its failure
 * destination. Archive and queue are at least once: a retried record is sent again
 * under the same ids (`event_id`; a FIFO queue's deduplication id), queue messages
 * before alerts, so a refused queue message never leaves an alert sent twice. Nothing
 * is thrown for bad input.
 */
export function createDasProcessor(
  deps: DasProcessorDeps,
): (event: KinesisEvent) => Promise<KinesisBatchResponse> {
  const engine = new AccessRuleEngine(deps.settings.config);
  // Suites already reported by this function instance (one log line per suite per container).
  const suitesSeen = new Set<number>();
  const deliveryDeps = {
    ...deps,
    settings: { ...deps.settings, fifo: deps.settings.fifo ?? false },
  };
  return async (event) => {
    const stats = emptyStats();
    const signs: StreamSigns = { recordsRead: 0, heartbeats: 0 };
    let archived = 0;
    try {
      // One KMS call per data key of the batch; the source is bound to the cluster's context.
      const keys = cachedDataKeySource(deps.keys);
      const records = event.Records ?? [];
      const decoded: DecodedRecord[] = [];
      for (const record of records) {
        const done = await decodeRecord(
          record,
          engine,
          { ...deps, keys },
          stats,
          signs,
          suitesSeen,
        );
        if (done === undefined) break;
        decoded.push(done);
      }
      let stop = decoded.length < records.length ? decoded.length : undefined;
      if (deps.archive) {
        const outcome = await archiveRecords(decoded, deps.archive.writer, deps.logger, stats);
        archived = outcome.archived;
        if (outcome.firstFailed !== undefined)
          stop = Math.min(stop ?? Infinity, outcome.firstFailed);
      }
      // Unreadable records already queued but not yet alerted on: one alert for each run
      // of them, sent before the next alert of the batch (or at its end), so a wrong
      // cluster resource id sends one message per batch instead of one per record.
      let pending: { index: number; unreadable: UnreadableRecord }[] = [];
      const alertPending = async (): Promise<boolean> => {
        if (pending.length === 0) return true;
        const sent = await publishUnreadable(
          pending.map((entry) => entry.unreadable),
          deps,
          stats,
        );
        // Not sent: retry from the run's first record (nothing after it was alerted on).
        if (!sent) stop = Math.min(stop ?? Infinity, pending[0]!.index);
        pending = [];
        return sent;
      };
      for (const [index, { record, events, alerts, unreadable }] of decoded.entries()) {
        if (stop !== undefined && index >= stop) break;
        const failedBefore = stats.monitorErrors;
        if (unreadable && !(await quarantine(record, unreadable, deps, stats))) {
          stop = index;
          break;
        }
        if (alerts.length > 0 && !(await alertPending())) break;
        const stream = {
          streamArn: record.eventSourceARN ?? 'kinesis',
          sequenceNumber: record.kinesis.sequenceNumber,
        };
        const messages = dasQueueMessages(events, alerts, stream, deliveryDeps.settings);
        if (messages.length > 0) await forwardToQueue(messages, deliveryDeps, stats);
        if (stats.monitorErrors === failedBefore) await publishAlerts(alerts, deliveryDeps, stats);
        if (stats.monitorErrors > failedBefore) {
          stop = index;
          break;
        }
        if (unreadable) pending.push({ index, unreadable });
      }
      await alertPending();
      if (stop === undefined) return { batchItemFailures: [] };
      return { batchItemFailures: [{ itemIdentifier: records[stop]!.kinesis.sequenceNumber }] };
    } finally {
      // The alert Lambda's metric names, so its alarms and dashboard read DAS the same way.
      deps.metrics.addMetric(ACCESS_AUDIT_METRICS.auditEvents, 'Count', stats.auditEvents);
      deps.metrics.addMetric(ACCESS_AUDIT_METRICS.alerts, 'Count', stats.alerts);
      deps.metrics.addMetric(ACCESS_AUDIT_METRICS.parseErrors, 'Count', stats.parseErrors);
      deps.metrics.addMetric(ACCESS_AUDIT_METRICS.monitorErrors, 'Count', stats.monitorErrors);
      if (deps.archive)
        deps.metrics.addMetric(ACCESS_AUDIT_METRICS.archivedEvents, 'Count', archived);
      // Every invocation reports, zero included: a batch of unreadable records is not a live stream.
      deps.streamMetrics?.addMetric(DAS_STREAM_METRICS.recordsRead, 'Count', signs.recordsRead);
      deps.streamMetrics?.addMetric(DAS_STREAM_METRICS.heartbeats, 'Count', signs.heartbeats);
    }
  };
}

/**
 * Decodes and evaluates one record; undefined when it cannot be read now (it must be
 * retried), `unreadable` set when it never can be and there is a failure queue for it.
 */
async function decodeRecord(
  record: KinesisEventRecord,
  engine: AccessRuleEngine,
  deps: DasProcessorDeps,
  stats: ProcessingStats,
  signs: StreamSigns,
  suitesSeen: Set<number>,
): Promise<DecodedRecord | undefined> {
  const { sequenceNumber, partitionKey, data } = record.kinesis;
  stats.logEvents++;
  const text = Buffer.from(data ?? '', 'base64').toString('utf8');
  const result = await decodeDasRecords([text], deps.keys);
  for (const suiteId of result.suiteIds) {
    if (suitesSeen.has(suiteId)) continue;
    suitesSeen.add(suiteId);
    deps.logger.info('DAS message suite', {
      suiteId: `0x${suiteId.toString(16).padStart(4, '0')}`,
      suite: suiteName(suiteId),
    });
  }
  const decoded: DecodedRecord = { record, events: [], alerts: [], lines: [] };
  if (result.failures.length > 0) {
    stats.parseErrors += result.failures.length;
    const errors = result.failures.map((failure) => failure.error);
    const retry = !deps.failureQueue || result.failures.some((failure) => failure.transient);
    deps.logger.warn('unreadable DAS record', { sequenceNumber, errors, retry });
    if (retry) return undefined;
    decoded.unreadable = {
      streamArn: record.eventSourceARN ?? 'kinesis',
      sequenceNumber,
      ...(partitionKey !== undefined && { partitionKey }),
      errors,
    };
  }
  // Opened with a data key KMS released only under the cluster's encryption context
  // (a record refused whole has no events; one with an unreadable event has the rest).
  if (result.failures.every((failure) => failure.event !== undefined)) signs.recordsRead++;
  signs.heartbeats += result.dropped.heartbeat;
  const kinesisEventId = record.eventID ?? sequenceNumber;
  // Only the forward queue reads every event; kept for a whole batch without one, they were
  // a good part of the function's garbage collection (BENCHMARKS 6).
  const forwarding = deps.settings.queueUrl !== undefined;
  const logGroup = record.eventSourceARN ?? 'kinesis';
  // One origin object for the record's archive lines, its position set per event: a
  // fresh object (and a spread) per event was garbage the archive line does not keep.
  const origin: ArchiveOrigin | undefined = deps.archive && {
    kinesisEventId,
    position: 0,
    clusterResourceId: deps.archive.clusterResourceId,
  };
  for (const { event, position, instanceId, clusterId, raw } of result.events) {
    stats.auditEvents++;
    const verdict = engine.evaluate(event);
    const alerting = verdict.kind === 'alert';
    // Only the queue and alerts read where an event came from; most events have neither.
    if (forwarding || alerting) {
      // Per event, as the archive's event_id: one instance's events form one FIFO group,
      // and each event its own deduplication id.
      const source = {
        logGroup,
        logStream: instanceId ?? partitionKey ?? '',
        logEventId: `${kinesisEventId}/${position}`,
      };
      if (forwarding)
        decoded.events.push({
          event,
          verdict,
          source,
          raw,
          position,
          ...(instanceId !== undefined && { instanceId }),
          ...(clusterId !== undefined && { clusterId }),
        });
      if (alerting) {
        stats.alerts++;
        decoded.alerts.push({ alert: verdict.alert, source });
      }
    }
    if (origin) {
      origin.position = position;
      origin.instanceId = instanceId;
      decoded.lines.push(archiveLine(event, verdict, origin));
    }
  }
  return decoded;
}

/**
 * Hands every decoded event to the archive. Lines still refused after the writer's
 * retries are counted as monitor errors and logged; `firstFailed` is the first record
 * with such a line, which must then be retried.
 */
async function archiveRecords(
  decoded: readonly DecodedRecord[],
  writer: ArchiveWriter,
  logger: LogSink,
  stats: ProcessingStats,
): Promise<{ archived: number; firstFailed?: number }> {
  const entries: ArchiveEntry[] = decoded.flatMap(({ lines }, record) =>
    lines.map((line) => ({ record, line })),
  );
  if (entries.length === 0) return { archived: 0 };
  const { archived, failed } = await writer.put(entries);
  if (failed.length === 0) return { archived };
  stats.monitorErrors += failed.length;
  const firstFailed = failed.reduce((first, { entry }) => Math.min(first, entry.record), Infinity);
  logger.error('Firehose refused archive records', {
    failed: failed.length,
    errors: [...new Set(failed.map(({ error }) => error))].slice(0, 10),
    retryFrom: decoded[firstFailed]!.record.kinesis.sequenceNumber,
  });
  return { archived, firstFailed };
}

/**
 * Sends an unreadable record itself to the failure queue: its data (cut to fit, flagged
 * `truncated`), where it sits in the stream, and why it could not be read. False when
 * the queue refused it: the record must then be retried, so nothing is lost.
 */
async function quarantine(
  record: KinesisEventRecord,
  unreadable: UnreadableRecord,
  deps: DasProcessorDeps,
  stats: ProcessingStats,
): Promise<boolean> {
  const { sqs, queueUrl } = deps.failureQueue!;
  const data = record.kinesis.data ?? '';
  const truncated = data.length > MAX_QUARANTINED_DATA;
  const body = {
    kind: UNREADABLE_RECORD_KIND,
    ...unreadable,
    eventId: record.eventID,
    data: truncated ? data.slice(0, MAX_QUARANTINED_DATA) : data,
    dataLength: data.length,
    truncated,
  };
  try {
    await sqs.send(
      new SendMessageCommand({ QueueUrl: queueUrl, MessageBody: JSON.stringify(body) }),
    );
    return true;
  } catch (error) {
    stats.monitorErrors++;
    deps.logger.error('failure queue refused an unreadable DAS record; it is retried', {
      sequenceNumber: unreadable.sequenceNumber,
      error: (error as Error).message,
    });
    return false;
  }
}

/**
 * Alerts on a run of unreadable records through the kit's alert topic (one message that
 * says how many): they may hide activity. False when SNS refused it.
 */
async function publishUnreadable(
  unreadable: readonly UnreadableRecord[],
  deps: DasProcessorDeps,
  stats: ProcessingStats,
): Promise<boolean> {
  const message = unreadableRecordMessage(unreadable, deps.settings.config.alerts);
  const sent = await publishMessage(message, deps, stats);
  if (sent) stats.alerts += unreadable.length;
  return sent;
}

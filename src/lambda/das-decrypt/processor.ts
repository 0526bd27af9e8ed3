import type { SNSClient } from '@aws-sdk/client-sns';
import type { SQSClient } from '@aws-sdk/client-sqs';
import { decodeDasRecords } from '../../access-audit/das/decode';
import { archiveLine } from '../../access-audit/das/archive';
import { suiteName } from '../../access-audit/das/decrypt';
import { cachedDataKeySource, type DataKeySource } from '../../access-audit/das/keys';
import { AccessRuleEngine } from '../../access-audit/rules';
import type { LocatedAlert } from '../access-alert/messages';
import { ACCESS_AUDIT_METRICS, DAS_STREAM_METRICS } from '../access-alert/metrics';
import {
  forwardToQueue,
  publishAlerts,
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
  events: ForwardableEvent[];
  alerts: LocatedAlert[];
  lines: string[];
}

/**
 * Builds the Kinesis batch processor for a Database Activity Stream. Records are decoded
 * in shard order up to the first that cannot be decoded; every event of those records
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
      for (const [index, { record, events, alerts }] of decoded.entries()) {
        if (stop !== undefined && index >= stop) break;
        const failedBefore = stats.monitorErrors;
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
      }
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

/** Decodes and evaluates one record; undefined when it cannot be read (it must be retried). */
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
  if (result.failures.length > 0) {
    stats.parseErrors += result.failures.length;
    deps.logger.warn('unreadable DAS record', {
      sequenceNumber,
      errors: result.failures.map((failure) => failure.error),
    });
    return undefined;
  }
  // Opened with a data key KMS released only under the cluster's encryption context.
  signs.recordsRead++;
  signs.heartbeats += result.dropped.heartbeat;
  const decoded: DecodedRecord = { record, events: [], alerts: [], lines: [] };
  const kinesisEventId = record.eventID ?? sequenceNumber;
  for (const { event, position, instanceId, clusterId, raw } of result.events) {
    stats.auditEvents++;
    const verdict = engine.evaluate(event);
    // Per event, as the archive's event_id: one instance's events form one FIFO group,
    // and each event its own deduplication id.
    const source = {
      logGroup: record.eventSourceARN ?? 'kinesis',
      logStream: instanceId ?? partitionKey ?? '',
      logEventId: `${kinesisEventId}/${position}`,
    };
    decoded.events.push({
      event,
      verdict,
      source,
      raw,
      position,
      ...(instanceId !== undefined && { instanceId }),
      ...(clusterId !== undefined && { clusterId }),
    });
    if (verdict.kind === 'alert') {
      stats.alerts++;
      decoded.alerts.push({ alert: verdict.alert, source });
    }
    if (deps.archive)
      decoded.lines.push(
        archiveLine(event, verdict, {
          kinesisEventId,
          position,
          clusterResourceId: deps.archive.clusterResourceId,
          ...(instanceId !== undefined && { instanceId }),
        }),
      );
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

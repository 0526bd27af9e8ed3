import type { SNSClient } from '@aws-sdk/client-sns';
import { decodeDasRecords } from '../../access-audit/das/decode';
import { cachedDataKeySource, type DataKeySource } from '../../access-audit/das/keys';
import { AccessRuleEngine } from '../../access-audit/rules';
import type { LocatedAlert } from '../access-alert/messages';
import { ACCESS_AUDIT_METRICS } from '../access-alert/metrics';
import {
  publishAlerts,
  type LogSink,
  type MetricsSink,
  type ProcessingStats,
  emptyStats,
} from '../access-alert/processor';
import type { AlertLambdaSettings } from '../access-alert/settings';

/** The fields of a Lambda Kinesis event record the decrypt function reads. */
export interface KinesisEventRecord {
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
  /** The alert Lambda's settings: SNS topic and `accessAudit` section (rules, messages). */
  settings: Pick<AlertLambdaSettings, 'topicArn' | 'config'>;
  sns: SNSClient;
  /** Data keys: `kmsDataKeySource(kms, clusterResourceId)` in the function. */
  keys: DataKeySource;
  logger: LogSink;
  metrics: MetricsSink;
}

/**
 * Builds the Kinesis batch processor for a Database Activity Stream. Records are taken
 * in shard order; each record's alerts go out through the alert Lambda's SNS publishing
 * before the next record is read. At the first record that cannot be decoded (or whose
 * alerts could not be published) it stops and reports that record in
 * `batchItemFailures`: Lambda then retries from it, so records after it are neither
 * lost nor alerted twice, and a record that never decodes ends, after the mapping's
 * retries, in its failure destination. Nothing is thrown for bad input.
 */
export function createDasProcessor(
  deps: DasProcessorDeps,
): (event: KinesisEvent) => Promise<KinesisBatchResponse> {
  const engine = new AccessRuleEngine(deps.settings.config);
  const publishDeps = { ...deps, settings: { ...deps.settings, fifo: false } };
  return async (event) => {
    const stats = emptyStats();
    try {
      // One KMS call per data key of the batch; the source is bound to the cluster's context.
      const keys = cachedDataKeySource(deps.keys);
      for (const record of event.Records ?? []) {
        const { sequenceNumber } = record.kinesis;
        if (!(await processRecord(record, engine, { ...deps, keys }, publishDeps, stats)))
          return { batchItemFailures: [{ itemIdentifier: sequenceNumber }] };
      }
      return { batchItemFailures: [] };
    } finally {
      // The alert Lambda's metric names, so its alarms and dashboard read DAS the same way.
      deps.metrics.addMetric(ACCESS_AUDIT_METRICS.auditEvents, 'Count', stats.auditEvents);
      deps.metrics.addMetric(ACCESS_AUDIT_METRICS.alerts, 'Count', stats.alerts);
      deps.metrics.addMetric(ACCESS_AUDIT_METRICS.parseErrors, 'Count', stats.parseErrors);
      deps.metrics.addMetric(ACCESS_AUDIT_METRICS.monitorErrors, 'Count', stats.monitorErrors);
    }
  };
}

/** Decodes, evaluates and publishes one record; false when it must be retried. */
async function processRecord(
  record: KinesisEventRecord,
  engine: AccessRuleEngine,
  deps: DasProcessorDeps,
  publishDeps: Parameters<typeof publishAlerts>[1],
  stats: ProcessingStats,
): Promise<boolean> {
  const { sequenceNumber, partitionKey, data } = record.kinesis;
  stats.logEvents++;
  const text = Buffer.from(data ?? '', 'base64').toString('utf8');
  const result = await decodeDasRecords([text], deps.keys);
  if (result.failures.length > 0) {
    stats.parseErrors += result.failures.length;
    deps.logger.warn('unreadable DAS record', {
      sequenceNumber,
      errors: result.failures.map((failure) => failure.error),
    });
    return false;
  }
  const source = {
    logGroup: record.eventSourceARN ?? 'kinesis',
    logStream: partitionKey ?? '',
    logEventId: sequenceNumber,
  };
  const alerts: LocatedAlert[] = [];
  for (const { event } of result.events) {
    stats.auditEvents++;
    const verdict = engine.evaluate(event);
    if (verdict.kind === 'alert') {
      stats.alerts++;
      alerts.push({ alert: verdict.alert, source });
    }
  }
  const failedBefore = stats.monitorErrors;
  await publishAlerts(alerts, publishDeps, stats);
  return stats.monitorErrors === failedBefore;
}

import { Logger } from '@aws-lambda-powertools/logger';
import { Metrics } from '@aws-lambda-powertools/metrics';
import { SNSClient } from '@aws-sdk/client-sns';
import { SQSClient } from '@aws-sdk/client-sqs';
import { createHandler } from '../../../src/lambda/access-alert/handler';
import { encodePayload, type CloudWatchLogsEvent } from '../../../src/lambda/access-alert/payload';
import type { AlertLambdaSettings } from '../../../src/lambda/access-alert/settings';

export const LOG_GROUP = '/aws/rds/cluster/source-cluster/postgresql';
export const LOG_STREAM = 'source-instance-1';

/**
 * Cuts a PostgreSQL log file into what RDS ships to CloudWatch Logs: one log event
 * per record, continuation lines kept with their `\n\t`.
 */
export function toCloudWatchMessages(log: string): string[] {
  const messages: string[] = [];
  for (const line of log.split('\n')) {
    if (line.startsWith('\t') && messages.length > 0) messages[messages.length - 1] += `\n${line}`;
    else if (line !== '') messages.push(line);
  }
  return messages;
}

/** A subscription event carrying `messages` as log events with sequential ids. */
export function subscriptionEvent(messages: readonly string[], firstId = 1): CloudWatchLogsEvent {
  return encodePayload({
    messageType: 'DATA_MESSAGE',
    logGroup: LOG_GROUP,
    logStream: LOG_STREAM,
    logEvents: messages.map((message, index) => ({
      id: String(
        37000000000000000000000000000000000000000000000000000000n + BigInt(firstId + index),
      ),
      timestamp: 1795387176000 + index,
      message,
    })),
  });
}

/** EMF documents the handler flushed, captured instead of printed. */
export interface CapturedMetrics {
  /** Sum of each metric over all flushes. */
  totals(): Record<string, number>;
  /** Raw EMF documents. */
  documents: Record<string, unknown>[];
}

/** A handler wired to the given clients with a Metrics instance whose flushes are captured. */
export function testHandler(
  settings: AlertLambdaSettings,
  clients: { sns: SNSClient; sqs?: SQSClient },
) {
  const metrics = new Metrics({
    namespace: 'AuditTrail/AccessAudit',
    serviceName: 'access-audit-monitor',
  });
  const documents: Record<string, unknown>[] = [];
  vi.spyOn(metrics, 'publishStoredMetrics').mockImplementation(() => {
    documents.push(metrics.serializeMetrics() as unknown as Record<string, unknown>);
    metrics.clearMetrics();
    return metrics;
  });
  const logger = new Logger({ serviceName: 'access-audit-monitor', logLevel: 'SILENT' });
  const handler = createHandler({ settings, logger, metrics, ...clients });
  const captured: CapturedMetrics = {
    documents,
    totals() {
      const totals: Record<string, number> = {};
      for (const document of documents) {
        const aws = document._aws as { CloudWatchMetrics: { Metrics: { Name: string }[] }[] };
        for (const { Name } of aws.CloudWatchMetrics[0]!.Metrics) {
          const value = document[Name] as number | number[];
          totals[Name] =
            (totals[Name] ?? 0) + (Array.isArray(value) ? value.reduce((a, b) => a + b, 0) : value);
        }
      }
      return totals;
    },
  };
  return { handler, metrics: captured };
}

import type { Logger } from '@aws-lambda-powertools/logger';
import type { Metrics } from '@aws-lambda-powertools/metrics';
import { SNSClient } from '@aws-sdk/client-sns';
import { SQSClient } from '@aws-sdk/client-sqs';
import { createProcessor, type ProcessingStats } from './processor';
import { accessAuditRuntime } from './runtime';
import type { AlertLambdaSettings } from './settings';

/** Options for {@link createHandler}; clients are injectable for tests. */
export interface HandlerOptions {
  settings: AlertLambdaSettings;
  sns?: SNSClient;
  sqs?: SQSClient;
  logger?: Logger;
  metrics?: Metrics;
}

/**
 * Builds the Lambda handler: Powertools Logger for structured logs, Powertools
 * Metrics for embedded-metric-format metrics flushed after every invocation.
 */
export function createHandler(
  options: HandlerOptions,
): (event: unknown) => Promise<ProcessingStats> {
  const runtime = accessAuditRuntime(options);
  const sns = options.sns ?? new SNSClient({});
  const sqs =
    options.settings.queueUrl === undefined ? undefined : (options.sqs ?? new SQSClient({}));
  const processPayload = createProcessor({
    settings: options.settings,
    sns,
    ...(sqs ? { sqs } : {}),
    logger: runtime.log,
    metrics: runtime.metricsSink,
  });
  return (event) => runtime.invoke(() => processPayload(event));
}

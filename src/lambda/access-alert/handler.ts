import { Logger } from '@aws-lambda-powertools/logger';
import { Metrics, MetricUnit } from '@aws-lambda-powertools/metrics';
import { SNSClient } from '@aws-sdk/client-sns';
import { SQSClient } from '@aws-sdk/client-sqs';
import { ACCESS_AUDIT_METRICS, DEFAULT_METRICS_NAMESPACE, DEFAULT_SERVICE_NAME } from './metrics';
import { createProcessor, DeliveryError, type ProcessingStats } from './processor';
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
  // The construct sets POWERTOOLS_SERVICE_NAME / POWERTOOLS_METRICS_NAMESPACE; its alarms use the same values.
  const serviceName = process.env.POWERTOOLS_SERVICE_NAME || DEFAULT_SERVICE_NAME;
  const namespace = process.env.POWERTOOLS_METRICS_NAMESPACE || DEFAULT_METRICS_NAMESPACE;
  const logger = options.logger ?? new Logger({ serviceName });
  const metrics = options.metrics ?? new Metrics({ namespace, serviceName });
  const sns = options.sns ?? new SNSClient({});
  const sqs =
    options.settings.queueUrl === undefined ? undefined : (options.sqs ?? new SQSClient({}));
  const processPayload = createProcessor({
    settings: options.settings,
    sns,
    ...(sqs ? { sqs } : {}),
    logger: {
      info: (message, extra) => logger.info(message, extra ?? {}),
      warn: (message, extra) => logger.warn(message, extra ?? {}),
      error: (message, extra) => logger.error(message, extra ?? {}),
    },
    metrics: {
      addMetric: (name, _unit, value) => metrics.addMetric(name, MetricUnit.Count, value),
    },
  });
  return async (event) => {
    try {
      return await processPayload(event);
    } catch (error) {
      logger.error('invocation failed', error as Error);
      // Delivery failures were counted per message already; anything else is a bug to count once.
      if (!(error instanceof DeliveryError))
        metrics.addMetric(ACCESS_AUDIT_METRICS.monitorErrors, MetricUnit.Count, 1);
      throw error;
    } finally {
      metrics.publishStoredMetrics();
    }
  };
}

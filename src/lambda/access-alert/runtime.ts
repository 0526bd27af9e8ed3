import { Logger } from '@aws-lambda-powertools/logger';
import { Metrics, MetricUnit } from '@aws-lambda-powertools/metrics';
import { ACCESS_AUDIT_METRICS, DEFAULT_METRICS_NAMESPACE, DEFAULT_SERVICE_NAME } from './metrics';
import { DeliveryError, type LogSink, type MetricsSink } from './processor';

/** Powertools Logger and Metrics of one access-audit Lambda, and the sinks its processor writes to. */
export interface AccessAuditRuntime {
  readonly logger: Logger;
  readonly metrics: Metrics;
  /** The processor's view of {@link logger}. */
  readonly log: LogSink;
  /** The processor's view of {@link metrics}: every metric is a count. */
  readonly metricsSink: MetricsSink;
  /**
   * Runs one invocation: an unexpected error is logged and counted once as a monitor
   * error (delivery failures were counted per message already) and rethrown, so Lambda
   * retries; the metrics are flushed whatever happens.
   */
  invoke<T>(work: () => Promise<T>): Promise<T>;
}

/**
 * The Powertools setup both access-audit Lambdas share (the pgAudit alert function and the
 * Database Activity Streams decrypt function). The constructs set `POWERTOOLS_SERVICE_NAME`
 * and `POWERTOOLS_METRICS_NAMESPACE` to the values their alarms read, so both functions'
 * metrics land under one `service` dimension; the defaults are the monitor's.
 */
export function accessAuditRuntime(
  options: { logger?: Logger; metrics?: Metrics } = {},
): AccessAuditRuntime {
  const serviceName = process.env.POWERTOOLS_SERVICE_NAME || DEFAULT_SERVICE_NAME;
  const namespace = process.env.POWERTOOLS_METRICS_NAMESPACE || DEFAULT_METRICS_NAMESPACE;
  const logger = options.logger ?? new Logger({ serviceName });
  const metrics = options.metrics ?? new Metrics({ namespace, serviceName });
  return {
    logger,
    metrics,
    log: {
      info: (message, extra) => logger.info(message, extra ?? {}),
      warn: (message, extra) => logger.warn(message, extra ?? {}),
      error: (message, extra) => logger.error(message, extra ?? {}),
    },
    metricsSink: {
      addMetric: (name, _unit, value) => metrics.addMetric(name, MetricUnit.Count, value),
    },
    async invoke(work) {
      try {
        return await work();
      } catch (error) {
        logger.error('invocation failed', error as Error);
        if (!(error instanceof DeliveryError))
          metrics.addMetric(ACCESS_AUDIT_METRICS.monitorErrors, MetricUnit.Count, 1);
        throw error;
      } finally {
        metrics.publishStoredMetrics();
      }
    },
  };
}

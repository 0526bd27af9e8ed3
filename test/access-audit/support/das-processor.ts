import { Logger } from '@aws-lambda-powertools/logger';
import { Metrics } from '@aws-lambda-powertools/metrics';
import { KMSClient } from '@aws-sdk/client-kms';
import { SNSClient } from '@aws-sdk/client-sns';
import { SQSClient } from '@aws-sdk/client-sqs';
import { onTestFinished } from 'vitest';
import { kmsDataKeySource } from '../../../src/access-audit/das/keys';
import { parseAccessAuditConfig } from '../../../src/config/access-audit';
import { createDasHandler, loadDasSettings } from '../../../src/lambda/das-decrypt/handler';
import {
  createDasProcessor,
  type DasProcessorDeps,
  type KinesisBatchResponse,
  type KinesisEvent,
} from '../../../src/lambda/das-decrypt/processor';
import { CLUSTER_RESOURCE_ID, mockKms, TOPIC_ARN, type StreamKeys } from './das';

/** The decrypt function's processor under test, and what it logged and counted. */
export interface TestDasProcessor {
  process: (event: KinesisEvent) => Promise<KinesisBatchResponse>;
  /** Sums of every metric the processor added, by name. */
  metrics: Record<string, number>;
  /** Sums of the per-cluster stream metrics (records read, heartbeats), by name. */
  streamMetrics: Record<string, number>;
  /** The `extra` of every error it logged. */
  errors: Record<string, unknown>[];
  /** Every info line it logged. */
  infos: [string, Record<string, unknown> | undefined][];
  kms: ReturnType<typeof mockKms>;
}

/**
 * The decrypt function's processor as the handler builds it: data keys from a KMS client
 * mocked to open `keys` only under the cluster's encryption context, alerts to
 * {@link TOPIC_ARN} (mock SNS in the test), metrics summed and logs kept for assertions.
 * `deps` replaces any of those (settings, archive, sqs…). The KMS mock is restored when
 * the test finishes.
 */
export function testDasProcessor(
  keys: StreamKeys,
  deps: Partial<DasProcessorDeps> = {},
): TestDasProcessor {
  const kms = mockKms(keys);
  onTestFinished(() => kms.restore());
  const metrics: Record<string, number> = {};
  const streamMetrics: Record<string, number> = {};
  const sum =
    (into: Record<string, number>) =>
    (name: string, _unit: 'Count', value: number): void => {
      into[name] = (into[name] ?? 0) + value;
    };
  const errors: Record<string, unknown>[] = [];
  const infos: [string, Record<string, unknown> | undefined][] = [];
  const process = createDasProcessor({
    settings: { topicArn: TOPIC_ARN, config: parseAccessAuditConfig({}) },
    sns: new SNSClient({ region: 'eu-west-1' }),
    keys: kmsDataKeySource(new KMSClient({ region: 'eu-west-1' }), CLUSTER_RESOURCE_ID),
    logger: {
      info: (message, extra) => infos.push([message, extra]),
      warn: () => {},
      error: (_message, extra) => errors.push(extra ?? {}),
    },
    metrics: { addMetric: sum(metrics) },
    streamMetrics: { addMetric: sum(streamMetrics) },
    ...deps,
  });
  return { process, metrics, streamMetrics, errors, infos, kms };
}

/** The environment the decrypt function needs (topic, empty `accessAudit`, the cluster). */
export const DAS_HANDLER_ENV = {
  ALERT_TOPIC_ARN: TOPIC_ARN,
  ACCESS_AUDIT_CONFIG: '{}',
  DAS_CLUSTER_RESOURCE_ID: CLUSTER_RESOURCE_ID,
} as const;

/**
 * The decrypt function's handler as Lambda builds it from its environment
 * ({@link DAS_HANDLER_ENV} and `env`), with KMS mocked to open `keys` (restored when the
 * test finishes) and SNS and SQS clients the test's own mocks answer; logs silent.
 */
export function testDasHandler(
  keys: StreamKeys,
  env: Record<string, string> = {},
): (event: KinesisEvent) => Promise<KinesisBatchResponse> {
  const kms = mockKms(keys);
  onTestFinished(() => kms.restore());
  return createDasHandler({
    settings: loadDasSettings({ ...DAS_HANDLER_ENV, ...env }),
    kms: new KMSClient({ region: 'eu-west-1' }),
    sns: new SNSClient({ region: 'eu-west-1' }),
    sqs: new SQSClient({ region: 'eu-west-1' }),
    logger: new Logger({ logLevel: 'SILENT' }),
    metrics: new Metrics({
      namespace: 'AuditTrail/AccessAudit',
      serviceName: 'access-audit-monitor',
    }),
  });
}

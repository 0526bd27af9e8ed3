import type { Logger } from '@aws-lambda-powertools/logger';
import { MetricUnit, type Metrics } from '@aws-lambda-powertools/metrics';
import { FirehoseClient } from '@aws-sdk/client-firehose';
import { KMSClient } from '@aws-sdk/client-kms';
import { SNSClient } from '@aws-sdk/client-sns';
import { SQSClient } from '@aws-sdk/client-sqs';
import { kmsDataKeySource } from '../../access-audit/das/keys';
import { DAS_CLUSTER_DIMENSION } from '../access-alert/metrics';
import type { MetricsSink } from '../access-alert/processor';
import { accessAuditRuntime } from '../access-alert/runtime';
import {
  LambdaSettingsError,
  loadSettings,
  type AlertLambdaSettings,
} from '../access-alert/settings';
import { firehoseArchive } from './archive';
import { createDasProcessor, type KinesisBatchResponse, type KinesisEvent } from './processor';

/** The environment variable naming the cluster whose stream this function decrypts. */
export const CLUSTER_RESOURCE_ID_ENV = 'DAS_CLUSTER_RESOURCE_ID';

/** The environment variable naming the archive's Firehose delivery stream, when there is one. */
export const ARCHIVE_STREAM_ENV = 'DAS_ARCHIVE_STREAM';

/** The environment variable naming the function's failure queue (URL), for unreadable records. */
export const FAILURE_QUEUE_ENV = 'DAS_FAILURE_QUEUE_URL';

/** The DAS decrypt function's settings: the alert Lambda's, plus the cluster resource id. */
export interface DasLambdaSettings extends AlertLambdaSettings {
  /** `DbClusterResourceId` (`cluster-…`): the KMS encryption context of every data key. */
  readonly clusterResourceId: string;
  /** Firehose delivery stream every decoded event is archived to. @default no archive */
  readonly archiveStream?: string;
  /** SQS queue URL unreadable records are sent to. @default such records are retried */
  readonly failureQueueUrl?: string;
}

/**
 * Reads the alert Lambda's variables and `DAS_CLUSTER_RESOURCE_ID`.
 * @throws LambdaSettingsError naming the bad variable.
 */
export function loadDasSettings(env: NodeJS.ProcessEnv = process.env): DasLambdaSettings {
  const clusterResourceId = env[CLUSTER_RESOURCE_ID_ENV] ?? '';
  if (!/^cluster-[A-Z0-9]+$/.test(clusterResourceId))
    throw new LambdaSettingsError(
      `invalid environment:\n${CLUSTER_RESOURCE_ID_ENV}: must be a DbClusterResourceId (cluster-…)`,
    );
  const archiveStream = env[ARCHIVE_STREAM_ENV] || undefined;
  if (archiveStream !== undefined && !/^[a-zA-Z0-9_.-]{1,64}$/.test(archiveStream))
    throw new LambdaSettingsError(
      `invalid environment:\n${ARCHIVE_STREAM_ENV}: must be a Firehose delivery stream name`,
    );
  const failureQueueUrl = env[FAILURE_QUEUE_ENV] || undefined;
  if (failureQueueUrl !== undefined && !/^https:\/\/\S+$/.test(failureQueueUrl))
    throw new LambdaSettingsError(
      `invalid environment:\n${FAILURE_QUEUE_ENV}: must be an SQS queue URL (https://…)`,
    );
  return {
    ...loadSettings(env),
    clusterResourceId,
    ...(archiveStream && { archiveStream }),
    ...(failureQueueUrl && { failureQueueUrl }),
  };
}

/** Options for {@link createDasHandler}; clients are injectable for tests. */
export interface DasHandlerOptions {
  settings: DasLambdaSettings;
  kms?: KMSClient;
  sns?: SNSClient;
  firehose?: FirehoseClient;
  sqs?: SQSClient;
  logger?: Logger;
  metrics?: Metrics;
}

/** The Lambda handler for the stream's event source mapping (report batch item failures on). */
export function createDasHandler(
  options: DasHandlerOptions,
): (event: KinesisEvent) => Promise<KinesisBatchResponse> {
  const runtime = accessAuditRuntime(options);
  const { archiveStream, clusterResourceId, failureQueueUrl, queueUrl } = options.settings;
  // One client for the forward queue and the failure queue; without it forwarding does nothing.
  const sqs =
    queueUrl === undefined && failureQueueUrl === undefined
      ? undefined
      : (options.sqs ?? new SQSClient({}));
  const processBatch = createDasProcessor({
    settings: options.settings,
    sns: options.sns ?? new SNSClient({}),
    keys: kmsDataKeySource(options.kms ?? new KMSClient({}), clusterResourceId),
    ...(archiveStream !== undefined && {
      archive: {
        writer: firehoseArchive(options.firehose ?? new FirehoseClient({}), archiveStream),
        clusterResourceId,
      },
    }),
    ...(sqs && queueUrl !== undefined && { sqs }),
    ...(sqs &&
      failureQueueUrl !== undefined && {
        failureQueue: { sqs, queueUrl: failureQueueUrl },
      }),
    logger: runtime.log,
    metrics: runtime.metricsSink,
    streamMetrics: clusterMetrics(runtime.metrics, clusterResourceId),
  });
  return (event) => runtime.invoke(() => processBatch(event));
}

/**
 * Metrics of one cluster's stream: each is published at once as its own embedded-metric
 * document (Powertools `singleMetric`) with the `ClusterResourceId` dimension besides
 * `service`, so the monitor-wide metrics keep their `service`-only dimension set.
 */
function clusterMetrics(metrics: Metrics, clusterResourceId: string): MetricsSink {
  return {
    addMetric: (name, _unit, value) => {
      const single = metrics.singleMetric();
      single.addDimension(DAS_CLUSTER_DIMENSION, clusterResourceId);
      single.addMetric(name, MetricUnit.Count, value);
    },
  };
}

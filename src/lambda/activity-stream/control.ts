import {
  DBClusterNotFoundFault,
  DescribeDBClustersCommand,
  StartActivityStreamCommand,
  StopActivityStreamCommand,
  type DBCluster,
  type RDSClient,
} from '@aws-sdk/client-rds';
import type { CustomResourceEvent, OnEventResponse } from '../shared/custom-resource';

/**
 * Properties of the custom resources this handler serves (strings, as CloudFormation
 * passes them).
 *
 * - `Action: "describe"` reads an existing cluster's resource id (`cluster-…`), which the
 *   KMS key policy binds the decrypt role to before the stream starts.
 * - `Action: "stream"` starts the activity stream on create, waits until it is `started`
 *   and returns the Kinesis stream's name; on delete it stops it (and waits), unless
 *   `Retain` is `"true"` (production: the stream outlives the stack).
 */
export interface ActivityStreamProperties {
  readonly Action: 'describe' | 'stream';
  /** The cluster identifier, as shown in the RDS console. */
  readonly ClusterIdentifier: string;
  /** The cluster ARN (`stream` only). */
  readonly ClusterArn?: string;
  /** ARN of the customer-managed KMS key the stream encrypts with (`stream` only). */
  readonly KmsKeyArn?: string;
  /** `sync` or `async` (`stream` only). */
  readonly Mode?: 'sync' | 'async';
  /** `"true"`: leave the stream running when the resource is deleted. */
  readonly Retain?: 'true' | 'false';
}

/** The event the CDK provider framework passes to onEvent and isComplete. */
export type ActivityStreamEvent = CustomResourceEvent<ActivityStreamProperties>;

/** What isComplete returns. */
export interface IsCompleteResponse {
  readonly IsComplete: boolean;
  readonly Data?: Record<string, string>;
}

/** Dependencies, replaced in tests. */
export interface ControlDependencies {
  readonly rds: RDSClient;
  readonly log?: (message: string) => void;
}

/**
 * Starts, adopts or stops the activity stream; exported for tests, wrapped by the
 * `on-event` entry point. Never waits: {@link activityStreamSettled} polls.
 */
export async function controlActivityStream(
  event: ActivityStreamEvent,
  deps: ControlDependencies,
): Promise<OnEventResponse> {
  const props = event.ResourceProperties;
  const log = deps.log ?? console.log;
  if (props.Action === 'describe') {
    if (event.RequestType === 'Delete')
      return { PhysicalResourceId: event.PhysicalResourceId ?? props.ClusterIdentifier };
    const cluster = await describeCluster(deps.rds, props.ClusterIdentifier);
    if (cluster === undefined) throw new Error(`cluster ${props.ClusterIdentifier} not found`);
    const resourceId = required(cluster.DbClusterResourceId, 'DbClusterResourceId');
    return {
      PhysicalResourceId: resourceId,
      Data: { ResourceId: resourceId, ClusterArn: required(cluster.DBClusterArn, 'DBClusterArn') },
    };
  }
  const stream = streamSettings(props);
  const physicalId = `${stream.clusterArn}/activity-stream`;
  if (event.RequestType === 'Delete') {
    if (props.Retain === 'true') {
      log(`${props.ClusterIdentifier}: activity stream retained`);
      return { PhysicalResourceId: event.PhysicalResourceId ?? physicalId };
    }
    await stopStream(deps.rds, props.ClusterIdentifier, stream.clusterArn, log);
    return { PhysicalResourceId: event.PhysicalResourceId ?? physicalId };
  }
  if (event.RequestType === 'Update' && event.PhysicalResourceId === physicalId) {
    refuseInPlaceChange(props, event.OldResourceProperties);
    return { PhysicalResourceId: physicalId };
  }
  await startStream(deps.rds, props.ClusterIdentifier, stream, log);
  return { PhysicalResourceId: physicalId };
}

/**
 * Whether the stream reached the state the request asked for; exported for tests,
 * wrapped by the `is-complete` entry point. Returns the Kinesis stream name once
 * `started`.
 */
export async function activityStreamSettled(
  event: ActivityStreamEvent,
  deps: ControlDependencies,
): Promise<IsCompleteResponse> {
  const props = event.ResourceProperties;
  if (props.Action === 'describe') return { IsComplete: true };
  if (event.RequestType === 'Delete') {
    if (props.Retain === 'true') return { IsComplete: true };
    const cluster = await describeCluster(deps.rds, props.ClusterIdentifier);
    const status = cluster?.ActivityStreamStatus;
    (deps.log ?? console.log)(`${props.ClusterIdentifier}: activity stream ${status ?? 'absent'}`);
    return { IsComplete: status === undefined || status === 'stopped' };
  }
  const cluster = await describeCluster(deps.rds, props.ClusterIdentifier);
  if (cluster === undefined) throw new Error(`cluster ${props.ClusterIdentifier} not found`);
  const status = cluster.ActivityStreamStatus;
  (deps.log ?? console.log)(`${props.ClusterIdentifier}: activity stream ${status ?? 'not set'}`);
  if (status === 'starting') return { IsComplete: false };
  if (status !== 'started')
    throw new Error(
      `the activity stream of ${props.ClusterIdentifier} is ${status ?? 'not set'}, not starting or started: see the cluster's events in the RDS console`,
    );
  return {
    IsComplete: true,
    Data: {
      StreamName: required(
        cluster.ActivityStreamKinesisStreamName,
        'ActivityStreamKinesisStreamName',
      ),
      ResourceId: required(cluster.DbClusterResourceId, 'DbClusterResourceId'),
    },
  };
}

interface StreamSettings {
  readonly clusterArn: string;
  readonly kmsKeyArn: string;
  readonly mode: 'sync' | 'async';
}

function streamSettings(props: ActivityStreamProperties): StreamSettings {
  const clusterArn = required(props.ClusterArn, 'ClusterArn');
  const kmsKeyArn = required(props.KmsKeyArn, 'KmsKeyArn');
  if (props.Mode !== 'sync' && props.Mode !== 'async')
    throw new Error(`Mode must be "sync" or "async", not ${JSON.stringify(props.Mode)}`);
  return { clusterArn, kmsKeyArn, mode: props.Mode };
}

/** Mode and key cannot change on a running stream: a stop and a start would each restart the instances. */
function refuseInPlaceChange(
  props: ActivityStreamProperties,
  old: ActivityStreamProperties | undefined,
): void {
  const changed = (['Mode', 'KmsKeyArn'] as const).filter((name) => old?.[name] !== props[name]);
  if (changed.length === 0) return;
  throw new Error(
    `${changed.join(' and ')} of the running activity stream of ${props.ClusterIdentifier} cannot change in place: stopping and starting it restarts the instances twice. Deploy with activityStream.enabled false first, then enable it with the new settings.`,
  );
}

async function startStream(
  rds: RDSClient,
  identifier: string,
  stream: StreamSettings,
  log: (message: string) => void,
): Promise<void> {
  const cluster = await describeCluster(rds, identifier);
  if (cluster === undefined) throw new Error(`cluster ${identifier} not found`);
  const status = cluster.ActivityStreamStatus;
  if (status === 'started' || status === 'starting') {
    // A stream someone started already is adopted only when it is the one asked for.
    const sameKey = keyId(cluster.ActivityStreamKmsKeyId) === keyId(stream.kmsKeyArn);
    if (sameKey && cluster.ActivityStreamMode === stream.mode) {
      log(`${identifier}: activity stream already ${status}, adopted`);
      return;
    }
    throw new Error(
      `${identifier} already has an activity stream (mode ${cluster.ActivityStreamMode}, key ${cluster.ActivityStreamKmsKeyId}) that is not the one this stack configures: stop it first`,
    );
  }
  if (status === 'stopping')
    throw new Error(`${identifier} is stopping its activity stream: deploy again once it stopped`);
  const out = await rds.send(
    new StartActivityStreamCommand({
      ResourceArn: stream.clusterArn,
      Mode: stream.mode,
      KmsKeyId: stream.kmsKeyArn,
      // The event source mapping needs the Kinesis stream now, not at the maintenance window.
      ApplyImmediately: true,
    }),
  );
  log(`${identifier}: activity stream ${out.Status ?? 'requested'} to ${out.KinesisStreamName}`);
}

async function stopStream(
  rds: RDSClient,
  identifier: string,
  clusterArn: string,
  log: (message: string) => void,
): Promise<void> {
  const cluster = await describeCluster(rds, identifier);
  const status = cluster?.ActivityStreamStatus;
  if (status !== 'started' && status !== 'starting') {
    log(`${identifier}: activity stream ${status ?? 'absent'}, nothing to stop`);
    return;
  }
  await rds.send(
    new StopActivityStreamCommand({ ResourceArn: clusterArn, ApplyImmediately: true }),
  );
  log(`${identifier}: activity stream stopping`);
}

async function describeCluster(rds: RDSClient, identifier: string): Promise<DBCluster | undefined> {
  try {
    const out = await rds.send(new DescribeDBClustersCommand({ DBClusterIdentifier: identifier }));
    return out.DBClusters?.[0];
  } catch (error) {
    if (error instanceof DBClusterNotFoundFault) return undefined;
    throw error;
  }
}

/** The key id of a key ARN, alias-free key id, or undefined. */
function keyId(key: string | undefined): string | undefined {
  return key?.split('/').pop();
}

function required(value: string | undefined, name: string): string {
  if (value === undefined || value === '') throw new Error(`${name} is missing`);
  return value;
}

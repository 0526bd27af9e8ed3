import {
  DBClusterNotFoundFault,
  DescribeDBClustersCommand,
  RDSClient,
  StartActivityStreamCommand,
  StopActivityStreamCommand,
  type DBCluster,
} from '@aws-sdk/client-rds';
import { mockClient } from 'aws-sdk-client-mock';
import {
  activityStreamSettled,
  controlActivityStream,
  type ActivityStreamEvent,
  type ActivityStreamProperties,
} from '../../src/lambda/activity-stream/control';

const rdsMock = mockClient(RDSClient);
const rds = new RDSClient({ region: 'eu-west-1' });
const deps = { rds, log: () => {} };

const CLUSTER_ARN = 'arn:aws:rds:eu-west-1:123456789012:cluster:app-source';
const KEY_ARN = 'arn:aws:kms:eu-west-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab';
const RESOURCE_ID = 'cluster-4PWJ3DEXAMPLE';
const STREAM_NAME = `aws-rds-das-${RESOURCE_ID}`;

const STREAM: ActivityStreamProperties = {
  Action: 'stream',
  ClusterIdentifier: 'app-source',
  ClusterArn: CLUSTER_ARN,
  KmsKeyArn: KEY_ARN,
  Mode: 'async',
  Retain: 'false',
};

/** A cluster as DescribeDBClusters returns it. */
function cluster(stream: Partial<DBCluster> = {}): DBCluster {
  return {
    DBClusterIdentifier: 'app-source',
    DBClusterArn: CLUSTER_ARN,
    DbClusterResourceId: RESOURCE_ID,
    Engine: 'aurora-postgresql',
    Status: 'available',
    ...stream,
  };
}

function started(mode = 'async', key = KEY_ARN): Partial<DBCluster> {
  return {
    ActivityStreamStatus: 'started',
    ActivityStreamMode: mode as 'async',
    ActivityStreamKmsKeyId: key,
    ActivityStreamKinesisStreamName: STREAM_NAME,
  };
}

function event(
  RequestType: ActivityStreamEvent['RequestType'],
  props: ActivityStreamProperties = STREAM,
  extra: Partial<ActivityStreamEvent> = {},
): ActivityStreamEvent {
  return { RequestType, ResourceProperties: props, ...extra };
}

beforeEach(() => rdsMock.reset());

describe('activity stream custom resource: create', () => {
  it('starts the stream on the cluster with the stack key, asynchronously and immediately', async () => {
    rdsMock
      .on(DescribeDBClustersCommand)
      .resolves({ DBClusters: [cluster({ ActivityStreamStatus: 'stopped' })] });
    rdsMock.on(StartActivityStreamCommand).resolves({
      KinesisStreamName: STREAM_NAME,
      Status: 'starting',
      Mode: 'async',
      KmsKeyId: KEY_ARN,
      ApplyImmediately: true,
    });
    const response = await controlActivityStream(event('Create'), deps);
    expect(response).toEqual({ PhysicalResourceId: `${CLUSTER_ARN}/activity-stream` });
    expect(rdsMock.commandCalls(DescribeDBClustersCommand)[0]!.args[0].input).toEqual({
      DBClusterIdentifier: 'app-source',
    });
    expect(
      rdsMock.commandCalls(StartActivityStreamCommand).map((call) => call.args[0].input),
    ).toEqual([
      { ResourceArn: CLUSTER_ARN, Mode: 'async', KmsKeyId: KEY_ARN, ApplyImmediately: true },
    ]);
  });

  it('passes sync mode through', async () => {
    rdsMock.on(DescribeDBClustersCommand).resolves({ DBClusters: [cluster()] });
    rdsMock.on(StartActivityStreamCommand).resolves({ Status: 'starting' });
    await controlActivityStream(event('Create', { ...STREAM, Mode: 'sync' }), deps);
    expect(rdsMock.commandCalls(StartActivityStreamCommand)[0]!.args[0].input.Mode).toBe('sync');
  });

  it('adopts a stream already started with the same key and mode, without starting it again', async () => {
    // DescribeDBClusters reports the key by id here; the resource passes the ARN.
    const keyId = KEY_ARN.split('/').pop()!;
    rdsMock
      .on(DescribeDBClustersCommand)
      .resolves({ DBClusters: [cluster(started('async', keyId))] });
    await controlActivityStream(event('Create'), deps);
    expect(rdsMock.commandCalls(StartActivityStreamCommand)).toHaveLength(0);
  });

  it('refuses a stream someone started with another key or mode, naming both', async () => {
    const otherKey = 'arn:aws:kms:eu-west-1:123456789012:key/other';
    rdsMock
      .on(DescribeDBClustersCommand)
      .resolves({ DBClusters: [cluster(started('async', otherKey))] });
    await expect(controlActivityStream(event('Create'), deps)).rejects.toThrow(
      /app-source already has an activity stream \(mode async, key .*key\/other\).*stop it first/,
    );
    rdsMock.on(DescribeDBClustersCommand).resolves({ DBClusters: [cluster(started('sync'))] });
    await expect(controlActivityStream(event('Create'), deps)).rejects.toThrow(/mode sync/);
    expect(rdsMock.commandCalls(StartActivityStreamCommand)).toHaveLength(0);
  });

  it('refuses to start while the stream is stopping, and a missing cluster, by name', async () => {
    rdsMock
      .on(DescribeDBClustersCommand)
      .resolves({ DBClusters: [cluster({ ActivityStreamStatus: 'stopping' })] });
    await expect(controlActivityStream(event('Create'), deps)).rejects.toThrow(
      /stopping its activity stream/,
    );
    rdsMock
      .on(DescribeDBClustersCommand)
      .rejects(
        new DBClusterNotFoundFault({ message: 'DBCluster app-source not found.', $metadata: {} }),
      );
    await expect(controlActivityStream(event('Create'), deps)).rejects.toThrow(
      'cluster app-source not found',
    );
  });

  it('refuses a resource without key, cluster ARN or a valid mode', async () => {
    const { KmsKeyArn: _key, ...noKey } = STREAM;
    await expect(controlActivityStream(event('Create', noKey), deps)).rejects.toThrow(
      'KmsKeyArn is missing',
    );
    await expect(
      controlActivityStream(event('Create', { ...STREAM, Mode: 'fast' as 'sync' }), deps),
    ).rejects.toThrow(/Mode must be "sync" or "async"/);
    expect(rdsMock.calls()).toHaveLength(0);
  });
});

describe('activity stream custom resource: waiting', () => {
  it('is complete once started, returning the Kinesis stream name RDS reports', async () => {
    rdsMock
      .on(DescribeDBClustersCommand)
      .resolvesOnce({ DBClusters: [cluster({ ActivityStreamStatus: 'starting' })] })
      .resolves({ DBClusters: [cluster(started())] });
    expect(await activityStreamSettled(event('Create'), deps)).toEqual({ IsComplete: false });
    expect(await activityStreamSettled(event('Create'), deps)).toEqual({
      IsComplete: true,
      Data: { StreamName: STREAM_NAME, ResourceId: RESOURCE_ID },
    });
  });

  it('fails, pointing at the cluster events, when the stream ends up neither starting nor started', async () => {
    rdsMock
      .on(DescribeDBClustersCommand)
      .resolves({ DBClusters: [cluster({ ActivityStreamStatus: 'stopped' })] });
    await expect(activityStreamSettled(event('Create'), deps)).rejects.toThrow(
      /activity stream of app-source is stopped.*cluster's events/,
    );
  });

  it('waits on delete until the stream is stopped, or the cluster gone', async () => {
    const deleting = event('Delete', STREAM, {
      PhysicalResourceId: `${CLUSTER_ARN}/activity-stream`,
    });
    rdsMock
      .on(DescribeDBClustersCommand)
      .resolves({ DBClusters: [cluster({ ActivityStreamStatus: 'stopping' })] });
    expect(await activityStreamSettled(deleting, deps)).toEqual({ IsComplete: false });
    rdsMock
      .on(DescribeDBClustersCommand)
      .resolves({ DBClusters: [cluster({ ActivityStreamStatus: 'stopped' })] });
    expect(await activityStreamSettled(deleting, deps)).toEqual({ IsComplete: true });
    rdsMock
      .on(DescribeDBClustersCommand)
      .rejects(new DBClusterNotFoundFault({ message: 'gone', $metadata: {} }));
    expect(await activityStreamSettled(deleting, deps)).toEqual({ IsComplete: true });
  });
});

describe('activity stream custom resource: delete and update', () => {
  const physical = { PhysicalResourceId: `${CLUSTER_ARN}/activity-stream` };

  it('stops a started stream on delete, immediately', async () => {
    rdsMock.on(DescribeDBClustersCommand).resolves({ DBClusters: [cluster(started())] });
    rdsMock.on(StopActivityStreamCommand).resolves({ Status: 'stopping' });
    expect(await controlActivityStream(event('Delete', STREAM, physical), deps)).toEqual(physical);
    expect(
      rdsMock.commandCalls(StopActivityStreamCommand).map((call) => call.args[0].input),
    ).toEqual([{ ResourceArn: CLUSTER_ARN, ApplyImmediately: true }]);
  });

  it('leaves a retained stream running, asking RDS nothing', async () => {
    const retained = { ...STREAM, Retain: 'true' as const };
    expect(await controlActivityStream(event('Delete', retained, physical), deps)).toEqual(
      physical,
    );
    expect(await activityStreamSettled(event('Delete', retained, physical), deps)).toEqual({
      IsComplete: true,
    });
    expect(rdsMock.calls()).toHaveLength(0);
  });

  it('deletes cleanly when the stream is already stopped or the cluster is gone', async () => {
    rdsMock
      .on(DescribeDBClustersCommand)
      .resolves({ DBClusters: [cluster({ ActivityStreamStatus: 'stopped' })] });
    await controlActivityStream(event('Delete', STREAM, physical), deps);
    rdsMock
      .on(DescribeDBClustersCommand)
      .rejects(new DBClusterNotFoundFault({ message: 'gone', $metadata: {} }));
    await controlActivityStream(event('Delete', STREAM, physical), deps);
    expect(rdsMock.commandCalls(StopActivityStreamCommand)).toHaveLength(0);
  });

  it('refuses to change mode or key of the running stream in place, and lets Retain change', async () => {
    const update = (props: ActivityStreamProperties) =>
      controlActivityStream(
        event('Update', props, { ...physical, OldResourceProperties: STREAM }),
        deps,
      );
    await expect(update({ ...STREAM, Mode: 'sync' })).rejects.toThrow(
      /Mode of the running activity stream of app-source cannot change in place.*enabled false first/,
    );
    await expect(update({ ...STREAM, KmsKeyArn: `${KEY_ARN}-new` })).rejects.toThrow(/KmsKeyArn/);
    expect(await update({ ...STREAM, Retain: 'true' })).toEqual(physical);
    expect(rdsMock.calls()).toHaveLength(0);
  });

  it('starts the stream on another cluster under a new physical id (CloudFormation then deletes the old one)', async () => {
    const other = 'arn:aws:rds:eu-west-1:123456789012:cluster:other';
    rdsMock.on(DescribeDBClustersCommand).resolves({ DBClusters: [cluster()] });
    rdsMock.on(StartActivityStreamCommand).resolves({ Status: 'starting' });
    const response = await controlActivityStream(
      event(
        'Update',
        { ...STREAM, ClusterIdentifier: 'other', ClusterArn: other },
        { ...physical, OldResourceProperties: STREAM },
      ),
      deps,
    );
    expect(response.PhysicalResourceId).toBe(`${other}/activity-stream`);
    expect(rdsMock.commandCalls(StartActivityStreamCommand)[0]!.args[0].input.ResourceArn).toBe(
      other,
    );
  });
});

describe('cluster resource id lookup (existing clusters)', () => {
  const describe = { Action: 'describe' as const, ClusterIdentifier: 'app-source' };

  it('returns the DbClusterResourceId the key policy is bound to', async () => {
    rdsMock.on(DescribeDBClustersCommand).resolves({ DBClusters: [cluster()] });
    expect(await controlActivityStream(event('Create', describe), deps)).toEqual({
      PhysicalResourceId: RESOURCE_ID,
      Data: { ResourceId: RESOURCE_ID, ClusterArn: CLUSTER_ARN },
    });
    expect(await activityStreamSettled(event('Create', describe), deps)).toEqual({
      IsComplete: true,
    });
  });

  it('names a missing cluster, and deletes without asking RDS', async () => {
    rdsMock
      .on(DescribeDBClustersCommand)
      .rejects(new DBClusterNotFoundFault({ message: 'gone', $metadata: {} }));
    await expect(controlActivityStream(event('Create', describe), deps)).rejects.toThrow(
      'cluster app-source not found',
    );
    rdsMock.reset();
    await controlActivityStream(
      event('Delete', describe, { PhysicalResourceId: RESOURCE_ID }),
      deps,
    );
    expect(rdsMock.calls()).toHaveLength(0);
  });
});

import { CloudWatchClient, GetMetricDataCommand } from '@aws-sdk/client-cloudwatch';
import {
  DatabaseMigrationServiceClient,
  DescribeReplicationConfigsCommand,
  DescribeReplicationInstancesCommand,
  DescribeReplicationsCommand,
  DescribeReplicationTasksCommand,
  DescribeTableStatisticsCommand,
  ReloadTablesCommand,
  ResourceNotFoundFault,
  StartReplicationCommand,
  StartReplicationTaskCommand,
  StopReplicationTaskCommand,
  type ReplicationTask,
} from '@aws-sdk/client-database-migration-service';
import { mockClient } from 'aws-sdk-client-mock';
import { controlReplication, type ControlEvent } from '../../src/lambda/start-task/handler';
import { runCliInProcess } from '../support/cli';

const dmsMock = mockClient(DatabaseMigrationServiceClient);
const cloudwatchMock = mockClient(CloudWatchClient);

const TASK_ARN = 'arn:aws:dms:eu-west-1:123456789012:task:ABCDEFGHIJKLMNOPQRSTUVWXYZ';
const INSTANCE_ARN = 'arn:aws:dms:eu-west-1:123456789012:rep:INSTANCE1234567890';
const CONFIG_ARN = 'arn:aws:dms:eu-west-1:123456789012:replication-config:CONFIG1234567890';

/** A task as DescribeReplicationTasks returns it (WithoutSettings: no mappings/settings). */
function task(status: string, hasRun: boolean): ReplicationTask {
  return {
    ReplicationTaskIdentifier: 'audittrail-task',
    ReplicationTaskArn: TASK_ARN,
    SourceEndpointArn: 'arn:aws:dms:eu-west-1:123456789012:endpoint:SOURCE',
    TargetEndpointArn: 'arn:aws:dms:eu-west-1:123456789012:endpoint:TARGET',
    ReplicationInstanceArn: INSTANCE_ARN,
    MigrationType: 'full-load-and-cdc',
    Status: status,
    ReplicationTaskCreationDate: new Date('2026-11-20T10:00:00Z'),
    ...(hasRun && {
      ReplicationTaskStartDate: new Date('2026-11-20T10:05:00Z'),
      StopReason: status === 'stopped' ? 'Stop Reason NORMAL' : undefined,
      ReplicationTaskStats: {
        FullLoadProgressPercent: 100,
        ElapsedTimeMillis: 125_000,
        TablesLoaded: 3,
        TablesLoading: 0,
        TablesQueued: 0,
        TablesErrored: 0,
        FreshStartDate: new Date('2026-11-20T10:05:00Z'),
        StartDate: new Date('2026-11-20T10:05:00Z'),
        FullLoadStartDate: new Date('2026-11-20T10:05:10Z'),
        FullLoadFinishDate: new Date('2026-11-20T10:07:00Z'),
      },
    }),
  };
}

/** Answers DescribeReplicationTasks with each status in turn (the last one repeats). */
function taskStatuses(hasRun: boolean, ...statuses: string[]): void {
  const describe = dmsMock.on(DescribeReplicationTasksCommand);
  for (const status of statuses)
    describe.resolvesOnce({ ReplicationTasks: [task(status, hasRun)] });
  describe.resolves({ ReplicationTasks: [task(statuses.at(-1) ?? 'running', hasRun)] });
}

const wait = { pollMs: 0, timeoutMs: 5_000 };
const event = (
  RequestType: ControlEvent['RequestType'],
  props: Partial<ControlEvent['ResourceProperties']>,
): ControlEvent => ({
  RequestType,
  ResourceProperties: {
    Phase: 'start',
    Kind: 'task',
    Identifier: 'audittrail-task',
    Arn: TASK_ARN,
    Fingerprint: 'f1',
    ...props,
  },
});
const run = (e: ControlEvent) =>
  controlReplication(e, {
    client: new DatabaseMigrationServiceClient({ region: 'eu-west-1' }),
    wait,
    log: () => {},
  });

beforeEach(() => {
  dmsMock.reset();
  cloudwatchMock.reset();
});

describe('start-task custom resource', () => {
  it('prepare does nothing on create: the task does not exist yet', async () => {
    const response = await run(event('Create', { Phase: 'prepare', Arn: undefined }));
    expect(response.PhysicalResourceId).toBe('audittrail-task-prepare');
    expect(dmsMock.calls()).toHaveLength(0);
  });

  it('prepare stops a running task before CloudFormation modifies it, and waits until stopped', async () => {
    taskStatuses(true, 'running', 'running', 'stopping', 'stopped');
    dmsMock.on(StopReplicationTaskCommand).resolves({ ReplicationTask: task('stopping', true) });
    const response = await run(
      event('Update', { Phase: 'prepare', Arn: undefined, Fingerprint: 'f2' }),
    );
    expect(response.Data).toEqual({ WasRunning: 'true' });
    expect(dmsMock.commandCalls(DescribeReplicationTasksCommand)[0]?.args[0].input).toEqual({
      Filters: [{ Name: 'replication-task-id', Values: ['audittrail-task'] }],
      WithoutSettings: true,
    });
    expect(
      dmsMock.commandCalls(StopReplicationTaskCommand).map((call) => call.args[0].input),
    ).toEqual([{ ReplicationTaskArn: TASK_ARN }]);
    expect(dmsMock.commandCalls(DescribeReplicationTasksCommand).length).toBeGreaterThanOrEqual(3);
  });

  it('prepare leaves a stopped task alone', async () => {
    taskStatuses(true, 'stopped');
    await run(event('Update', { Phase: 'prepare', Arn: undefined }));
    expect(dmsMock.commandCalls(StopReplicationTaskCommand)).toHaveLength(0);
  });

  it('start gives a new task a fresh start (full load, then CDC) once it is ready', async () => {
    taskStatuses(false, 'creating', 'ready', 'starting', 'running');
    dmsMock.on(StartReplicationTaskCommand).resolves({ ReplicationTask: task('starting', false) });
    const response = await run(event('Create', {}));
    expect(
      dmsMock.commandCalls(StartReplicationTaskCommand).map((call) => call.args[0].input),
    ).toEqual([{ ReplicationTaskArn: TASK_ARN, StartReplicationTaskType: 'start-replication' }]);
    expect(response).toEqual({
      PhysicalResourceId: 'audittrail-task-start',
      Data: { Status: 'running' },
    });
  });

  it('start resumes a task that ran before (after an update), never reloading it', async () => {
    taskStatuses(true, 'stopped', 'starting', 'running');
    dmsMock.on(StartReplicationTaskCommand).resolves({ ReplicationTask: task('starting', true) });
    await run(event('Update', { Fingerprint: 'f2' }));
    expect(
      dmsMock.commandCalls(StartReplicationTaskCommand)[0]?.args[0].input.StartReplicationTaskType,
    ).toBe('resume-processing');
  });

  it('start does not restart a task that is already running', async () => {
    taskStatuses(true, 'running');
    await run(event('Update', {}));
    expect(dmsMock.commandCalls(StartReplicationTaskCommand)).toHaveLength(0);
  });

  it('start reports a task that fails to start', async () => {
    dmsMock
      .on(DescribeReplicationTasksCommand)
      .resolvesOnce({ ReplicationTasks: [task('ready', false)] })
      .resolves({
        ReplicationTasks: [
          { ...task('failed', false), LastFailureMessage: 'Test connection failed for endpoint' },
        ],
      });
    dmsMock.on(StartReplicationTaskCommand).resolves({});
    await expect(run(event('Create', {}))).rejects.toThrow(
      /failed: Test connection failed for endpoint/,
    );
  });

  it('on delete, stops the task so CloudFormation can delete it', async () => {
    taskStatuses(true, 'running', 'stopping', 'stopped');
    dmsMock.on(StopReplicationTaskCommand).resolves({});
    await run({ ...event('Delete', {}), PhysicalResourceId: 'audittrail-task-start' });
    expect(dmsMock.commandCalls(StopReplicationTaskCommand)).toHaveLength(1);
  });

  it('on delete, tolerates a task that is already gone', async () => {
    dmsMock
      .on(DescribeReplicationTasksCommand)
      .rejects(new ResourceNotFoundFault({ message: 'not found', $metadata: {} }));
    await expect(run({ ...event('Delete', {}), PhysicalResourceId: 'x' })).resolves.toEqual({
      PhysicalResourceId: 'x',
    });
  });

  it('starts a DMS Serverless replication through its replication config', async () => {
    dmsMock
      .on(DescribeReplicationsCommand)
      .resolvesOnce({
        Replications: [
          {
            ReplicationConfigArn: CONFIG_ARN,
            ReplicationConfigIdentifier: 'cfg',
            Status: 'created',
          },
        ],
      })
      .resolves({
        Replications: [
          {
            ReplicationConfigArn: CONFIG_ARN,
            ReplicationConfigIdentifier: 'cfg',
            Status: 'running',
          },
        ],
      });
    dmsMock.on(StartReplicationCommand).resolves({});
    await run(event('Create', { Kind: 'serverless', Identifier: 'cfg', Arn: CONFIG_ARN }));
    expect(dmsMock.commandCalls(StartReplicationCommand)[0]?.args[0].input).toEqual({
      ReplicationConfigArn: CONFIG_ARN,
      StartReplicationType: 'start-replication',
    });
  });

  it('prepare finds a serverless replication by its config identifier', async () => {
    dmsMock
      .on(DescribeReplicationConfigsCommand)
      .resolves({ ReplicationConfigs: [{ ReplicationConfigArn: CONFIG_ARN }] });
    dmsMock
      .on(DescribeReplicationsCommand)
      .resolves({ Replications: [{ ReplicationConfigArn: CONFIG_ARN, Status: 'stopped' }] });
    await run(
      event('Update', { Phase: 'prepare', Kind: 'serverless', Identifier: 'cfg', Arn: undefined }),
    );
    expect(dmsMock.commandCalls(DescribeReplicationConfigsCommand)[0]?.args[0].input).toEqual({
      Filters: [{ Name: 'replication-config-id', Values: ['cfg'] }],
    });
  });
});

/** Runs the CLI in-process (the mocks live here) and returns what it printed. */
const cli = (...args: string[]) => runCliInProcess(args);

describe('audit-trail status', () => {
  beforeEach(() => {
    taskStatuses(true, 'running');
    dmsMock.on(DescribeReplicationInstancesCommand).resolves({
      ReplicationInstances: [
        {
          ReplicationInstanceIdentifier: 'audittrail-instance',
          ReplicationInstanceArn: INSTANCE_ARN,
        },
      ],
    });
    dmsMock
      .on(DescribeTableStatisticsCommand)
      .resolvesOnce({
        ReplicationTaskArn: TASK_ARN,
        Marker: 'page-2',
        TableStatistics: [
          {
            SchemaName: 'public',
            TableName: 'orders',
            Inserts: 12,
            Updates: 30,
            Deletes: 2,
            FullLoadRows: 1000,
            TableState: 'Table completed',
            LastUpdateTime: new Date('2026-11-22T09:00:00Z'),
          },
        ],
      })
      .resolves({
        ReplicationTaskArn: TASK_ARN,
        TableStatistics: [
          {
            SchemaName: 'sales',
            TableName: 'order_items',
            FullLoadRows: 5,
            TableState: 'Table completed',
          },
        ],
      });
    cloudwatchMock.on(GetMetricDataCommand).resolves({
      MetricDataResults: [
        {
          Id: 'source',
          Label: 'CDCLatencySource',
          Timestamps: [new Date()],
          Values: [3],
          StatusCode: 'Complete',
        },
        {
          Id: 'target',
          Label: 'CDCLatencyTarget',
          Timestamps: [],
          Values: [],
          StatusCode: 'Complete',
        },
      ],
    });
  });

  it('prints the task state, CDC latency and every table across pages', async () => {
    const { stdout, error } = await cli('status', '--task-arn', TASK_ARN, '--region', 'eu-west-1');
    expect(error).toBeUndefined();
    expect(stdout).toContain('task audittrail-task: running');
    expect(stdout).toContain('CDC latency: source 3 s, target no data');
    expect(stdout).toContain(
      'public.orders: Table completed, full load 1000 rows, 12 inserts, 30 updates, 2 deletes',
    );
    expect(stdout).toContain('sales.order_items: Table completed, full load 5 rows');
    expect(dmsMock.commandCalls(DescribeTableStatisticsCommand)[1]?.args[0].input.Marker).toBe(
      'page-2',
    );
    const dimensions =
      cloudwatchMock.commandCalls(GetMetricDataCommand)[0]?.args[0].input.MetricDataQueries?.[0]
        ?.MetricStat?.Metric?.Dimensions;
    expect(dimensions).toEqual([
      { Name: 'ReplicationInstanceIdentifier', Value: 'audittrail-instance' },
      { Name: 'ReplicationTaskIdentifier', Value: 'ABCDEFGHIJKLMNOPQRSTUVWXYZ' },
    ]);
  });

  it('takes the region from the task ARN when --region is not given', async () => {
    const saved = {
      AWS_REGION: process.env.AWS_REGION,
      AWS_DEFAULT_REGION: process.env.AWS_DEFAULT_REGION,
    };
    process.env.AWS_REGION = 'us-east-2';
    delete process.env.AWS_DEFAULT_REGION;
    try {
      const { error } = await cli('status', '--task-arn', TASK_ARN);
      expect(error).toBeUndefined();
      const client = dmsMock.commandCalls(DescribeReplicationTasksCommand)[0]?.thisValue as
        DatabaseMigrationServiceClient | undefined;
      expect(await client?.config.region()).toBe('eu-west-1');
    } finally {
      Object.assign(process.env, saved);
      if (saved.AWS_REGION === undefined) delete process.env.AWS_REGION;
      if (saved.AWS_DEFAULT_REGION === undefined) delete process.env.AWS_DEFAULT_REGION;
    }
  });

  it('prints JSON with --json', async () => {
    const { stdout } = await cli('status', '--task-arn', TASK_ARN, '--json');
    const status = JSON.parse(stdout) as { status: string; tables: unknown[]; cdcLatency: unknown };
    expect(status.status).toBe('running');
    expect(status.tables).toHaveLength(2);
    expect(status.cdcLatency).toEqual({ sourceSeconds: 3 });
  });

  it('refuses an ARN that is not a task ARN, naming it', async () => {
    const { error } = await cli(
      'status',
      '--task-arn',
      'arn:aws:dms:eu-west-1:123456789012:endpoint:X',
    );
    expect(error?.message).toMatch(/not a DMS replication task ARN/);
  });
});

describe('audit-trail task', () => {
  it('reload sends schema.table names to ReloadTables', async () => {
    dmsMock.on(ReloadTablesCommand).resolves({ ReplicationTaskArn: TASK_ARN });
    const { stdout, error } = await cli(
      'task',
      'reload',
      'sales.order_items',
      'orders',
      '--task-arn',
      TASK_ARN,
    );
    expect(error).toBeUndefined();
    expect(dmsMock.commandCalls(ReloadTablesCommand)[0]?.args[0].input).toEqual({
      ReplicationTaskArn: TASK_ARN,
      TablesToReload: [
        { SchemaName: 'sales', TableName: 'order_items' },
        { SchemaName: 'public', TableName: 'orders' },
      ],
      ReloadOption: 'data-reload',
    });
    expect(stdout).toContain('reloading sales.order_items, orders');
  });

  it('start --no-wait resumes a stopped task', async () => {
    taskStatuses(true, 'stopped');
    dmsMock.on(StartReplicationTaskCommand).resolves({ ReplicationTask: task('starting', true) });
    const { stdout } = await cli('task', 'start', '--task-arn', TASK_ARN, '--no-wait');
    expect(stdout.trim()).toBe('resuming');
    expect(
      dmsMock.commandCalls(StartReplicationTaskCommand)[0]?.args[0].input.StartReplicationTaskType,
    ).toBe('resume-processing');
  });

  it('stop --no-wait stops a running task', async () => {
    taskStatuses(true, 'running');
    dmsMock.on(StopReplicationTaskCommand).resolves({ ReplicationTask: task('stopping', true) });
    const { stdout } = await cli('task', 'stop', '--task-arn', TASK_ARN, '--no-wait');
    expect(stdout.trim()).toBe('stopping');
  });

  it('turns a DMS error into a one-line CLI error', async () => {
    dmsMock
      .on(DescribeReplicationTasksCommand)
      .rejects(new ResourceNotFoundFault({ message: 'Replication Task not found', $metadata: {} }));
    const { error } = await cli('task', 'start', '--task-arn', TASK_ARN, '--no-wait');
    expect(error?.name).toBe('CliError');
    expect(error?.message).toBe(`task start: no replication task ${TASK_ARN}`);
    // The wrapper keeps the code and hint of the error it wraps.
    expect(error).toMatchObject({ code: 'TASK_NOT_FOUND', exitCode: 1 });
    expect((error as { hint?: string }).hint).toMatch(/check the task ARN and the region/);
  });
});

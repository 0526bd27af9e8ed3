import {
  DescribeReplicationConfigsCommand,
  DescribeReplicationsCommand,
  DescribeReplicationTasksCommand,
  StartReplicationCommand,
  StartReplicationTaskCommand,
  StopReplicationCommand,
  StopReplicationTaskCommand,
  type DatabaseMigrationServiceClient,
} from '@aws-sdk/client-database-migration-service';

/** What the kit needs to know about a task (or a DMS Serverless replication). */
export interface ReplicationState {
  readonly arn: string;
  /** DMS status: `ready`, `starting`, `running`, `stopping`, `stopped`, `failed`, ... */
  readonly status: string;
  /** Whether it has run before, so a start must resume rather than reload everything. */
  readonly hasRun: boolean;
  readonly stopReason?: string;
  readonly failure?: string;
}

/**
 * A replication the kit controls: a replication task on an instance, or a DMS Serverless
 * replication config. Both have the same life cycle (start fresh once, then stop/resume).
 */
export interface ReplicationHandle {
  readonly kind: 'task' | 'serverless';
  /** Looks the replication up by ARN; undefined when it does not exist. */
  describe(arn: string): Promise<ReplicationState | undefined>;
  /** Looks the replication up by its identifier (the name given at creation). */
  findByIdentifier(identifier: string): Promise<ReplicationState | undefined>;
  start(
    arn: string,
    mode: 'start-replication' | 'resume-processing' | 'reload-target',
  ): Promise<void>;
  stop(arn: string): Promise<void>;
}

/** Replication tasks on a replication instance. */
export function taskReplication(client: DatabaseMigrationServiceClient): ReplicationHandle {
  const describeBy = async (name: string, value: string): Promise<ReplicationState | undefined> => {
    try {
      const response = await client.send(
        new DescribeReplicationTasksCommand({
          Filters: [{ Name: name, Values: [value] }],
          WithoutSettings: true,
        }),
      );
      const task = response.ReplicationTasks?.[0];
      if (task?.ReplicationTaskArn === undefined) return undefined;
      return {
        arn: task.ReplicationTaskArn,
        status: task.Status ?? 'unknown',
        hasRun:
          task.ReplicationTaskStartDate !== undefined ||
          task.ReplicationTaskStats?.FreshStartDate !== undefined,
        ...(task.StopReason !== undefined && { stopReason: task.StopReason }),
        ...(task.LastFailureMessage !== undefined && { failure: task.LastFailureMessage }),
      };
    } catch (error) {
      if ((error as Error).name === 'ResourceNotFoundFault') return undefined;
      throw error;
    }
  };
  return {
    kind: 'task',
    describe: (arn) => describeBy('replication-task-arn', arn),
    findByIdentifier: (identifier) => describeBy('replication-task-id', identifier),
    async start(arn, mode) {
      await client.send(
        new StartReplicationTaskCommand({
          ReplicationTaskArn: arn,
          StartReplicationTaskType: mode,
        }),
      );
    },
    async stop(arn) {
      await client.send(new StopReplicationTaskCommand({ ReplicationTaskArn: arn }));
    },
  };
}

/** DMS Serverless replications (one per replication config). */
export function serverlessReplication(client: DatabaseMigrationServiceClient): ReplicationHandle {
  const describe = async (arn: string): Promise<ReplicationState | undefined> => {
    try {
      const response = await client.send(
        new DescribeReplicationsCommand({
          Filters: [{ Name: 'replication-config-arn', Values: [arn] }],
        }),
      );
      const replication = response.Replications?.[0];
      if (replication === undefined) return undefined;
      return {
        arn,
        status: replication.Status ?? 'unknown',
        hasRun:
          replication.ReplicationStats?.FreshStartDate !== undefined ||
          replication.StartReplicationType !== undefined,
        ...(replication.StopReason !== undefined && { stopReason: replication.StopReason }),
        ...(replication.FailureMessages?.length && {
          failure: replication.FailureMessages.join('; '),
        }),
      };
    } catch (error) {
      if ((error as Error).name === 'ResourceNotFoundFault') return undefined;
      throw error;
    }
  };
  return {
    kind: 'serverless',
    describe,
    async findByIdentifier(identifier) {
      const response = await client
        .send(
          new DescribeReplicationConfigsCommand({
            Filters: [{ Name: 'replication-config-id', Values: [identifier] }],
          }),
        )
        .catch((error: Error) => {
          if (error.name === 'ResourceNotFoundFault') return { ReplicationConfigs: [] };
          throw error;
        });
      const arn = response.ReplicationConfigs?.[0]?.ReplicationConfigArn;
      if (arn === undefined) return undefined;
      return (await describe(arn)) ?? { arn, status: 'created', hasRun: false };
    },
    async start(arn, mode) {
      await client.send(
        new StartReplicationCommand({ ReplicationConfigArn: arn, StartReplicationType: mode }),
      );
    },
    async stop(arn) {
      await client.send(new StopReplicationCommand({ ReplicationConfigArn: arn }));
    },
  };
}

/** Statuses from which a replication can be started or resumed. */
export const STARTABLE = new Set(['ready', 'stopped', 'failed', 'created']);
/** Statuses in which the replication is (about to be) moving data. */
export const ACTIVE = new Set(['running', 'starting', 'provisioning']);

/** Options for {@link waitForStatus}. */
export interface WaitOptions {
  /** Give up after this long. @default 600000 (10 minutes, inside a Lambda's 15) */
  readonly timeoutMs?: number;
  /** Pause between polls. @default 10000 */
  readonly pollMs?: number;
  /** Sleeps; replaced in tests. @default setTimeout */
  readonly sleep?: (ms: number) => Promise<void>;
}

/** Polls until the replication's status is one of `statuses`; throws on timeout or failure. */
export async function waitForStatus(
  handle: ReplicationHandle,
  arn: string,
  statuses: ReadonlySet<string>,
  options: WaitOptions = {},
): Promise<ReplicationState> {
  const timeoutMs = options.timeoutMs ?? 600_000;
  const pollMs = options.pollMs ?? 10_000;
  const sleep =
    options.sleep ?? ((ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms)));
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const state = await handle.describe(arn);
    if (state === undefined) throw new Error(`replication ${arn} does not exist`);
    if (statuses.has(state.status)) return state;
    if (state.status === 'failed' && !statuses.has('failed')) {
      throw new Error(
        `replication ${arn} failed: ${state.failure ?? state.stopReason ?? 'no reason given'}`,
      );
    }
    if (Date.now() >= deadline) {
      throw new Error(
        `replication ${arn} still "${state.status}" after ${Math.round(timeoutMs / 1000)} s`,
      );
    }
    await sleep(pollMs);
  }
}

/**
 * Stops a replication if it is moving data and waits until it has stopped, so
 * CloudFormation can modify it (a running task cannot be modified). Returns whether it
 * was running, which tells the caller to resume it afterwards.
 */
export async function stopIfActive(
  handle: ReplicationHandle,
  state: ReplicationState,
  options: WaitOptions = {},
): Promise<boolean> {
  if (ACTIVE.has(state.status)) {
    if (state.status !== 'provisioning' && state.status !== 'starting')
      await handle.stop(state.arn);
    else {
      // A starting replication cannot be stopped yet: let it come up first.
      await waitForStatus(handle, state.arn, new Set(['running']), options);
      await handle.stop(state.arn);
    }
    await waitForStatus(handle, state.arn, new Set(['stopped']), options);
    return true;
  }
  if (state.status === 'stopping')
    await waitForStatus(handle, state.arn, new Set(['stopped']), options);
  return false;
}

/**
 * Starts a replication: a fresh start (full load, then CDC) the first time, a resume
 * (CDC continues where it stopped, newly added tables are loaded) afterwards. Does
 * nothing when it is already running. Waits until it runs.
 */
export async function startOrResume(
  handle: ReplicationHandle,
  arn: string,
  options: WaitOptions = {},
): Promise<ReplicationState> {
  let state = await handle.describe(arn);
  if (state === undefined) throw new Error(`replication ${arn} does not exist`);
  if (state.status === 'stopping')
    state = await waitForStatus(handle, arn, new Set(['stopped']), options);
  if (!ACTIVE.has(state.status)) {
    if (!STARTABLE.has(state.status)) state = await waitForStatus(handle, arn, STARTABLE, options);
    await handle.start(arn, state.hasRun ? 'resume-processing' : 'start-replication');
  }
  return waitForStatus(handle, arn, new Set(['running']), options);
}

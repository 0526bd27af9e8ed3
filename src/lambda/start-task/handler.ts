import { DatabaseMigrationServiceClient } from '@aws-sdk/client-database-migration-service';
import {
  serverlessReplication,
  startOrResume,
  stopIfActive,
  taskReplication,
  type ReplicationHandle,
  type WaitOptions,
} from '../../dms/replication';
import type { CustomResourceEvent, OnEventResponse } from '../shared/custom-resource';

/**
 * Properties of the two custom resources this handler serves (strings, as
 * CloudFormation passes them).
 *
 * - `Phase: "prepare"` is created *before* the task (the task depends on it). Its
 *   properties carry a fingerprint of the mappings and settings, so it is updated exactly
 *   when the task is about to be modified: it then stops the running task, because
 *   CloudFormation cannot modify a running task.
 * - `Phase: "start"` depends on the task: on create and update it starts the task (fresh
 *   the first time, resume afterwards) and waits until it runs; on delete it stops the
 *   task so CloudFormation can delete it.
 */
export interface ReplicationControlProperties {
  readonly Phase: 'prepare' | 'start';
  /** `task` (replication instance) or `serverless` (replication config). */
  readonly Kind: 'task' | 'serverless';
  /** The task or replication config identifier (its fixed name). */
  readonly Identifier: string;
  /** The task or replication config ARN (phase `start` only). */
  readonly Arn?: string;
  /** Changes whenever the task's mappings, settings or endpoints change. */
  readonly Fingerprint?: string;
}

/** The event the CDK custom-resource provider framework passes to its onEvent handler. */
export type ControlEvent = CustomResourceEvent<ReplicationControlProperties>;

/** Dependencies, replaced in tests. */
export interface ControlDependencies {
  readonly client: DatabaseMigrationServiceClient;
  readonly wait?: WaitOptions;
  readonly log?: (message: string) => void;
}

function handleFor(
  kind: ReplicationControlProperties['Kind'],
  client: DatabaseMigrationServiceClient,
): ReplicationHandle {
  return kind === 'serverless' ? serverlessReplication(client) : taskReplication(client);
}

/** Handles one custom-resource event; exported for tests, wrapped by {@link handler}. */
export async function controlReplication(
  event: ControlEvent,
  deps: ControlDependencies,
): Promise<OnEventResponse> {
  const props = event.ResourceProperties;
  const log = deps.log ?? console.log;
  const handle = handleFor(props.Kind, deps.client);
  const physicalId = `${props.Identifier}-${props.Phase}`;

  if (props.Phase === 'prepare') {
    if (event.RequestType !== 'Update') return { PhysicalResourceId: physicalId };
    const state = await handle.findByIdentifier(props.Identifier);
    if (state === undefined) return { PhysicalResourceId: physicalId };
    const wasRunning = await stopIfActive(handle, state, deps.wait);
    log(`${props.Identifier}: ${wasRunning ? 'stopped for the update' : `left ${state.status}`}`);
    return { PhysicalResourceId: physicalId, Data: { WasRunning: String(wasRunning) } };
  }

  if (props.Arn === undefined) throw new Error('Arn is required for Phase "start"');
  if (event.RequestType === 'Delete') {
    const state = await handle.describe(props.Arn);
    if (state !== undefined) await stopIfActive(handle, state, deps.wait);
    log(`${props.Identifier}: stopped for deletion`);
    return { PhysicalResourceId: event.PhysicalResourceId ?? physicalId };
  }
  const state = await startOrResume(handle, props.Arn, deps.wait);
  log(`${props.Identifier}: ${state.status}`);
  return { PhysicalResourceId: physicalId, Data: { Status: state.status } };
}

let client: DatabaseMigrationServiceClient | undefined;

/** Lambda entry point (onEvent of a CDK custom-resource provider). */
export async function handler(event: ControlEvent): Promise<OnEventResponse> {
  client ??= new DatabaseMigrationServiceClient({});
  // Leave two minutes of the 15-minute Lambda limit for the response.
  return controlReplication(event, { client, wait: { timeoutMs: 12 * 60_000, pollMs: 15_000 } });
}

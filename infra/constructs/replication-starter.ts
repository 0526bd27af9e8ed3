import { Aws, CustomResource, Duration, Tags, type CfnResource } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import type * as logs from 'aws-cdk-lib/aws-logs';
import * as cr from 'aws-cdk-lib/custom-resources';
import { Construct } from 'constructs';
import type { ReplicationControlProperties } from '../../src/lambda/start-task/handler';
import { acknowledgeProviderFramework, bundledFunction } from './bundled-function';
import { acknowledge } from '../nag';

/** Tag whose value (the stack id) is the only DMS task or replication config the starter may start or stop. */
export const REPLICATION_TAG = 'audit-trail:replication';

/** Props of {@link ReplicationStarter}. */
export interface ReplicationStarterProps {
  /** `task` (replication instance) or `serverless` (replication config). */
  readonly kind: 'task' | 'serverless';
  /** The task (or replication config) identifier. */
  readonly identifier: string;
  /** The task (or replication config) ARN. */
  readonly arn: string;
  /** The task (or replication config) resource. */
  readonly replication: CfnResource;
  /**
   * Changes exactly when the task will be modified (mappings, settings, endpoints): the
   * task is then stopped before CloudFormation modifies it and resumed afterwards.
   */
  readonly fingerprint: string;
  /** @default RetentionDays.ONE_MONTH */
  readonly logRetention?: logs.RetentionDays;
}

/**
 * Starts the DMS task after deployment, safely across updates. Two custom resources
 * share one Lambda (on @aws-sdk/client-database-migration-service):
 * `Prepare` (the task depends on it) stops a running task when the task is about to be
 * modified, since CloudFormation cannot modify a running task; `Start` (depends on the
 * task) starts it fresh the first time and resumes it afterwards, and stops it when the
 * stack is deleted so the task can be deleted.
 */
export class ReplicationStarter extends Construct {
  readonly prepare: CustomResource;
  readonly start: CustomResource;

  constructor(scope: Construct, id: string, props: ReplicationStarterProps) {
    super(scope, id);
    const fn = bundledFunction(this, 'Function', {
      entry: 'src/lambda/start-task/handler.ts',
      description: 'audit-trail: stops the DMS task for updates and (re)starts it',
      timeout: Duration.minutes(14),
      memorySize: 256,
      ...(props.logRetention && { logRetention: props.logRetention }),
    });
    const resourceType = props.kind === 'serverless' ? 'replication-config' : 'task';
    // The Prepare resource runs before the task exists, so the policy cannot name its ARN:
    // the task carries a tag with this stack's id, and only a task with it may be touched.
    Tags.of(props.replication).add(REPLICATION_TAG, Aws.STACK_ID);
    fn.addToRolePolicy(
      new iam.PolicyStatement({
        actions:
          props.kind === 'serverless'
            ? ['dms:StartReplication', 'dms:StopReplication']
            : ['dms:StartReplicationTask', 'dms:StopReplicationTask'],
        resources: [`arn:${Aws.PARTITION}:dms:${Aws.REGION}:${Aws.ACCOUNT_ID}:${resourceType}:*`],
        conditions: { StringEquals: { [`aws:ResourceTag/${REPLICATION_TAG}`]: Aws.STACK_ID } },
      }),
    );
    fn.addToRolePolicy(
      new iam.PolicyStatement({
        // DMS Describe* actions support no resource-level permissions.
        actions: [
          'dms:DescribeReplicationTasks',
          'dms:DescribeReplications',
          'dms:DescribeReplicationConfigs',
        ],
        resources: ['*'],
      }),
    );
    const provider = new cr.Provider(this, 'Provider', { onEventHandler: fn });
    acknowledgeProviderFramework(provider, fn);
    acknowledge(
      fn,
      `DMS Describe* actions support no resource-level permissions; start/stop name no ARN because the Prepare step runs before the task exists, and are limited by condition to the one ${resourceType} tagged ${REPLICATION_TAG} = this stack's id`,
      'AwsSolutions-IAM5[Resource::*]',
      `AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:dms:<AWS::Region>:<AWS::AccountId>:${resourceType}:*]`,
    );

    const common = {
      Kind: props.kind,
      Identifier: props.identifier,
      Fingerprint: props.fingerprint,
    };
    const prepareProps: ReplicationControlProperties = { Phase: 'prepare', ...common };
    this.prepare = new CustomResource(this, 'Prepare', {
      serviceToken: provider.serviceToken,
      resourceType: 'Custom::AuditTrailReplicationPrepare',
      properties: prepareProps,
    });
    props.replication.node.addDependency(this.prepare);

    const startProps: ReplicationControlProperties = { Phase: 'start', Arn: props.arn, ...common };
    this.start = new CustomResource(this, 'Start', {
      serviceToken: provider.serviceToken,
      resourceType: 'Custom::AuditTrailReplicationStart',
      properties: startProps,
    });
    this.start.node.addDependency(props.replication);
  }
}

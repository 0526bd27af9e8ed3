import { CustomResource, Duration, Stack } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import type * as kms from 'aws-cdk-lib/aws-kms';
import type * as lambda from 'aws-cdk-lib/aws-lambda';
import type * as logs from 'aws-cdk-lib/aws-logs';
import * as cr from 'aws-cdk-lib/custom-resources';
import { Construct } from 'constructs';
import type { ActivityStreamProperties } from '../../src/lambda/activity-stream/control';
import { acknowledgeProviderFramework, bundledFunction } from '../constructs/bundled-function';
import { acknowledge } from '../nag';

/** Props of {@link ActivityStreamStarter}. */
export interface ActivityStreamStarterProps {
  /** Identifier of the Aurora cluster. */
  readonly clusterIdentifier: string;
  /** ARN of the Aurora cluster. */
  readonly clusterArn: string;
  /** `async` or `sync`. */
  readonly mode: 'async' | 'sync';
  /** Leave the stream running when the stack (or this resource) is deleted. @default false */
  readonly retain?: boolean;
  /** @default RetentionDays.ONE_MONTH */
  readonly logRetention?: logs.RetentionDays;
  /** How long to wait for the stream to start or stop (instances restart meanwhile). @default 1 hour */
  readonly timeout?: Duration;
}

/**
 * Starts and stops one Aurora cluster's Database Activity Stream, which CloudFormation
 * cannot do. Two functions serve the CDK provider framework: `on-event` calls
 * `StartActivityStream` (mode, the stream key, apply immediately) on create and
 * `StopActivityStream` on delete (unless retained); `is-complete` polls
 * `DescribeDBClusters` until the stream is started (its Kinesis stream name is then the
 * `StreamName` attribute) or stopped. Both may act on this one cluster only.
 *
 * The key is given to {@link start} after construction because the key policy names
 * the starter's {@link role}.
 */
export class ActivityStreamStarter extends Construct {
  /** The role of the on-event function: the one principal the key lets create grants through RDS. */
  readonly role: iam.IRole;
  private readonly provider: cr.Provider;
  private readonly props: ActivityStreamStarterProps;

  constructor(scope: Construct, id: string, props: ActivityStreamStarterProps) {
    super(scope, id);
    this.props = props;
    const onEvent = this.createFunction('OnEvent', 'on-event', 'starts and stops the stream', [
      'rds:StartActivityStream',
      'rds:StopActivityStream',
      'rds:DescribeDBClusters',
    ]);
    const isComplete = this.createFunction('IsComplete', 'is-complete', 'waits for the stream', [
      'rds:DescribeDBClusters',
    ]);
    this.role = onEvent.role!;
    this.provider = new cr.Provider(this, 'Provider', {
      onEventHandler: onEvent,
      isCompleteHandler: isComplete,
      queryInterval: Duration.seconds(30),
      totalTimeout: props.timeout ?? Duration.hours(1),
    });
    acknowledgeProviderFramework(this.provider, onEvent);
    acknowledgeWaiter(this.provider);
  }

  /** The resource that starts the stream with `key`; its `StreamName` attribute is the Kinesis stream. */
  start(key: kms.IKey): CustomResource {
    const properties: ActivityStreamProperties = {
      Action: 'stream',
      ClusterIdentifier: this.props.clusterIdentifier,
      ClusterArn: this.props.clusterArn,
      KmsKeyArn: key.keyArn,
      Mode: this.props.mode,
      Retain: this.props.retain ? 'true' : 'false',
    };
    return new CustomResource(this, 'Stream', {
      serviceToken: this.provider.serviceToken,
      resourceType: 'Custom::AuditTrailActivityStream',
      properties,
    });
  }

  /** Reads an existing cluster's `DbClusterResourceId` (attribute `ResourceId`). */
  describe(): CustomResource {
    const properties: ActivityStreamProperties = {
      Action: 'describe',
      ClusterIdentifier: this.props.clusterIdentifier,
    };
    return new CustomResource(this, 'Cluster', {
      serviceToken: this.provider.serviceToken,
      resourceType: 'Custom::AuditTrailClusterResourceId',
      properties,
    });
  }

  private createFunction(id: string, entry: string, what: string, actions: string[]) {
    const fn = bundledFunction(this, id, {
      entry: `src/lambda/activity-stream/${entry}.ts`,
      description: `audit-trail: ${what} (Database Activity Streams)`,
      timeout: Duration.minutes(1),
      memorySize: 256,
      ...(this.props.logRetention && { logRetention: this.props.logRetention }),
    });
    fn.addToRolePolicy(new iam.PolicyStatement({ actions, resources: [this.props.clusterArn] }));
    return fn;
  }
}

/**
 * With an isComplete handler the provider framework adds a Step Functions waiter with
 * its own functions and roles, all defined by aws-cdk-lib.
 */
function acknowledgeWaiter(provider: cr.Provider): void {
  const id = (name: string) => {
    const child = provider.node.findChild(name).node.defaultChild as lambda.CfnFunction;
    return Stack.of(provider).getLogicalId(child);
  };
  acknowledge(
    provider,
    "the provider framework functions and the waiter state machine may invoke any version of the framework's own functions (ARN:*), nothing else",
    `AwsSolutions-IAM5[Resource::<${id('framework-isComplete')}.Arn>:*]`,
    `AwsSolutions-IAM5[Resource::<${id('framework-onTimeout')}.Arn>:*]`,
    `AwsSolutions-IAM5[Resource::<${provider.isCompleteHandler ? Stack.of(provider).getLogicalId(provider.isCompleteHandler.node.defaultChild as lambda.CfnFunction) : ''}.Arn>:*]`,
  );
  acknowledge(
    provider,
    'the waiter state machine only carries the custom-resource event between polls; every attempt is logged by the is-complete function itself, and aws-cdk-lib offers no tracing for it',
    'AwsSolutions-SF1',
    'AwsSolutions-SF2',
  );
}

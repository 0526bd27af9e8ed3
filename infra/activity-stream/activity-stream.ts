import { RemovalPolicy, Stack, ArnFormat, type CustomResource } from 'aws-cdk-lib';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as events from 'aws-cdk-lib/aws-events';
import * as eventTargets from 'aws-cdk-lib/aws-events-targets';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as kinesis from 'aws-cdk-lib/aws-kinesis';
import type * as logs from 'aws-cdk-lib/aws-logs';
import type * as rds from 'aws-cdk-lib/aws-rds';
import type * as sqs from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';
import type { AccessAuditConfig } from '../../src/config/access-audit';
import type { ActivityStreamConfig } from '../../src/config/activity-stream';
import type { AlertTopic } from '../constructs/alert-topic';
import { endpointSecurityGroup } from '../constructs/network';
import { acknowledge } from '../nag';
import { ARCHIVE_STREAM_ENV } from '../../src/lambda/das-decrypt/handler';
import { ActivityArchive } from './archive';
import { ActivityStreamDecryptFunction } from './decrypt-function';
import { ActivityStreamKey } from './stream-key';
import { ActivityStreamStarter } from './stream-starter';

/** The network a new cluster's activity stream reaches KMS through. */
export interface ActivityStreamNetwork {
  readonly vpc: ec2.IVpc;
  readonly subnets: ec2.SubnetSelection;
  /** The cluster's security group: it gets egress to the endpoint, the endpoint ingress from it. */
  readonly databaseSecurityGroup: ec2.ISecurityGroup;
}

/** Props of {@link DatabaseActivityStream}. */
export interface DatabaseActivityStreamProps {
  /** Identifier of the Aurora PostgreSQL cluster. */
  readonly clusterIdentifier: string;
  /**
   * The cluster, when this stack creates it: its ARN and resource id come from
   * CloudFormation and the stream starts after its instances exist.
   * @default an existing cluster: ARN from the identifier, resource id from DescribeDBClusters
   */
  readonly cluster?: rds.DatabaseCluster;
  /** The validated `accessAudit` section (rules and alert format of the decrypt function). */
  readonly accessAudit: AccessAuditConfig;
  /** The validated `accessAudit.activityStream` section. */
  readonly config: ActivityStreamConfig;
  /** The kit's alert topic. */
  readonly alertTopic: AlertTopic;
  /**
   * The access-audit monitor's forward queue, when `accessAudit.sqs.enabled`: the decrypt
   * function forwards DAS events to it as `sqs.forward`/`sqs.format` say.
   * @default no forwarding
   */
  readonly forwardQueue?: sqs.IQueue;
  /**
   * Create a KMS interface endpoint (policy: this stream's key only) in a VPC without NAT,
   * which the cluster's instances need to encrypt the stream.
   * @default none: the cluster's VPC must already reach KMS (NAT or its own endpoint)
   */
  readonly kmsEndpoint?: ActivityStreamNetwork;
  /** Retain the key, queues and the running stream when the stack is deleted. @default false */
  readonly production?: boolean;
  /** Powertools service name of the access-audit monitor. @default the monitor's default */
  readonly serviceName?: string;
  /** Metrics namespace of the access-audit monitor. @default the monitor's default */
  readonly metricsNamespace?: string;
  /** Retention of the functions' log groups. @default RetentionDays.ONE_YEAR for the decrypt function, ONE_MONTH for the starter */
  readonly logRetention?: logs.RetentionDays;
}

/**
 * Aurora PostgreSQL's Database Activity Stream for one cluster, end to end: a
 * customer-managed KMS key ({@link ActivityStreamKey}), the custom resource that starts
 * the stream with it ({@link ActivityStreamStarter}) and the decrypt function on the
 * stream `aws-rds-das-<cluster resource id>` ({@link ActivityStreamDecryptFunction}),
 * alerting with the access-audit rules through the kit's alert topic, and with an
 * `archive` section the Firehose → S3 archive ({@link ActivityArchive}). The database's
 * administrators can neither stop the stream nor read it: both need IAM permissions
 * on this stack's resources, not database privileges.
 *
 * @example
 * new DatabaseActivityStream(stack, 'ActivityStream', {
 *   clusterIdentifier: source.identifier,
 *   cluster: source.cluster,
 *   accessAudit: config.accessAudit,
 *   config: config.accessAudit.activityStream,
 *   alertTopic,
 * });
 */
export class DatabaseActivityStream extends Construct {
  readonly key: ActivityStreamKey;
  readonly starter: ActivityStreamStarter;
  /** The custom resource that started the stream. */
  readonly stream: CustomResource;
  /** `DbClusterResourceId` (`cluster-…`). */
  readonly clusterResourceId: string;
  /** The Kinesis stream RDS writes to (`aws-rds-das-<cluster resource id>`). */
  readonly kinesisStream: kinesis.IStream;
  readonly decrypt: ActivityStreamDecryptFunction;
  /** The KMS endpoint, when `kmsEndpoint` was given. */
  readonly endpoint?: ec2.InterfaceVpcEndpoint;
  /** The Firehose → S3 archive with its Glue table and Athena workgroup, when `archive` is enabled. */
  readonly archive?: ActivityArchive;
  /** Alerts through the alert topic the moment CloudTrail records `StopActivityStream` on the cluster. */
  readonly stopRule: events.Rule;
  /** Alerts the moment CloudTrail records `DisableKey`, `ScheduleKeyDeletion` or `PutKeyPolicy` on the stream key. */
  readonly keyRule: events.Rule;

  constructor(scope: Construct, id: string, props: DatabaseActivityStreamProps) {
    super(scope, id);
    const production = props.production ?? false;
    const removalPolicy = production ? RemovalPolicy.RETAIN : RemovalPolicy.DESTROY;
    const stack = Stack.of(this);
    const clusterArn =
      props.cluster?.clusterArn ??
      stack.formatArn({
        service: 'rds',
        resource: 'cluster',
        resourceName: props.clusterIdentifier,
        arnFormat: ArnFormat.COLON_RESOURCE_NAME,
      });
    this.starter = new ActivityStreamStarter(this, 'Starter', {
      clusterIdentifier: props.clusterIdentifier,
      clusterArn,
      mode: props.config.mode,
      retain: production,
      ...(props.logRetention && { logRetention: props.logRetention }),
    });
    this.clusterResourceId =
      props.cluster?.clusterResourceIdentifier ??
      this.starter.describe().getAttString('ResourceId');
    this.decrypt = new ActivityStreamDecryptFunction(this, 'Decrypt', {
      config: props.accessAudit,
      clusterResourceId: this.clusterResourceId,
      alertTopic: props.alertTopic,
      batchSize: props.config.batchSize,
      retryAttempts: props.config.retryAttempts,
      parallelizationFactor: props.config.parallelizationFactor,
      quietMinutes: props.config.quietMinutes,
      removalPolicy,
      ...(props.forwardQueue && { forwardQueue: props.forwardQueue }),
      ...(props.serviceName && { serviceName: props.serviceName }),
      ...(props.metricsNamespace && { metricsNamespace: props.metricsNamespace }),
      ...(props.logRetention && { logRetention: props.logRetention }),
    });
    this.key = new ActivityStreamKey(this, 'Key', {
      starterRole: this.starter.role,
      decryptRole: this.decrypt.function.role!,
      clusterResourceId: this.clusterResourceId,
      removalPolicy,
    });
    if (props.kmsEndpoint) this.endpoint = this.createKmsEndpoint(props.kmsEndpoint);
    this.stream = this.starter.start(this.key.key);
    // Instances must exist (and the endpoint be up) before the stream can start.
    if (props.cluster) this.stream.node.addDependency(props.cluster);
    if (this.endpoint) this.stream.node.addDependency(this.endpoint);
    this.kinesisStream = kinesis.Stream.fromStreamArn(
      this,
      'KinesisStream',
      stack.formatArn({
        service: 'kinesis',
        resource: 'stream',
        resourceName: this.stream.getAttString('StreamName'),
      }),
    );
    this.decrypt.attach(this.kinesisStream);
    const rules = this.alertOnSilencing(props.clusterIdentifier, clusterArn, props.alertTopic);
    this.stopRule = rules.stop;
    this.keyRule = rules.key;
    if (props.config.archive?.enabled) {
      this.archive = new ActivityArchive(this, 'Archive', {
        config: props.config.archive,
        alertTopic: props.alertTopic,
        production,
      });
      this.archive.grantPut(this.decrypt.function);
      this.decrypt.function.addEnvironment(ARCHIVE_STREAM_ENV, this.archive.deliveryStreamName);
    }
  }

  /**
   * The quiet-stream alarm needs `quietMinutes`; these say it at once, with who did it:
   * `StopActivityStream` on the cluster, and disabling, scheduling the deletion of or
   * replacing the policy of the stream key (RDS can then no longer encrypt the stream).
   * EventBridge receives API calls from CloudTrail only when the account has a trail
   * logging management events (README "The stream went quiet").
   */
  private alertOnSilencing(clusterIdentifier: string, clusterArn: string, alertTopic: AlertTopic) {
    const stop = this.alertOnApiCall('StopRule', alertTopic, {
      description: `audit-trail: StopActivityStream called on cluster ${clusterIdentifier}`,
      service: 'rds',
      eventNames: ['StopActivityStream'],
      match: { requestParameters: { resourceArn: [clusterArn] } },
      what: `StopActivityStream was called on cluster ${clusterIdentifier}`,
      consequence:
        'the Database Activity Stream is stopping and database activity is no longer streamed',
    });
    const key = this.alertOnApiCall('KeyRule', alertTopic, {
      description: `audit-trail: the activity stream key of cluster ${clusterIdentifier} disabled, scheduled for deletion or its policy replaced`,
      service: 'kms',
      eventNames: ['DisableKey', 'ScheduleKeyDeletion', 'PutKeyPolicy'],
      // CloudTrail names the key in `resources` whichever form of key id the caller used.
      match: { resources: { ARN: [this.key.key.keyArn] } },
      what: `${events.EventField.fromPath('$.detail.eventName')} was called on the Database Activity Stream key of cluster ${clusterIdentifier}`,
      consequence:
        'RDS may no longer be able to encrypt the stream (a changed policy may also let someone read it)',
    });
    return { stop, key };
  }

  /** A rule on one AWS API call from CloudTrail that publishes who, where and when to the alert topic. */
  private alertOnApiCall(
    id: string,
    alertTopic: AlertTopic,
    call: {
      description: string;
      service: 'rds' | 'kms';
      eventNames: string[];
      match: Record<string, unknown>;
      what: string;
      consequence: string;
    },
  ): events.Rule {
    const rule = new events.Rule(this, id, {
      description: call.description,
      eventPattern: {
        source: [`aws.${call.service}`],
        detailType: ['AWS API Call via CloudTrail'],
        detail: {
          eventSource: [`${call.service}.amazonaws.com`],
          eventName: call.eventNames,
          ...call.match,
        },
      },
    });
    const field = (path: string) => events.EventField.fromPath(`$.detail.${path}`);
    // Its own role (sns:Publish on the topic and its key), not the topic's resource policy.
    rule.addTarget(
      new eventTargets.SnsTopic(alertTopic.topic, {
        authorizeUsingRole: true,
        message: events.RuleTargetInput.fromText(
          `[audit-trail] ${call.what} by ${field('userIdentity.arn')} from ${field('sourceIPAddress')} at ${field('eventTime')} (CloudTrail event ${field('eventID')}). Unless that event carries an errorCode, ${call.consequence}. See README "The stream went quiet".`,
        ),
      }),
    );
    acknowledge(
      rule,
      'publishing to the KMS-encrypted alert topic needs kms:GenerateDataKey* on its key (CDK grant)',
      'AwsSolutions-IAM5[Action::kms:GenerateDataKey*]',
    );
    return rule;
  }

  private createKmsEndpoint(network: ActivityStreamNetwork): ec2.InterfaceVpcEndpoint {
    const endpoint = new ec2.InterfaceVpcEndpoint(this, 'KmsEndpoint', {
      vpc: network.vpc,
      service: ec2.InterfaceVpcEndpointAwsService.KMS,
      subnets: network.subnets,
      privateDnsEnabled: true,
      open: false,
      securityGroups: [
        endpointSecurityGroup(this, 'KmsEndpointGroup', network.vpc, 'audit-trail KMS endpoint'),
      ],
    });
    endpoint.connections.allowDefaultPortFrom(
      network.databaseSecurityGroup,
      'the activity stream encrypts with KMS',
    );
    // Through this endpoint, only the stream key can be used.
    endpoint.addToPolicy(
      new iam.PolicyStatement({
        principals: [new iam.AnyPrincipal()],
        actions: ['kms:*'],
        resources: [this.key.key.keyArn],
      }),
    );
    return endpoint;
  }
}

import { Duration, RemovalPolicy, Stack } from 'aws-cdk-lib';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as events from 'aws-cdk-lib/aws-events';
import * as targets from 'aws-cdk-lib/aws-events-targets';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as kms from 'aws-cdk-lib/aws-kms';
import type * as lambda from 'aws-cdk-lib/aws-lambda';
import * as logs from 'aws-cdk-lib/aws-logs';
import * as s3 from 'aws-cdk-lib/aws-s3';
import type * as secretsmanager from 'aws-cdk-lib/aws-secretsmanager';
import * as cr from 'aws-cdk-lib/custom-resources';
import { Construct } from 'constructs';
import type { ObjectLockMode } from '../../src/config/chain-anchors';
import { acknowledge } from '../nag';
import { bundledFunction } from './bundled-function';
import { evidenceAccessLogBucket, evidenceBucketProps } from './evidence-bucket';

/** The target database the anchor Lambda reads the chain head from. */
export interface ChainAnchorTarget {
  /** Writer endpoint host name. */
  readonly host: string;
  readonly port: number;
  readonly databaseName: string;
}

/** Props of {@link ChainAnchor}. */
export interface ChainAnchorProps {
  readonly vpc: ec2.IVpc;
  readonly subnets: ec2.SubnetSelection;
  readonly target: ChainAnchorTarget;
  /** The audit schema whose `audit_chain` is anchored. */
  readonly auditSchema: string;
  /**
   * Secret (`username`, `password`) of the anchor's read-only login, a member of the
   * kit's reader role and nothing else (`DatabaseLogins` with `anchor`).
   */
  readonly loginSecret: secretsmanager.ISecret;
  /** Minutes between two anchors. @default 5 */
  readonly everyMinutes?: number;
  /** Days each anchor stays locked. @default 365 */
  readonly retentionDays?: number;
  /**
   * Object Lock mode of each anchor and of the bucket default. `GOVERNANCE` lets a
   * principal holding `s3:BypassGovernanceRetention` delete anchors: use it only for
   * stacks that must be torn down.
   * @default "COMPLIANCE"
   */
  readonly mode?: ObjectLockMode;
  /** Key prefix of the anchor objects. @default "chain-heads/" */
  readonly prefix?: string;
  /**
   * Add an S3 gateway endpoint to the VPC (needed by a VPC without a route to S3, such
   * as the kit's isolated VPC). With an existing VPC, route S3 yourself (endpoint or NAT).
   * @default false
   */
  readonly s3GatewayEndpoint?: boolean;
  /** @default RetentionDays.ONE_MONTH */
  readonly logRetention?: logs.RetentionDays;
}

/**
 * Anchors the audit log's hash chain outside the database: every `everyMinutes` a Lambda
 * in the VPC logs in to the target as a read-only member of the kit's reader role
 * (verified TLS, `sslmode=verify-full` with the RDS CA bundle), reads the chain head and
 * writes it (the JSON line `audit-trail anchor --append` writes) as its own object to an
 * S3 bucket under Object Lock (versioned, KMS-encrypted, TLS-only, no public access,
 * access-logged). The database cannot assume the Lambda's role and the Lambda may only
 * add objects, so whoever controls the database, superuser included, cannot rewrite
 * the anchors: `verify --integrity --anchors s3://BUCKET/PREFIX` catches a rewritten
 * past or a truncated tail. The bucket and its key are retained whatever the stack's
 * removal policy (locked objects cannot be deleted anyway).
 */
export class ChainAnchor extends Construct {
  readonly bucket: s3.Bucket;
  readonly key: kms.Key;
  /** Receives the anchors bucket's server access logs. */
  readonly accessLogs: s3.Bucket;
  readonly function: lambda.IFunction;
  readonly securityGroup: ec2.SecurityGroup;
  /** The S3 gateway endpoint, when `s3GatewayEndpoint` is set. */
  readonly s3Endpoint?: ec2.GatewayVpcEndpoint;
  readonly schedule: events.Rule;
  /** `s3://bucket/prefix`, what `verify --integrity --anchors` takes. */
  readonly location: string;

  constructor(scope: Construct, id: string, props: ChainAnchorProps) {
    super(scope, id);
    const mode = props.mode ?? 'COMPLIANCE';
    const retentionDays = props.retentionDays ?? 365;
    const prefix = props.prefix ?? 'chain-heads/';
    this.key = new kms.Key(this, 'Key', {
      description: 'audit-trail: chain anchors bucket',
      enableKeyRotation: true,
      removalPolicy: RemovalPolicy.RETAIN,
    });
    this.accessLogs = evidenceAccessLogBucket(this, 'AccessLogs', 'the anchors bucket');
    this.bucket = new s3.Bucket(
      this,
      'Bucket',
      evidenceBucketProps(
        this.key,
        { bucket: this.accessLogs, prefix: 'anchors-bucket/' },
        { mode, retentionDays },
      ),
    );
    this.location = `s3://${this.bucket.bucketName}/${prefix}`;

    this.securityGroup = new ec2.SecurityGroup(this, 'SecurityGroup', {
      vpc: props.vpc,
      description: 'audit-trail chain anchor Lambda',
      allowAllOutbound: false,
    });
    if (props.s3GatewayEndpoint) {
      this.s3Endpoint = props.vpc.addGatewayEndpoint('AnchorsS3', {
        service: ec2.GatewayVpcEndpointAwsService.S3,
        subnets: [props.subnets],
      });
      // Through this endpoint S3 does one thing: take anchors. A credential stolen inside
      // the VPC cannot copy data out to another bucket through it.
      this.s3Endpoint.addToPolicy(
        new iam.PolicyStatement({
          principals: [new iam.AnyPrincipal()],
          actions: ['s3:PutObject', 's3:PutObjectRetention'],
          resources: [this.bucket.arnForObjects(`${prefix}*`)],
        }),
      );
    }
    // S3's addresses are those of the region's AWS-managed prefix list, whichever way the
    // VPC routes them (gateway endpoint or NAT): HTTPS there and nowhere else. The target's
    // port and the Secrets Manager endpoint are added by whoever owns those (allowFrom).
    this.securityGroup.addEgressRule(
      ec2.Peer.prefixList(this.s3PrefixListId(props.logRetention)),
      ec2.Port.tcp(443),
      'S3 (its managed prefix list) over HTTPS: anchors only',
    );

    const fn = bundledFunction(this, 'Function', {
      entry: 'src/lambda/chain-anchor/handler.ts',
      description: 'audit-trail: writes the audit log chain head to the Object Lock bucket',
      timeout: Duration.minutes(1),
      memorySize: 256,
      vpc: props.vpc,
      vpcSubnets: props.subnets,
      securityGroups: [this.securityGroup],
      ...(props.logRetention && { logRetention: props.logRetention }),
    });
    fn.addEnvironment('ANCHOR_BUCKET', this.bucket.bucketName)
      .addEnvironment('ANCHOR_PREFIX', prefix)
      .addEnvironment('AUDIT_SCHEMA', props.auditSchema)
      .addEnvironment('RETENTION_DAYS', String(retentionDays))
      .addEnvironment('OBJECT_LOCK_MODE', mode)
      .addEnvironment('TARGET_SECRET_ARN', props.loginSecret.secretArn)
      .addEnvironment('TARGET_HOST', props.target.host)
      .addEnvironment('TARGET_PORT', String(props.target.port))
      .addEnvironment('TARGET_DATABASE', props.target.databaseName);
    props.loginSecret.grantRead(fn);
    // Add anchors, with their retention, under the prefix: nothing else (no read, no
    // delete, no bypass of governance retention, no bucket configuration).
    fn.addToRolePolicy(
      new iam.PolicyStatement({
        actions: ['s3:PutObject', 's3:PutObjectRetention'],
        resources: [this.bucket.arnForObjects(`${prefix}*`)],
      }),
    );
    fn.addToRolePolicy(
      new iam.PolicyStatement({ actions: ['kms:GenerateDataKey'], resources: [this.key.keyArn] }),
    );
    acknowledge(
      fn,
      'the anchor Lambda may put objects anywhere under its key prefix (one object per anchor, named by time)',
      `AwsSolutions-IAM5[Resource::<${Stack.of(this).getLogicalId(this.bucket.node.defaultChild as s3.CfnBucket)}.Arn>/${prefix}*]`,
    );
    this.function = fn;

    this.schedule = new events.Rule(this, 'Schedule', {
      description: 'audit-trail: anchor the audit log chain head',
      schedule: events.Schedule.rate(Duration.minutes(props.everyMinutes ?? 5)),
      targets: [new targets.LambdaFunction(fn, { retryAttempts: 2 })],
    });
  }

  /**
   * The id of the region's S3 prefix list (`com.amazonaws.<region>.s3`), read at deploy
   * time: CloudFormation does not expose it and a synth-time lookup would need credentials.
   */
  private s3PrefixListId(logRetention?: logs.RetentionDays): string {
    const name = `com.amazonaws.${Stack.of(this).region}.s3`;
    const describe: cr.AwsSdkCall = {
      service: 'EC2',
      action: 'describeManagedPrefixLists',
      parameters: { Filters: [{ Name: 'prefix-list-name', Values: [name] }] },
      physicalResourceId: cr.PhysicalResourceId.of(name),
      outputPaths: ['PrefixLists.0.PrefixListId'],
    };
    const lookup = new cr.AwsCustomResource(this, 'S3PrefixList', {
      onCreate: describe,
      onUpdate: describe,
      // A describe call has no resource to name (IAM cannot narrow it).
      policy: cr.AwsCustomResourcePolicy.fromSdkCalls({
        resources: cr.AwsCustomResourcePolicy.ANY_RESOURCE,
      }),
      installLatestAwsSdk: false,
      logGroup: new logs.LogGroup(this, 'S3PrefixListLogs', {
        retention: logRetention ?? logs.RetentionDays.ONE_MONTH,
        removalPolicy: RemovalPolicy.DESTROY,
      }),
    });
    acknowledge(
      lookup,
      'ec2:DescribeManagedPrefixLists names no resource: IAM allows it only on *',
      'AwsSolutions-IAM5[Resource::*]',
    );
    acknowledge(
      lookup.grantPrincipal as iam.Role,
      'aws-cdk-lib AwsCustomResource function: the AWS managed basic execution policy only writes its logs',
      'AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole]',
    );
    return lookup.getResponseField('PrefixLists.0.PrefixListId');
  }
}

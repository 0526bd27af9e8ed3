import { RemovalPolicy, Stack, type IAspect } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as logs from 'aws-cdk-lib/aws-logs';
import * as rds from 'aws-cdk-lib/aws-rds';
import * as s3 from 'aws-cdk-lib/aws-s3';
import * as secretsmanager from 'aws-cdk-lib/aws-secretsmanager';
import * as sqs from 'aws-cdk-lib/aws-sqs';
import { Construct, type IConstruct } from 'constructs';

/** Props of {@link EvidenceProtection}. */
export interface EvidenceProtectionProps {
  /** Retain every evidence resource when the stack (or the resource) is deleted. @default false */
  readonly production?: boolean;
}

/**
 * What the kit keeps as evidence survives its stack: a customer-managed key (rotated,
 * usable by CloudWatch Logs of this account and region only) encrypts every log group the
 * stack creates (Lambda logs with their alerts, VPC flow logs), and with `production` every
 * log group, secret, KMS key, bucket and queue in the stack is retained on delete. Applied
 * as an aspect, so resources added to the stack later (the access-audit monitor) are covered
 * too. Log groups RDS creates itself are kept by the log-retention resource, which never
 * deletes them.
 */
export class EvidenceProtection extends Construct implements IAspect {
  /** Encrypts the stack's log groups. */
  readonly logKey: kms.Key;
  private readonly production: boolean;

  constructor(scope: Construct, id: string, props: EvidenceProtectionProps = {}) {
    super(scope, id);
    this.production = props.production ?? false;
    const { account, region, partition } = Stack.of(this);
    this.logKey = new kms.Key(this, 'LogKey', {
      description: 'audit-trail: CloudWatch log groups holding evidence',
      enableKeyRotation: true,
      removalPolicy: this.production ? RemovalPolicy.RETAIN : RemovalPolicy.DESTROY,
    });
    this.logKey.addToResourcePolicy(
      new iam.PolicyStatement({
        sid: 'CloudWatchLogsOfThisAccount',
        principals: [new iam.ServicePrincipal(`logs.${region}.amazonaws.com`)],
        actions: [
          'kms:Encrypt*',
          'kms:Decrypt*',
          'kms:ReEncrypt*',
          'kms:GenerateDataKey*',
          'kms:Describe*',
        ],
        resources: ['*'],
        conditions: {
          ArnLike: {
            'kms:EncryptionContext:aws:logs:arn': `arn:${partition}:logs:${region}:${account}:log-group:*`,
          },
        },
      }),
    );
  }

  visit(node: IConstruct): void {
    if (node instanceof logs.CfnLogGroup) {
      node.kmsKeyId ??= this.logKey.keyArn;
    }
    if (!this.production) return;
    if (
      node instanceof logs.CfnLogGroup ||
      node instanceof secretsmanager.CfnSecret ||
      node instanceof kms.CfnKey ||
      node instanceof s3.CfnBucket ||
      node instanceof sqs.CfnQueue ||
      node instanceof rds.CfnDBCluster ||
      node instanceof rds.CfnDBInstance
    ) {
      node.applyRemovalPolicy(RemovalPolicy.RETAIN);
    }
  }
}

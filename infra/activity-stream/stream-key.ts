import { RemovalPolicy, Stack } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as kms from 'aws-cdk-lib/aws-kms';
import { Construct } from 'constructs';
import { dasEncryptionContext } from '../../src/access-audit/das/keys';

/** Props of {@link ActivityStreamKey}. */
export interface ActivityStreamKeyProps {
  /**
   * The role that calls `StartActivityStream`: RDS creates its grant on the key with
   * this role's permission, so only this role, only through RDS, may create grants.
   */
  readonly starterRole: iam.IRole;
  /** The role of the decrypt Lambda: it may decrypt data keys of this cluster only. */
  readonly decryptRole: iam.IRole;
  /** `DbClusterResourceId` (`cluster-…`) of the cluster: the encryption context RDS binds every data key to. */
  readonly clusterResourceId: string;
  /** @default RemovalPolicy.RETAIN */
  readonly removalPolicy?: RemovalPolicy;
}

/**
 * The customer-managed KMS key one cluster's Database Activity Stream is encrypted with
 * (rotated). Besides the account's own administration statement, the key policy lets
 * exactly two roles use it: the starter role may create grants and describe the key
 * only through RDS and only for an AWS resource (the grant RDS uses to encrypt the
 * cluster's activity), and the decrypt role may `kms:Decrypt` only under the encryption
 * context `aws:rds:dbc-id` = this cluster's resource id, so a data key of any other
 * cluster (or any other use of the key) is refused by KMS itself.
 */
export class ActivityStreamKey extends Construct {
  readonly key: kms.Key;

  constructor(scope: Construct, id: string, props: ActivityStreamKeyProps) {
    super(scope, id);
    this.key = new kms.Key(this, 'Key', {
      description: 'audit-trail: Database Activity Stream of the source cluster',
      enableKeyRotation: true,
      removalPolicy: props.removalPolicy ?? RemovalPolicy.RETAIN,
    });
    const [contextKey, clusterResourceId] = Object.entries(
      dasEncryptionContext(props.clusterResourceId),
    )[0]!;
    this.key.addToResourcePolicy(
      new iam.PolicyStatement({
        sid: 'RdsActivityStreamOfThisCluster',
        principals: [props.starterRole],
        actions: ['kms:CreateGrant', 'kms:DescribeKey'],
        resources: ['*'],
        conditions: {
          StringEquals: { 'kms:ViaService': `rds.${Stack.of(this).region}.amazonaws.com` },
          Bool: { 'kms:GrantIsForAWSResource': 'true' },
        },
      }),
    );
    this.key.addToResourcePolicy(
      new iam.PolicyStatement({
        sid: 'DecryptActivityOfThisCluster',
        principals: [props.decryptRole],
        actions: ['kms:Decrypt'],
        resources: ['*'],
        conditions: {
          StringEquals: { [`kms:EncryptionContext:${contextKey}`]: clusterResourceId },
        },
      }),
    );
  }
}

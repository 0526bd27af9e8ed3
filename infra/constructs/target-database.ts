import { Duration } from 'aws-cdk-lib';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as logs from 'aws-cdk-lib/aws-logs';
import * as rds from 'aws-cdk-lib/aws-rds';
import type * as secretsmanager from 'aws-cdk-lib/aws-secretsmanager';
import { Construct } from 'constructs';
import {
  acknowledgeClusterFindings,
  auroraPostgres,
  databaseRemovalPolicy,
  PASSWORD_EXCLUDED_CHARACTERS,
} from './database-defaults';

/** Props of {@link TargetDatabase}. */
export interface TargetDatabaseProps {
  readonly vpc: ec2.IVpc;
  readonly subnets: ec2.SubnetSelection;
  /** Aurora PostgreSQL version. @default "16.6" */
  readonly engineVersion?: string;
  /** Database holding the audit schema. @default "audit" */
  readonly databaseName?: string;
  /** Serverless v2 ACUs. @default 0.5 */
  readonly minCapacity?: number;
  /** @default 4 */
  readonly maxCapacity?: number;
  /** A reader in another AZ for fail-over. @default false */
  readonly readerInstance?: boolean;
  /** Days of automated backups. @default 7 */
  readonly backupRetentionDays?: number;
  /** Deletion protection and RETAIN (otherwise SNAPSHOT on delete). @default false */
  readonly production?: boolean;
  /** Retention of the exported PostgreSQL log. @default RetentionDays.ONE_MONTH */
  readonly logRetention?: logs.RetentionDays;
}

/**
 * The target: a separate Aurora PostgreSQL cluster (Serverless v2) that holds the
 * staging tables, the audit triggers and the audit log. Encrypted, in private subnets,
 * IAM authentication on, PostgreSQL log exported, deletion protection in production.
 * Kept apart from the source so application users and admins of the source have no
 * write path to the audit log.
 */
export class TargetDatabase extends Construct {
  readonly cluster: rds.DatabaseCluster;
  readonly secret: secretsmanager.ISecret;
  readonly securityGroup: ec2.SecurityGroup;
  readonly host: string;
  readonly port = 5432;
  readonly databaseName: string;

  constructor(scope: Construct, id: string, props: TargetDatabaseProps) {
    super(scope, id);
    const production = props.production ?? false;
    this.databaseName = props.databaseName ?? 'audit';
    this.securityGroup = new ec2.SecurityGroup(this, 'SecurityGroup', {
      vpc: props.vpc,
      description: 'audit-trail target cluster',
      allowAllOutbound: false,
    });
    this.cluster = new rds.DatabaseCluster(this, 'Cluster', {
      engine: auroraPostgres(props.engineVersion ?? '16.6'),
      credentials: rds.Credentials.fromGeneratedSecret('postgres', {
        excludeCharacters: PASSWORD_EXCLUDED_CHARACTERS,
      }),
      defaultDatabaseName: this.databaseName,
      port: this.port,
      writer: rds.ClusterInstance.serverlessV2('writer', { publiclyAccessible: false }),
      readers: props.readerInstance
        ? [
            rds.ClusterInstance.serverlessV2('reader', {
              scaleWithWriter: true,
              publiclyAccessible: false,
            }),
          ]
        : [],
      serverlessV2MinCapacity: props.minCapacity ?? 0.5,
      serverlessV2MaxCapacity: props.maxCapacity ?? 4,
      vpc: props.vpc,
      vpcSubnets: props.subnets,
      securityGroups: [this.securityGroup],
      storageEncrypted: true,
      iamAuthentication: true,
      deletionProtection: production,
      removalPolicy: databaseRemovalPolicy(production),
      backup: { retention: Duration.days(props.backupRetentionDays ?? 7) },
      cloudwatchLogsExports: ['postgresql'],
      cloudwatchLogsRetention: props.logRetention ?? logs.RetentionDays.ONE_MONTH,
    });
    this.secret = this.cluster.secret!;
    acknowledgeClusterFindings(this.cluster, production);
    this.host = this.cluster.clusterEndpoint.hostname;
  }

  /** Lets `peer` connect to the database port. */
  allowFrom(peer: ec2.IConnectable, description: string): void {
    this.securityGroup.connections.allowFrom(peer, ec2.Port.tcp(this.port), description);
  }
}

import { Duration } from 'aws-cdk-lib';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as logs from 'aws-cdk-lib/aws-logs';
import * as rds from 'aws-cdk-lib/aws-rds';
import * as secretsmanager from 'aws-cdk-lib/aws-secretsmanager';
import { Construct } from 'constructs';
import {
  acknowledgeClusterFindings,
  auroraPostgres,
  databaseRemovalPolicy,
  PASSWORD_EXCLUDED_CHARACTERS,
} from './database-defaults';

/** A new source cluster (for a fresh environment or a demo). */
export interface NewSourceProps {
  readonly mode: 'new';
  /** Aurora PostgreSQL version. @default "16.6" */
  readonly engineVersion?: string;
  /** Database created in the cluster. @default "app" */
  readonly databaseName?: string;
  /** Serverless v2 ACUs of the writer. @default 0.5 */
  readonly minCapacity?: number;
  /** @default 4 */
  readonly maxCapacity?: number;
  /** `wal_sender_timeout` in ms; DMS needs 0 or at least 10000. @default 60000 */
  readonly walSenderTimeoutMs?: number;
  /** `max_slot_wal_keep_size` in MB; -1 leaves the parameter out (unbounded). @default 20480 */
  readonly maxSlotWalKeepSizeMb?: number;
}

/** An existing cluster, imported; its parameter group is the owner's to configure. */
export interface ExistingSourceProps {
  readonly mode: 'existing';
  readonly clusterIdentifier: string;
  /** Writer endpoint host name. */
  readonly endpoint: string;
  /** @default 5432 */
  readonly port?: number;
  readonly databaseName: string;
  /** Complete ARN of the secret with `username`, `password`, `host`, `port`. */
  readonly secretArn: string;
  /** Security group of the cluster: ingress from DMS and the migrations Lambda is added. */
  readonly securityGroupId: string;
}

/** Props of {@link SourceDatabase}. */
export interface SourceDatabaseProps {
  readonly vpc: ec2.IVpc;
  readonly subnets: ec2.SubnetSelection;
  readonly source: NewSourceProps | ExistingSourceProps;
  /** Deletion protection and RETAIN (otherwise SNAPSHOT on delete). @default false */
  readonly production?: boolean;
  /** Retention of the exported PostgreSQL log. @default RetentionDays.ONE_MONTH */
  readonly logRetention?: logs.RetentionDays;
  /**
   * More cluster parameters merged over the kit's, for example the access audit's
   * `shared_preload_libraries: pgaudit` and `pgaudit.*` settings. Ignored for an existing
   * cluster (set them on its parameter group).
   * @default {}
   */
  readonly extraClusterParameters?: Record<string, string>;
}

/** The cluster parameters DMS change data capture needs. */
export function replicationParameters(source: NewSourceProps): Record<string, string> {
  const walKeep = source.maxSlotWalKeepSizeMb ?? 20_480;
  return {
    // Static: applied when the cluster is created; an existing cluster needs a reboot.
    'rds.logical_replication': '1',
    wal_sender_timeout: String(source.walSenderTimeoutMs ?? 60_000),
    ...(walKeep >= 0 && { max_slot_wal_keep_size: String(walKeep) }),
  };
}

/**
 * The source database whose tables are audited: a new Aurora PostgreSQL cluster ready
 * for logical replication (cluster parameter group, PostgreSQL log exported to
 * CloudWatch, encrypted, private), or an existing cluster imported by identifier,
 * endpoint, secret and security group.
 */
export class SourceDatabase extends Construct {
  readonly secret: secretsmanager.ISecret;
  readonly securityGroup: ec2.ISecurityGroup;
  readonly host: string;
  readonly port: number;
  readonly databaseName: string;
  readonly clusterIdentifier: string;
  /** The new cluster (undefined for an existing one). */
  readonly cluster?: rds.DatabaseCluster;
  /** The cluster parameter group of a new cluster. */
  readonly parameterGroup?: rds.ParameterGroup;
  /** CloudWatch log group of the PostgreSQL log (where pgAudit records land). */
  readonly postgresLogGroupName: string;

  constructor(scope: Construct, id: string, props: SourceDatabaseProps) {
    super(scope, id);
    const source = props.source;
    if (source.mode === 'existing') {
      this.secret = secretsmanager.Secret.fromSecretCompleteArn(this, 'Secret', source.secretArn);
      this.securityGroup = ec2.SecurityGroup.fromSecurityGroupId(
        this,
        'SecurityGroup',
        source.securityGroupId,
      );
      this.host = source.endpoint;
      this.port = source.port ?? 5432;
      this.databaseName = source.databaseName;
      this.clusterIdentifier = source.clusterIdentifier;
      this.postgresLogGroupName = `/aws/rds/cluster/${source.clusterIdentifier}/postgresql`;
      return;
    }
    const production = props.production ?? false;
    const engine = auroraPostgres(source.engineVersion ?? '16.6');
    this.parameterGroup = new rds.ParameterGroup(this, 'ClusterParameters', {
      engine,
      description: 'audit-trail source: logical replication for DMS',
      parameters: { ...replicationParameters(source), ...props.extraClusterParameters },
    });
    this.securityGroup = new ec2.SecurityGroup(this, 'SecurityGroup', {
      vpc: props.vpc,
      description: 'audit-trail source cluster',
      allowAllOutbound: false,
    });
    const cluster = new rds.DatabaseCluster(this, 'Cluster', {
      engine,
      parameterGroup: this.parameterGroup,
      credentials: rds.Credentials.fromGeneratedSecret('postgres', {
        excludeCharacters: PASSWORD_EXCLUDED_CHARACTERS,
      }),
      defaultDatabaseName: source.databaseName ?? 'app',
      port: 5432,
      writer: rds.ClusterInstance.serverlessV2('writer', { publiclyAccessible: false }),
      serverlessV2MinCapacity: source.minCapacity ?? 0.5,
      serverlessV2MaxCapacity: source.maxCapacity ?? 4,
      vpc: props.vpc,
      vpcSubnets: props.subnets,
      securityGroups: [this.securityGroup],
      storageEncrypted: true,
      iamAuthentication: true,
      deletionProtection: production,
      removalPolicy: databaseRemovalPolicy(production),
      backup: { retention: Duration.days(7) },
      cloudwatchLogsExports: ['postgresql'],
      cloudwatchLogsRetention: props.logRetention ?? logs.RetentionDays.ONE_MONTH,
    });
    this.cluster = cluster;
    acknowledgeClusterFindings(cluster, production);
    this.secret = cluster.secret!;
    this.host = cluster.clusterEndpoint.hostname;
    this.port = 5432;
    this.databaseName = source.databaseName ?? 'app';
    this.clusterIdentifier = cluster.clusterIdentifier;
    this.postgresLogGroupName = `/aws/rds/cluster/${cluster.clusterIdentifier}/postgresql`;
  }

  /** Lets `peer` connect to the database port. */
  allowFrom(peer: ec2.IConnectable, description: string): void {
    this.securityGroup.connections.allowFrom(peer, ec2.Port.tcp(this.port), description);
  }
}

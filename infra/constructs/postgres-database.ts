import { Duration } from 'aws-cdk-lib';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as logs from 'aws-cdk-lib/aws-logs';
import * as rds from 'aws-cdk-lib/aws-rds';
import * as secretsmanager from 'aws-cdk-lib/aws-secretsmanager';
import { Construct, type IConstruct } from 'constructs';
import {
  acknowledgeDatabaseFindings,
  auroraPostgres,
  databaseRemovalPolicy,
  PASSWORD_EXCLUDED_CHARACTERS,
  rdsPostgres,
} from './database-defaults';

/** `aurora-postgresql`: an Aurora cluster; `postgres`: an RDS for PostgreSQL DB instance. */
export type PostgresEngine = 'aurora-postgresql' | 'postgres';

/** A new Aurora PostgreSQL Serverless v2 cluster. */
export interface NewClusterSpec {
  readonly mode: 'new';
  readonly engine: 'aurora-postgresql';
  /** @default "16.6" */
  readonly engineVersion?: string;
  /** Serverless v2 ACUs. @default 0.5 */
  readonly minCapacity?: number;
  /** @default 4 */
  readonly maxCapacity?: number;
  /** A reader in another AZ for fail-over. @default false */
  readonly readerInstance?: boolean;
}

/** A new RDS for PostgreSQL DB instance. */
export interface NewInstanceSpec {
  readonly mode: 'new';
  readonly engine: 'postgres';
  /** @default "16.6" */
  readonly engineVersion?: string;
  /** @default "db.t4g.small" */
  readonly instanceClass?: string;
  /** gp3 storage in GiB; autoscaling may grow it to four times this. @default 20 */
  readonly allocatedStorage?: number;
  /** A standby in a second AZ. @default the `production` flag */
  readonly multiAz?: boolean;
}

/** An existing cluster or instance, imported; its parameter group is the owner's to configure. */
export interface ExistingDatabaseSpec {
  readonly mode: 'existing';
  readonly engine: PostgresEngine;
  /** Cluster identifier (Aurora). */
  readonly clusterIdentifier?: string;
  /** DB instance identifier (RDS for PostgreSQL). */
  readonly instanceIdentifier?: string;
  /** Writer endpoint or instance endpoint host name. */
  readonly endpoint: string;
  /** @default 5432 */
  readonly port?: number;
  /** Complete ARN of the secret with `username` and `password`. */
  readonly secretArn: string;
  /** Security group of the database: ingress from DMS and the migrations Lambda is added. */
  readonly securityGroupId: string;
}

/** Props of {@link PostgresDatabase}. */
export interface PostgresDatabaseProps {
  readonly vpc: ec2.IVpc;
  readonly subnets: ec2.SubnetSelection;
  readonly spec: NewClusterSpec | NewInstanceSpec | ExistingDatabaseSpec;
  /** Database created in a new cluster or instance (and the one used in an imported one). */
  readonly databaseName: string;
  /** What the database is for, in resource descriptions. */
  readonly purpose: string;
  /**
   * Parameters of a new database's parameter group: a DB *cluster* parameter group for
   * Aurora, a DB parameter group for an instance. Ignored for an imported database.
   * @default {} (no kit parameter group: the engine default)
   */
  readonly parameters?: Record<string, string>;
  /** Deletion protection and RETAIN (otherwise SNAPSHOT on delete). @default false */
  readonly production?: boolean;
  /** Retention of the exported PostgreSQL log. @default RetentionDays.ONE_MONTH */
  readonly logRetention?: logs.RetentionDays;
  /** Days of automated backups. @default 7 */
  readonly backupRetentionDays?: number;
  /**
   * Enable the RDS Data API (HTTPS + IAM, no network path) on a new Aurora cluster;
   * ignored for an instance or an imported database. @default false
   */
  readonly dataApi?: boolean;
}

/**
 * One PostgreSQL database of the kit, whichever form it takes: a new Aurora Serverless v2
 * cluster, a new RDS for PostgreSQL DB instance, or either imported. A new one is
 * encrypted, private, IAM authentication on, its PostgreSQL log exported to CloudWatch,
 * deletion protection and RETAIN in production (a final snapshot otherwise).
 */
export class PostgresDatabase extends Construct {
  readonly engine: PostgresEngine;
  readonly secret: secretsmanager.ISecret;
  readonly securityGroup: ec2.ISecurityGroup;
  readonly host: string;
  readonly port: number;
  readonly databaseName: string;
  /** Cluster identifier (Aurora) or DB instance identifier. */
  readonly identifier: string;
  /** The new cluster (undefined for an instance or an imported database). */
  readonly cluster?: rds.DatabaseCluster;
  /** The new DB instance (undefined for a cluster or an imported database). */
  readonly instance?: rds.DatabaseInstance;
  /** The kit's parameter group of a new database, when it has parameters. */
  readonly parameterGroup?: rds.ParameterGroup;
  /** CloudWatch log group RDS writes the PostgreSQL log to (where pgAudit records land). */
  readonly postgresLogGroupName: string;

  constructor(scope: Construct, id: string, props: PostgresDatabaseProps) {
    super(scope, id);
    const spec = props.spec;
    this.engine = spec.engine;
    this.databaseName = props.databaseName;
    if (spec.mode === 'existing') {
      this.secret = secretsmanager.Secret.fromSecretCompleteArn(this, 'Secret', spec.secretArn);
      this.securityGroup = ec2.SecurityGroup.fromSecurityGroupId(
        this,
        'SecurityGroup',
        spec.securityGroupId,
      );
      this.host = spec.endpoint;
      this.port = spec.port ?? 5432;
      const identifier =
        spec.engine === 'postgres' ? spec.instanceIdentifier : spec.clusterIdentifier;
      if (identifier === undefined) {
        throw new Error(
          `${id}: an existing ${spec.engine === 'postgres' ? 'instance needs instanceIdentifier' : 'cluster needs clusterIdentifier'}`,
        );
      }
      this.identifier = identifier;
      this.postgresLogGroupName = postgresLogGroupName(spec.engine, identifier);
      return;
    }
    this.port = 5432;
    this.securityGroup = new ec2.SecurityGroup(this, 'SecurityGroup', {
      vpc: props.vpc,
      description: `audit-trail ${props.purpose}`,
      allowAllOutbound: false,
    });
    const parameters = props.parameters ?? {};
    const hasParameters = Object.keys(parameters).length > 0;
    const version = spec.engineVersion ?? '16.6';
    if (spec.engine === 'aurora-postgresql') {
      const engine = auroraPostgres(version);
      if (hasParameters) {
        this.parameterGroup = new rds.ParameterGroup(this, 'ClusterParameters', {
          engine,
          description: `audit-trail ${props.purpose}`,
          parameters,
        });
      }
      this.cluster = this.createCluster(spec, engine, props);
      this.secret = this.cluster.secret!;
      this.host = this.cluster.clusterEndpoint.hostname;
      this.identifier = this.cluster.clusterIdentifier;
    } else {
      const engine = rdsPostgres(version);
      if (hasParameters) {
        this.parameterGroup = new rds.ParameterGroup(this, 'Parameters', {
          engine,
          description: `audit-trail ${props.purpose}`,
          parameters,
        });
      }
      this.instance = this.createInstance(spec, engine, props);
      this.secret = this.instance.secret!;
      this.host = this.instance.dbInstanceEndpointAddress;
      this.identifier = this.instance.instanceIdentifier;
    }
    this.postgresLogGroupName = postgresLogGroupName(spec.engine, this.identifier);
  }

  /** The new cluster or instance, for dependencies (undefined when imported). */
  get resource(): IConstruct | undefined {
    return this.cluster ?? this.instance;
  }

  /** Lets `peer` connect to the database port. */
  allowFrom(peer: ec2.IConnectable, description: string): void {
    this.securityGroup.connections.allowFrom(peer, ec2.Port.tcp(this.port), description);
  }

  private createCluster(
    spec: NewClusterSpec,
    engine: rds.IClusterEngine,
    props: PostgresDatabaseProps,
  ): rds.DatabaseCluster {
    const production = props.production ?? false;
    const cluster = new rds.DatabaseCluster(this, 'Cluster', {
      engine,
      ...(this.parameterGroup && { parameterGroup: this.parameterGroup }),
      credentials: rds.Credentials.fromGeneratedSecret('postgres', {
        excludeCharacters: PASSWORD_EXCLUDED_CHARACTERS,
      }),
      defaultDatabaseName: props.databaseName,
      port: this.port,
      writer: rds.ClusterInstance.serverlessV2('writer', { publiclyAccessible: false }),
      readers: spec.readerInstance
        ? [
            rds.ClusterInstance.serverlessV2('reader', {
              scaleWithWriter: true,
              publiclyAccessible: false,
            }),
          ]
        : [],
      serverlessV2MinCapacity: spec.minCapacity ?? 0.5,
      serverlessV2MaxCapacity: spec.maxCapacity ?? 4,
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
      enableDataApi: props.dataApi ?? false,
    });
    acknowledgeDatabaseFindings(cluster, { production });
    return cluster;
  }

  private createInstance(
    spec: NewInstanceSpec,
    engine: rds.IInstanceEngine,
    props: PostgresDatabaseProps,
  ): rds.DatabaseInstance {
    const production = props.production ?? false;
    const multiAz = spec.multiAz ?? production;
    const storage = spec.allocatedStorage ?? 20;
    const instance = new rds.DatabaseInstance(this, 'Instance', {
      engine,
      ...(this.parameterGroup && { parameterGroup: this.parameterGroup }),
      instanceType: new ec2.InstanceType((spec.instanceClass ?? 'db.t4g.small').slice(3)),
      credentials: rds.Credentials.fromGeneratedSecret('postgres', {
        excludeCharacters: PASSWORD_EXCLUDED_CHARACTERS,
      }),
      databaseName: props.databaseName,
      port: this.port,
      allocatedStorage: storage,
      maxAllocatedStorage: storage * 4,
      storageType: rds.StorageType.GP3,
      storageEncrypted: true,
      multiAz,
      vpc: props.vpc,
      vpcSubnets: props.subnets,
      securityGroups: [this.securityGroup],
      publiclyAccessible: false,
      iamAuthentication: true,
      autoMinorVersionUpgrade: true,
      deletionProtection: production,
      removalPolicy: databaseRemovalPolicy(production),
      backupRetention: Duration.days(props.backupRetentionDays ?? 7),
      copyTagsToSnapshot: true,
      cloudwatchLogsExports: ['postgresql'],
      cloudwatchLogsRetention: props.logRetention ?? logs.RetentionDays.ONE_MONTH,
    });
    acknowledgeDatabaseFindings(instance, { production, multiAz });
    return instance;
  }
}

/** The log group RDS exports a cluster's or instance's PostgreSQL log to. */
export function postgresLogGroupName(engine: PostgresEngine, identifier: string): string {
  const kind = engine === 'postgres' ? 'instance' : 'cluster';
  return `/aws/rds/${kind}/${identifier}/postgresql`;
}

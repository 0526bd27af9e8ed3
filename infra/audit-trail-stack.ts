import { createHash } from 'node:crypto';
import { Aspects, CfnOutput, RemovalPolicy, Stack, type StackProps } from 'aws-cdk-lib';
import * as logs from 'aws-cdk-lib/aws-logs';
import type { Construct } from 'constructs';
import { buildTableMappings, buildTaskSettings } from '../mappings';
import type { AuditTrailConfig } from '../src/config';
import { resolveDeployment, type DeploymentConfig } from '../src/config/deployment';
import { resolveChainAnchors } from '../src/config/chain-anchors';
import { AlertTopic } from './constructs/alert-topic';
import { ChainAnchor } from './constructs/chain-anchor';
import { DatabaseLogins } from './constructs/database-logins';
import { DmsReplication } from './constructs/dms-replication';
import { EvidenceProtection } from './constructs/evidence';
import { acknowledge } from './nag';
import { Network } from './constructs/network';
import { ReplicationAlarms } from './constructs/replication-alarms';
import { ReplicationStarter } from './constructs/replication-starter';
import { mergeClusterParameters } from './access-audit/parameters';
import { targetPgauditParameters } from './access-audit/target-audit';
import { SecretRotation, type RotatedSecret } from './constructs/secret-rotation';
import { SourceDatabase } from './constructs/source-database';
import { TargetDatabase } from './constructs/target-database';
import { TargetMigrations } from './constructs/target-migrations';

/** Props of {@link AuditTrailStack}. */
export interface AuditTrailStackProps extends StackProps {
  /** The validated config; its `deployment` section shapes the stack. */
  readonly config: AuditTrailConfig;
  /**
   * More parameters for a new source cluster's parameter group (for example the access
   * audit's pgAudit settings), merged over the kit's replication parameters.
   * @default {}
   */
  readonly extraSourceClusterParameters?: Record<string, string>;
  /**
   * Retention of the source's exported PostgreSQL log (where pgAudit records land), when
   * it must differ from the other logs (the access audit keeps it longer).
   * @default `deployment.logRetentionDays` (30 days, 365 in production)
   */
  readonly sourceLogRetention?: logs.RetentionDays;
}

/**
 * The whole change-history pipeline in one stack: network, source (new or imported),
 * target, migrations, DMS, the task starter and alarms. One stack keeps security-group
 * rules between the parts free of cross-stack exports.
 */
export class AuditTrailStack extends Stack {
  readonly deployment: DeploymentConfig;
  readonly network: Network;
  readonly source: SourceDatabase;
  readonly target: TargetDatabase;
  readonly migrations: TargetMigrations;
  /** The least-privilege logins DMS and the migrations use, each in its own secret. */
  readonly logins: DatabaseLogins;
  /** Hosted rotation of every database secret the kit owns. */
  readonly rotation: SecretRotation;
  readonly replication: DmsReplication;
  readonly starter: ReplicationStarter;
  readonly alarms: ReplicationAlarms;
  /** The one topic both halves of the kit alert through (DMS alarms and events, access audit). */
  readonly alertTopic: AlertTopic;
  /** CMK of the log groups; retains every evidence resource in production. */
  readonly evidence: EvidenceProtection;
  /** The chain anchor bucket and Lambda (`deployment.anchors`); undefined when disabled. */
  readonly anchor?: ChainAnchor;

  constructor(scope: Construct, id: string, props: AuditTrailStackProps) {
    super(scope, id, { description: 'audit-trail: DMS change-history pipeline', ...props });
    const config = props.config;
    const deployment = resolveDeployment(config.deployment);
    this.deployment = deployment;
    const production = deployment.production;
    const logRetention = retentionDays(deployment.logRetentionDays ?? (production ? 365 : 30));
    const identifier = deployment.stackName.toLowerCase();

    this.evidence = new EvidenceProtection(this, 'Evidence', { production });
    Aspects.of(this).add(this.evidence);

    this.network = new Network(this, 'Network', {
      ...deployment.network,
      flowLogRetention: logRetention,
    });
    const { vpc, subnets } = this.network;

    this.source = new SourceDatabase(this, 'Source', {
      vpc,
      subnets,
      source: deployment.source,
      production,
      logRetention: props.sourceLogRetention ?? logRetention,
      // Joined, not overwritten: both may name shared_preload_libraries.
      extraParameters: mergeClusterParameters(
        userSourceParameters(deployment),
        props.extraSourceClusterParameters ?? {},
      ),
    });
    // pgAudit on a kit-created target: DBAs touching the audit store are audited too.
    const targetPgaudit = deployment.target.mode === 'new';
    this.target = new TargetDatabase(this, 'Target', {
      vpc,
      subnets,
      target: deployment.target,
      production,
      logRetention,
      ...(targetPgaudit && { parameters: targetPgauditParameters() }),
    });

    const anchors = resolveChainAnchors(deployment.anchors, production);
    // Every service logs in with its own least-privilege login; only this reads the masters.
    this.logins = new DatabaseLogins(this, 'Logins', {
      vpc,
      subnets,
      config,
      target: this.target,
      anchor: anchors.enabled,
      ...(deployment.source.mode === 'new' && { source: this.source }),
      targetPgaudit,
      logRetention,
    });
    this.network.allowSecretsManagerFrom(this.logins.securityGroup);
    // An existing source's secret is already a replication user (see the README).
    const sourceLogin = this.logins.replicationSecret ?? this.source.secret;

    this.migrations = new TargetMigrations(this, 'Migrations', {
      vpc,
      subnets,
      config,
      source: {
        secret: sourceLogin,
        host: this.source.host,
        port: this.source.port,
        databaseName: this.source.databaseName,
      },
      target: {
        secret: this.logins.migratorSecret,
        host: this.target.host,
        port: this.target.port,
        databaseName: this.target.databaseName,
      },
      logRetention,
    });
    this.migrations.resource.node.addDependency(this.logins.resource);
    this.source.allowFrom(
      this.migrations.securityGroup,
      'audit-trail migrations reads the catalog',
    );
    this.target.allowFrom(this.migrations.securityGroup, 'audit-trail migrations');
    this.network.allowSecretsManagerFrom(this.migrations.securityGroup);
    // The writer instances must be up before the Lambda connects.
    for (const database of [this.source.resource, this.target.resource]) {
      if (database) this.migrations.resource.node.addDependency(database);
    }

    if (this.logins.anchorSecret) {
      this.anchor = new ChainAnchor(this, 'ChainAnchor', {
        vpc,
        subnets,
        target: {
          host: this.target.host,
          port: this.target.port,
          databaseName: this.target.databaseName,
        },
        auditSchema: config.auditSchema,
        loginSecret: this.logins.anchorSecret,
        everyMinutes: anchors.everyMinutes,
        retentionDays: anchors.retentionDays,
        mode: anchors.mode,
        prefix: anchors.prefix,
        s3GatewayEndpoint: this.network.secretsManagerEndpoint !== undefined,
        logRetention,
      });
      this.target.allowFrom(this.anchor.securityGroup, 'audit-trail chain anchor');
      this.network.allowSecretsManagerFrom(this.anchor.securityGroup);
      // Its login exists after the logins resource, the chain after the migrations.
      this.anchor.schedule.node.addDependency(this.logins.resource, this.migrations.resource);
    }

    this.alertTopic = new AlertTopic(this, 'AlertTopic', {
      ...(deployment.alarmEmail !== undefined && { emails: [deployment.alarmEmail] }),
      removalPolicy: production ? RemovalPolicy.RETAIN : RemovalPolicy.DESTROY,
    });

    const tableMappings = buildTableMappings(config);
    const taskSettings = buildTaskSettings(config);
    const dms = deployment.dms;
    this.replication = new DmsReplication(this, 'Dms', {
      vpc,
      subnetIds: this.network.subnetIds,
      identifier,
      mode: dms.mode,
      instanceClass: dms.instanceClass,
      allocatedStorageGb: dms.allocatedStorageGb,
      ...(dms.engineVersion !== undefined && { engineVersion: dms.engineVersion }),
      minCapacityUnits: dms.minCapacityUnits,
      maxCapacityUnits: dms.maxCapacityUnits,
      multiAz: dms.multiAz ?? production,
      source: {
        engine: this.source.engine,
        secret: sourceLogin,
        databaseName: this.source.databaseName,
        heartbeatFrequencyMinutes: dms.heartbeatFrequencyMinutes,
      },
      target: {
        engine: this.target.engine,
        secret: this.logins.dmsSecret,
        databaseName: this.target.databaseName,
      },
      tableMappings,
      taskSettings,
    });
    this.source.allowFrom(this.replication.securityGroup, 'audit-trail DMS replication');
    this.target.allowFrom(this.replication.securityGroup, 'audit-trail DMS replication');
    this.network.allowSecretsManagerFrom(this.replication.securityGroup);

    // Rotate every secret the kit owns; an existing database's secret is its owner's.
    const rotated: RotatedSecret[] = [
      ...(deployment.target.mode === 'new'
        ? [{ id: 'TargetMaster', secret: this.target.secret, database: this.target }]
        : []),
      ...(deployment.source.mode === 'new'
        ? [{ id: 'SourceMaster', secret: this.source.secret, database: this.source }]
        : []),
      { id: 'DmsLogin', secret: this.logins.dmsSecret, database: this.target },
      { id: 'MigratorLogin', secret: this.logins.migratorSecret, database: this.target },
      ...(this.logins.replicationSecret
        ? [{ id: 'ReplicationLogin', secret: this.logins.replicationSecret, database: this.source }]
        : []),
      ...(this.logins.anchorSecret
        ? [{ id: 'AnchorLogin', secret: this.logins.anchorSecret, database: this.target }]
        : []),
    ];
    this.rotation = new SecretRotation(this, 'SecretRotation', {
      vpc,
      subnets,
      secrets: rotated,
      days: deployment.secretRotationDays,
      // The logins and migrations read these secrets at deploy time: rotate after them.
      after: [this.logins.resource, this.migrations.resource],
    });
    this.network.allowSecretsManagerFrom(this.rotation.securityGroup);
    const kitSecrets = [
      this.source.secret,
      this.target.secret,
      this.logins.dmsSecret,
      this.logins.migratorSecret,
      ...(this.logins.replicationSecret ? [this.logins.replicationSecret] : []),
      ...(this.logins.anchorSecret ? [this.logins.anchorSecret] : []),
    ];
    this.network.restrictSecretsManagerTo(kitSecrets);
    this.network.allowSecretRotationOf(rotated.map((entry) => entry.secret));

    this.starter = new ReplicationStarter(this, 'Starter', {
      kind: this.replication.kind,
      identifier: this.replication.replicationIdentifier,
      arn: this.replication.replicationArn,
      replication: this.replication.replicationResource,
      fingerprint: taskFingerprint(config),
      logRetention,
    });
    // Staging tables and triggers exist before the task does.
    this.starter.prepare.node.addDependency(this.migrations.resource);

    this.alarms = new ReplicationAlarms(this, 'Alarms', {
      kind: this.replication.kind,
      replicationIdentifier: this.replication.replicationIdentifier,
      replicationArn: this.replication.replicationArn,
      ...(this.replication.instanceIdentifier && {
        instanceIdentifier: this.replication.instanceIdentifier,
      }),
      cdcLatencySeconds: dms.cdcLatencyAlarmSeconds,
      alertTopic: this.alertTopic,
    });

    new CfnOutput(this, this.replication.kind === 'task' ? 'TaskArn' : 'ReplicationConfigArn', {
      value: this.replication.replicationArn,
      description: 'audit-trail status --task-arn <this>',
    });
    new CfnOutput(this, 'TargetSecretArn', {
      value: this.target.secret.secretArn,
      description: 'the target administrator (master user): for break-glass use only',
    });
    new CfnOutput(this, 'DmsLoginSecretArn', { value: this.logins.dmsSecret.secretArn });
    new CfnOutput(this, 'MigratorLoginSecretArn', {
      value: this.logins.migratorSecret.secretArn,
      description: 'audit-trail migrate as this login (owner and capture roles)',
    });
    new CfnOutput(this, 'TargetEndpoint', { value: this.target.host });
    if (this.anchor) {
      new CfnOutput(this, 'ChainAnchors', {
        value: this.anchor.location,
        description: 'audit-trail verify --integrity --anchors <this>',
      });
    }
    new CfnOutput(this, 'AlarmTopicArn', { value: this.alarms.topic.topicArn });
    new CfnOutput(this, 'SourceLogGroup', { value: this.source.postgresLogGroupName });
    const source = deployment.source;
    if (source.mode === 'existing' && source.engine === 'postgres' && source.parameterGroupName) {
      new CfnOutput(this, 'SourceParameterGroup', {
        value: source.parameterGroupName,
        description:
          'set rds.logical_replication=1 (static: reboot once), wal_sender_timeout and max_slot_wal_keep_size here',
      });
    }
    this.acknowledgeLogRetentionFunction();
  }

  /**
   * `cloudwatchLogsRetention` on the clusters adds aws-cdk-lib's singleton LogRetention
   * function to the stack; its role is aws-cdk-lib's to define.
   */
  private acknowledgeLogRetentionFunction(): void {
    for (const child of this.node.children) {
      if (!child.node.id.startsWith('LogRetention')) continue;
      acknowledge(
        child,
        'aws-cdk-lib LogRetention function: sets retention on the RDS log groups; logs:PutRetentionPolicy/DeleteRetentionPolicy need Resource * because the groups are created by RDS later',
        'AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole]',
        'AwsSolutions-IAM5[Resource::*]',
      );
    }
  }
}

/**
 * A short stable hash of what, when changed, modifies the task or its endpoints: the
 * mappings, the settings and what the endpoints point at. Cluster parameters, alarms or
 * ignored columns do not touch the task, so changing them never stops it.
 */
export function taskFingerprint(config: AuditTrailConfig): string {
  const deployment = resolveDeployment(config.deployment);
  const source = deployment.source;
  const value = {
    tableMappings: buildTableMappings(config),
    taskSettings: buildTaskSettings(config),
    source:
      source.mode === 'existing'
        ? source
        : { mode: 'new', engine: source.engine, databaseName: source.databaseName },
    target: deployment.target.databaseName,
    dms: { mode: deployment.dms.mode, instanceClass: deployment.dms.instanceClass },
  };
  return createHash('sha256').update(JSON.stringify(value)).digest('hex').slice(0, 16);
}

/** The parameters the user added to a new source's parameter group (cluster or instance). */
function userSourceParameters(deployment: DeploymentConfig): Record<string, string> {
  const source = deployment.source;
  if (source.mode !== 'new') return {};
  return source.engine === 'postgres' ? source.parameters : source.clusterParameters;
}

/** The nearest CloudWatch retention at or above `days`. */
function retentionDays(days: number): logs.RetentionDays {
  const allowed = Object.values(logs.RetentionDays)
    .filter((value): value is number => typeof value === 'number' && value > 0)
    .sort((a, b) => a - b);
  return (allowed.find((value) => value >= days) ??
    logs.RetentionDays.INFINITE) as logs.RetentionDays;
}

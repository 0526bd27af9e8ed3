import { createHash } from 'node:crypto';
import { Aspects, CfnOutput, RemovalPolicy, Stack, type StackProps } from 'aws-cdk-lib';
import * as logs from 'aws-cdk-lib/aws-logs';
import type { Construct } from 'constructs';
import { buildTableMappings, buildTaskSettings } from '../mappings';
import type { AuditTrailConfig } from '../src/config';
import { resolveDeployment, type DeploymentConfig } from '../src/config/deployment';
import { resolveChainAnchors } from '../src/config/chain-anchors';
import { AlertTopic } from './constructs/alert-topic';
import { AuditorAccess } from './constructs/auditor-access';
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
import { ddlArtifactsSchema } from '../src/trust/logins';
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

/** The change-history half of {@link AuditTrailStack}: everything DMS writes through. */
interface ChangeHistoryParts {
  readonly target: TargetDatabase;
  readonly logins: DatabaseLogins;
  readonly dmsSecret: RotatedSecret['secret'];
  readonly migratorSecret: RotatedSecret['secret'];
  readonly migrations: TargetMigrations;
  readonly anchor?: ChainAnchor;
  /** Auditors' Data API policy (a kit-created Aurora target only). */
  readonly auditorAccess?: AuditorAccess;
  readonly replication: DmsReplication;
  /** A new target's master secret (rotated first, as before the access-audit-only split). */
  readonly targetMaster: RotatedSecret[];
  /** The logins' secrets, rotated and reachable through the endpoint. */
  readonly loginSecrets: RotatedSecret[];
  /** The source login DMS and the migrations use. */
  readonly sourceLogin: RotatedSecret['secret'];
}

/**
 * The whole pipeline in one stack: network, source (new or imported), the shared alert
 * topic and, when the config lists tables, the change history (target, migrations, DMS,
 * the task starter and alarms). One stack keeps security-group rules between the parts
 * free of cross-stack exports. An access-audit-only config (no tables) gets no target,
 * no DMS and no logical replication on a new source.
 */
export class AuditTrailStack extends Stack {
  readonly deployment: DeploymentConfig;
  readonly network: Network;
  readonly source: SourceDatabase;
  /** The change-history target; undefined for an access-audit-only config (no tables). */
  readonly target?: TargetDatabase;
  /** The target migrations; undefined for an access-audit-only config. */
  readonly migrations?: TargetMigrations;
  /**
   * The least-privilege logins DMS, the migrations and the access audit's canary use, each
   * in its own secret; undefined when there is neither a change history nor a canary
   * login to make (an access-audit-only config on an existing source).
   */
  readonly logins?: DatabaseLogins;
  /** Hosted rotation of every database secret the kit owns. */
  readonly rotation: SecretRotation;
  /** The DMS task or replication config; undefined for an access-audit-only config. */
  readonly replication?: DmsReplication;
  /** Starts the DMS task; undefined for an access-audit-only config. */
  readonly starter?: ReplicationStarter;
  /** DMS latency and failure alarms; undefined for an access-audit-only config. */
  readonly alarms?: ReplicationAlarms;
  /** The one topic both halves of the kit alert through (DMS alarms and events, access audit). */
  readonly alertTopic: AlertTopic;
  /** CMK of the log groups; retains every evidence resource in production. */
  readonly evidence: EvidenceProtection;
  /** The chain anchor bucket and Lambda (`deployment.anchors`); undefined when disabled. */
  readonly anchor?: ChainAnchor;
  /** Auditors' Data API policy; undefined unless the kit creates an Aurora target. */
  readonly auditorAccess?: AuditorAccess;

  private readonly logRetention: logs.RetentionDays;

  constructor(scope: Construct, id: string, props: AuditTrailStackProps) {
    const config = props.config;
    const history = config.tables.length > 0;
    super(scope, id, {
      description: history
        ? 'audit-trail: DMS change-history pipeline'
        : 'audit-trail: access audit (no change history)',
      ...props,
    });
    const deployment = resolveDeployment(config.deployment);
    this.deployment = deployment;
    const production = deployment.production;
    const logRetention = retentionDays(deployment.logRetentionDays ?? (production ? 365 : 30));
    this.logRetention = logRetention;

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
      logicalReplication: history,
      logRetention: props.sourceLogRetention ?? logRetention,
      // Joined, not overwritten: both may name shared_preload_libraries.
      extraParameters: mergeClusterParameters(
        userSourceParameters(deployment),
        props.extraSourceClusterParameters ?? {},
      ),
    });

    this.alertTopic = new AlertTopic(this, 'AlertTopic', {
      ...(deployment.alarmEmail !== undefined && { emails: [deployment.alarmEmail] }),
      removalPolicy: production ? RemovalPolicy.RETAIN : RemovalPolicy.DESTROY,
    });

    const target = history ? this.createTarget() : undefined;
    // The canary's login on a source the kit creates (an existing one's is the operator's).
    const canaryRole =
      deployment.source.mode === 'new' ? config.accessAudit?.canary.role : undefined;
    const logins =
      target !== undefined || canaryRole !== undefined
        ? this.createLogins(config, target, canaryRole)
        : undefined;
    if (logins) this.logins = logins;
    const parts = target && logins ? this.addChangeHistory(config, target, logins) : undefined;
    if (parts) {
      this.target = parts.target;
      this.migrations = parts.migrations;
      this.replication = parts.replication;
      if (parts.anchor) this.anchor = parts.anchor;
      if (parts.auditorAccess) this.auditorAccess = parts.auditorAccess;
    }

    // Rotate every secret the kit owns; an existing database's secret is its owner's.
    const rotated: RotatedSecret[] = [
      ...(parts?.targetMaster ?? []),
      ...(deployment.source.mode === 'new'
        ? [{ id: 'SourceMaster', secret: this.source.secret, database: this.source }]
        : []),
      ...(parts?.loginSecrets ?? []),
      ...(logins?.canarySecret
        ? [{ id: 'CanaryLogin', secret: logins.canarySecret, database: this.source }]
        : []),
    ];
    this.rotation = new SecretRotation(this, 'SecretRotation', {
      vpc,
      subnets,
      secrets: rotated,
      days: deployment.secretRotationDays,
      // The logins and migrations read these secrets at deploy time: rotate after them.
      after: [...(logins ? [logins.resource] : []), ...(parts ? [parts.migrations.resource] : [])],
    });
    this.network.allowSecretsManagerFrom(this.rotation.securityGroup);
    const kitSecrets = [
      this.source.secret,
      ...(parts ? [parts.target.secret, ...parts.loginSecrets.map((entry) => entry.secret)] : []),
      ...(logins?.canarySecret ? [logins.canarySecret] : []),
    ];
    this.network.restrictSecretsManagerTo(kitSecrets);
    this.network.allowSecretRotationOf(rotated.map((entry) => entry.secret));

    if (parts) {
      const replication = parts.replication;
      this.starter = new ReplicationStarter(this, 'Starter', {
        kind: replication.kind,
        identifier: replication.replicationIdentifier,
        arn: replication.replicationArn,
        replication: replication.replicationResource,
        fingerprint: taskFingerprint(config),
        logRetention,
      });
      // Staging tables and triggers exist before the task does.
      this.starter.prepare.node.addDependency(parts.migrations.resource);

      const dms = deployment.dms;
      this.alarms = new ReplicationAlarms(this, 'Alarms', {
        kind: replication.kind,
        replicationIdentifier: replication.replicationIdentifier,
        replicationArn: replication.replicationArn,
        ...(replication.instanceIdentifier && {
          instanceIdentifier: replication.instanceIdentifier,
        }),
        cdcLatencySeconds: dms.cdcLatencyAlarmSeconds,
        alertTopic: this.alertTopic,
      });
      this.addChangeHistoryOutputs(parts);
    }
    new CfnOutput(this, 'AlarmTopicArn', { value: this.alertTopic.topic.topicArn });
    new CfnOutput(this, 'SourceLogGroup', { value: this.source.postgresLogGroupName });
    const source = deployment.source;
    if (source.mode === 'existing' && source.engine === 'postgres' && source.parameterGroupName) {
      new CfnOutput(this, 'SourceParameterGroup', {
        value: source.parameterGroupName,
        description: history
          ? 'set rds.logical_replication=1 (static: reboot once), wal_sender_timeout and max_slot_wal_keep_size here'
          : 'set the pgAudit parameters here (see README "Access audit")',
      });
    }
    this.acknowledgeLogRetentionFunction();
  }

  /** The change-history target: pgAudit and the Data API when the kit creates it. */
  private createTarget(): TargetDatabase {
    const deployment = this.deployment;
    return new TargetDatabase(this, 'Target', {
      dataApi: targetDataApi(deployment),
      vpc: this.network.vpc,
      subnets: this.network.subnets,
      target: deployment.target,
      production: deployment.production,
      logRetention: this.logRetention,
      // pgAudit on a kit-created target: DBAs touching the audit store are audited too.
      ...(deployment.target.mode === 'new' && { parameters: targetPgauditParameters() }),
    });
  }

  /**
   * The least-privilege logins: the target's (with a change history), DMS's replication
   * login and the canary's on a kit-created source. Only this reads the master secrets.
   */
  private createLogins(
    config: AuditTrailConfig,
    target: TargetDatabase | undefined,
    canaryRole: string | undefined,
  ): DatabaseLogins {
    const deployment = this.deployment;
    const logins = new DatabaseLogins(this, 'Logins', {
      vpc: this.network.vpc,
      subnets: this.network.subnets,
      config,
      ...(target && {
        target,
        anchor: resolveChainAnchors(deployment.anchors, deployment.production).enabled,
        auditor: targetDataApi(deployment),
        targetPgaudit: deployment.target.mode === 'new',
      }),
      ...(deployment.source.mode === 'new' && { source: this.source }),
      ...(canaryRole !== undefined && { canaryRole }),
      logRetention: this.logRetention,
    });
    this.network.allowSecretsManagerFrom(logins.securityGroup);
    return logins;
  }

  /** Migrations, chain anchor and DMS: the parts that need audited tables. */
  private addChangeHistory(
    config: AuditTrailConfig,
    target: TargetDatabase,
    logins: DatabaseLogins,
  ): ChangeHistoryParts {
    const deployment = this.deployment;
    const production = deployment.production;
    const logRetention = this.logRetention;
    const { vpc, subnets } = this.network;
    const identifier = deployment.stackName.toLowerCase();
    const anchors = resolveChainAnchors(deployment.anchors, production);
    const { dmsSecret, migratorSecret } = logins;
    if (!dmsSecret || !migratorSecret) throw new Error('the target logins were not created');
    // An existing source's secret is already a replication user (see the README).
    const sourceLogin = logins.replicationSecret ?? this.source.secret;

    const migrations = new TargetMigrations(this, 'Migrations', {
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
        secret: migratorSecret,
        host: target.host,
        port: target.port,
        databaseName: target.databaseName,
      },
      logRetention,
    });
    migrations.resource.node.addDependency(logins.resource);
    this.source.allowFrom(migrations.securityGroup, 'audit-trail migrations reads the catalog');
    target.allowFrom(migrations.securityGroup, 'audit-trail migrations');
    this.network.allowSecretsManagerFrom(migrations.securityGroup);
    // The writer instances must be up before the Lambda connects.
    for (const database of [this.source.resource, target.resource]) {
      if (database) migrations.resource.node.addDependency(database);
    }

    let anchor: ChainAnchor | undefined;
    if (logins.anchorSecret) {
      anchor = new ChainAnchor(this, 'ChainAnchor', {
        vpc,
        subnets,
        target: { host: target.host, port: target.port, databaseName: target.databaseName },
        auditSchema: config.auditSchema,
        loginSecret: logins.anchorSecret,
        everyMinutes: anchors.everyMinutes,
        retentionDays: anchors.retentionDays,
        mode: anchors.mode,
        prefix: anchors.prefix,
        s3GatewayEndpoint: this.network.created,
        logRetention,
      });
      target.allowFrom(anchor.securityGroup, 'audit-trail chain anchor');
      this.network.allowSecretsManagerFrom(anchor.securityGroup);
      // Its login exists after the logins resource, the chain after the migrations.
      anchor.schedule.node.addDependency(logins.resource, migrations.resource);
    }

    const dms = deployment.dms;
    const replication = new DmsReplication(this, 'Dms', {
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
        ddlArtifactsSchema: ddlArtifactsSchema(config),
      },
      target: {
        engine: target.engine,
        secret: dmsSecret,
        databaseName: target.databaseName,
      },
      tableMappings: buildTableMappings(config),
      taskSettings: buildTaskSettings(config),
    });
    this.source.allowFrom(replication.securityGroup, 'audit-trail DMS replication');
    target.allowFrom(replication.securityGroup, 'audit-trail DMS replication');
    this.network.allowSecretsManagerFrom(replication.securityGroup);

    const targetMaster: RotatedSecret[] =
      deployment.target.mode === 'new'
        ? [{ id: 'TargetMaster', secret: target.secret, database: target }]
        : [];
    const loginSecrets: RotatedSecret[] = [
      { id: 'DmsLogin', secret: dmsSecret, database: target },
      { id: 'MigratorLogin', secret: migratorSecret, database: target },
      ...(logins.replicationSecret
        ? [{ id: 'ReplicationLogin', secret: logins.replicationSecret, database: this.source }]
        : []),
      ...(logins.anchorSecret
        ? [{ id: 'AnchorLogin', secret: logins.anchorSecret, database: target }]
        : []),
      ...(logins.auditorSecret
        ? [{ id: 'AuditorLogin', secret: logins.auditorSecret, database: target }]
        : []),
    ];
    const auditorAccess =
      target.cluster && logins.auditorSecret
        ? new AuditorAccess(this, 'AuditorAccess', {
            clusterArn: target.cluster.clusterArn,
            secret: logins.auditorSecret,
          })
        : undefined;
    return {
      target,
      logins,
      dmsSecret,
      migratorSecret,
      migrations,
      replication,
      targetMaster,
      loginSecrets,
      sourceLogin,
      ...(anchor && { anchor }),
      ...(auditorAccess && { auditorAccess }),
    };
  }

  private addChangeHistoryOutputs(parts: ChangeHistoryParts): void {
    new CfnOutput(this, parts.replication.kind === 'task' ? 'TaskArn' : 'ReplicationConfigArn', {
      value: parts.replication.replicationArn,
      description: 'audit-trail status --task-arn <this>',
    });
    new CfnOutput(this, 'TargetSecretArn', {
      value: parts.target.secret.secretArn,
      description: 'the target administrator (master user): for break-glass use only',
    });
    new CfnOutput(this, 'DmsLoginSecretArn', { value: parts.dmsSecret.secretArn });
    new CfnOutput(this, 'MigratorLoginSecretArn', {
      value: parts.migratorSecret.secretArn,
      description: 'audit-trail migrate as this login (owner and capture roles)',
    });
    new CfnOutput(this, 'TargetEndpoint', { value: parts.target.host });
    if (parts.auditorAccess && parts.target.cluster && parts.logins.auditorSecret) {
      new CfnOutput(this, 'TargetClusterArn', {
        value: parts.target.cluster.clusterArn,
        description: 'audit-trail history --target-arn <this> (the RDS Data API)',
      });
      new CfnOutput(this, 'AuditorSecretArn', {
        value: parts.logins.auditorSecret.secretArn,
        description: 'audit-trail history --secret-arn <this> (the auditor login, reader role)',
      });
      new CfnOutput(this, 'AuditorPolicyArn', {
        value: parts.auditorAccess.policy.managedPolicyArn,
        description:
          "attach to auditors' roles: the Data API on the target as the auditor login, nothing else",
      });
    }
    if (parts.anchor) {
      new CfnOutput(this, 'ChainAnchors', {
        value: parts.anchor.location,
        description: 'audit-trail verify --integrity --anchors <this>',
      });
    }
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

/**
 * Auditors query a kit-created Aurora target over the Data API (no bastion). RDS for
 * PostgreSQL instances have no Data API; an imported cluster is its owner's.
 */
function targetDataApi(deployment: DeploymentConfig): boolean {
  return deployment.target.mode === 'new' && deployment.target.engine === 'aurora-postgresql';
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

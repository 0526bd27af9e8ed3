import { App, type AppProps, type Environment } from 'aws-cdk-lib';
import * as logs from 'aws-cdk-lib/aws-logs';
import type * as sqs from 'aws-cdk-lib/aws-sqs';
import type { AuditTrailConfig } from '../src/config';
import { resolveDeployment } from '../src/config/deployment';
import * as secretsmanager from 'aws-cdk-lib/aws-secretsmanager';
import type { CanaryConnection } from './access-audit/access-audit-canary';
import { AccessAuditMonitor } from './access-audit/access-audit-monitor';
import { DatabaseActivityStream } from './activity-stream/activity-stream';
import { accessAuditLogRetention, pgauditClusterParameters } from './access-audit/parameters';
import { AuditTrailStack } from './audit-trail-stack';
import { DmsAccountRolesStack } from './constructs/dms-account-roles';
import { applyNag } from './nag';

/** What {@link buildApp} created. */
export interface AuditTrailApp {
  readonly app: App;
  readonly stack: AuditTrailStack;
  /** Present when `deployment.dms.createAccountRoles` is true. */
  readonly rolesStack?: DmsAccountRolesStack;
  /** Present when the config has an `accessAudit` section. */
  readonly accessAudit?: AccessAuditMonitor;
  /** Present when `accessAudit.activityStream.enabled` is true. */
  readonly activityStream?: DatabaseActivityStream;
}

/**
 * Builds the CDK app for a config: the pipeline stack, the optional account-level DMS
 * roles stack, and cdk-nag's AwsSolutions checks over everything. Pass an existing
 * `App` (the CLI entry point reads `-c config=` from it first) or props for a new one.
 *
 * With an `accessAudit` section, the source cluster also gets pgAudit's parameters
 * and a longer PostgreSQL log retention, and the stack gets the access-audit monitor
 * subscribed to the source's PostgreSQL log group, with its liveness canary: on a source
 * the kit creates, the logins custom resource makes the canary login and its rotated
 * secret; on an existing source, the secret named by `deployment.source.canarySecretArn`.
 */
export function buildApp(config: AuditTrailConfig, app: App | AppProps = {}): AuditTrailApp {
  app = app instanceof App ? app : new App(app);
  const deployment = resolveDeployment(config.deployment);
  // Without account/region the stacks are environment-agnostic: synth needs no credentials.
  const env: Environment | undefined =
    deployment.account !== undefined || deployment.region !== undefined
      ? { account: deployment.account, region: deployment.region }
      : undefined;
  const rolesStack = deployment.dms.createAccountRoles
    ? new DmsAccountRolesStack(app, `${deployment.stackName}-DmsRoles`, { env })
    : undefined;
  const accessAuditConfig = config.accessAudit;
  const stack = new AuditTrailStack(app, deployment.stackName, {
    config,
    env,
    ...(accessAuditConfig && {
      extraSourceClusterParameters: pgauditClusterParameters(accessAuditConfig),
      sourceLogRetention: accessAuditLogRetention(accessAuditConfig),
    }),
  });
  if (rolesStack) stack.addDependency(rolesStack, 'DMS needs dms-vpc-role before a subnet group');
  const accessAudit = accessAuditConfig ? addAccessAudit(stack, accessAuditConfig) : undefined;
  const activityStream = accessAuditConfig?.activityStream?.enabled
    ? addActivityStream(stack, accessAuditConfig, accessAudit?.queue)
    : undefined;
  if (activityStream && accessAudit?.dashboard)
    activityStream.decrypt.addToDashboard(accessAudit.dashboard);
  applyNag(app);
  return {
    app,
    stack,
    ...(rolesStack && { rolesStack }),
    ...(accessAudit && { accessAudit }),
    ...(activityStream && { activityStream }),
  };
}

function addAccessAudit(
  stack: AuditTrailStack,
  config: NonNullable<AuditTrailConfig['accessAudit']>,
): AccessAuditMonitor {
  const canary = canaryConnection(stack);
  const monitor = new AccessAuditMonitor(stack, 'AccessAudit', {
    // /aws/rds/cluster/<id>/postgresql for Aurora, /aws/rds/instance/<id>/postgresql for RDS.
    logGroup: logs.LogGroup.fromLogGroupName(
      stack,
      'SourcePostgresLog',
      stack.source.postgresLogGroupName,
    ),
    config,
    alertTopic: stack.alertTopic,
    // The log group is the audit record: a new source's retention is set on the cluster
    // (sourceLogRetention); an existing one's is set here.
    postgresLogRetention:
      stack.deployment.source.mode === 'existing' ? accessAuditLogRetention(config) : 'unchanged',
    ...(canary && { canary }),
  });
  if (monitor.canary && canary) {
    stack.network.allowSecretsManagerFrom(monitor.canary.securityGroup);
    // The kit's endpoint serves only the secrets named to it: an operator's canary secret too.
    stack.network.restrictSecretsManagerTo([canary.secret]);
    // Its first run finds the login in place (a kit-created source's is made at deploy).
    if (stack.logins) monitor.canary.schedule.node.addDependency(stack.logins.resource);
  }
  // RDS creates the PostgreSQL log group when the database exports its log: subscribe after.
  if (stack.source.resource) monitor.node.addDependency(stack.source.resource);
  // A kit-created target runs pgAudit too: a DBA touching the audit store alerts alike.
  const target = stack.target;
  if (stack.deployment.target.mode === 'new' && target?.resource) {
    monitor.watch(
      'TargetSubscription',
      logs.LogGroup.fromLogGroupName(stack, 'TargetPostgresLog', target.postgresLogGroupName),
    );
    monitor.node.addDependency(target.resource);
  }
  return monitor;
}

/**
 * Where the canary logs in: the source's database, as the canary login whose secret the
 * logins resource made (kit-created source) or the operator named (existing source).
 * Undefined for an existing source without `canarySecretArn` (the monitor then warns).
 */
function canaryConnection(stack: AuditTrailStack): CanaryConnection | undefined {
  const source = stack.source;
  const sourceConfig = stack.deployment.source;
  const secret =
    sourceConfig.mode === 'new'
      ? stack.logins?.canarySecret
      : sourceConfig.canarySecretArn !== undefined
        ? secretsmanager.Secret.fromSecretCompleteArn(
            stack,
            'CanarySecret',
            sourceConfig.canarySecretArn,
          )
        : undefined;
  if (secret === undefined) return undefined;
  return {
    secret,
    databaseName: source.databaseName,
    host: source.host,
    port: source.port,
    vpc: stack.network.vpc,
    vpcSubnets: stack.network.subnets,
    database: source.securityGroup,
    // allowSecretsManagerFrom opens the endpoint (new VPC) or HTTPS out (existing VPC).
    secretsManagerEgress: false,
  };
}

/**
 * The source cluster's Database Activity Stream, on an existing provisioned Aurora
 * cluster (the config refuses an RDS instance and the kit's Serverless v2 cluster). A
 * new VPC has no NAT, so it gets a KMS endpoint for the stream.
 */
function addActivityStream(
  stack: AuditTrailStack,
  config: NonNullable<AuditTrailConfig['accessAudit']>,
  forwardQueue: sqs.IQueue | undefined,
): DatabaseActivityStream {
  const source = stack.source;
  if (source.clusterIdentifier === undefined || config.activityStream === undefined)
    throw new Error('Database Activity Streams need an Aurora source cluster');
  // The config refuses this with a field name; a config without `deployment` reaches here.
  if (source.cluster !== undefined)
    throw new Error(
      'Database Activity Streams are not supported on Aurora Serverless v2, which the source cluster the kit creates is: set deployment.source to an existing provisioned cluster',
    );
  return new DatabaseActivityStream(stack, 'ActivityStream', {
    clusterIdentifier: source.clusterIdentifier,
    accessAudit: config,
    config: config.activityStream,
    alertTopic: stack.alertTopic,
    ...(forwardQueue && { forwardQueue }),
    production: stack.deployment.production,
    ...(stack.deployment.network.vpcId === undefined && {
      kmsEndpoint: {
        vpc: stack.network.vpc,
        subnets: stack.network.subnets,
        databaseSecurityGroup: source.securityGroup,
      },
    }),
  });
}

import { App, Stack } from 'aws-cdk-lib';
import { Annotations, Match, Template } from 'aws-cdk-lib/assertions';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as logs from 'aws-cdk-lib/aws-logs';
import * as secretsmanager from 'aws-cdk-lib/aws-secretsmanager';
import { AccessAuditMonitor } from '../../infra/access-audit/access-audit-monitor';
import {
  accessAuditLogRetention,
  mergeClusterParameters,
  pgauditClusterParameters,
} from '../../infra/access-audit/parameters';
import { acknowledge, applyNag } from '../../infra/nag';
import { loadSettings } from '../../src/lambda/access-alert/settings';

const ENV = { account: '123456789012', region: 'eu-west-1' };
const FULL_CONFIG = {
  auditedRoles: ['alice'],
  serviceAccounts: ['app_svc'],
  alerts: {
    emails: ['dba@example.com'],
    httpsEndpoints: ['https://hooks.example.com/audit'],
    alarmThreshold: 2,
  },
  sqs: { enabled: true, fifo: true, forward: 'events' as const },
};

/** Builds a stack with the monitor; Template.fromStack runs cdk-nag and throws on any unacknowledged finding. */
function synth(build: (stack: Stack) => void, bundle = false): Template {
  const app = new App(bundle ? {} : { context: { 'aws:cdk:bundling-stacks': [] } });
  const stack = new Stack(app, 'AccessAuditTest', { env: ENV });
  build(stack);
  applyNag(app);
  return Template.fromStack(stack);
}

describe('pgAudit cluster parameters', () => {
  it('preloads pgaudit with the RDS audit role and log settings', () => {
    expect(pgauditClusterParameters()).toEqual({
      shared_preload_libraries: 'pg_stat_statements,pgaudit',
      'pgaudit.role': 'rds_pgaudit',
      'pgaudit.log': 'ddl,role',
      'pgaudit.log_catalog': '0',
      'pgaudit.log_relation': '1',
      'pgaudit.log_parameter': '0',
      'pgaudit.log_statement_once': '0',
      log_connections: '1',
      log_disconnections: '1',
    });
    expect(
      pgauditClusterParameters({ clusterPgauditLog: 'all' }, { preloadLibraries: [] }),
    ).toMatchObject({
      shared_preload_libraries: 'pgaudit',
      'pgaudit.log': 'all',
    });
  });

  it('merges with other cluster parameters without losing preloaded libraries', () => {
    const merged = mergeClusterParameters(
      { 'rds.logical_replication': '1', shared_preload_libraries: 'pg_stat_statements,pglogical' },
      pgauditClusterParameters(),
    );
    expect(merged['rds.logical_replication']).toBe('1');
    expect(merged.shared_preload_libraries).toBe('pg_stat_statements,pglogical,pgaudit');
  });

  it('turns logRetentionDays into a CloudWatch retention', () => {
    expect(accessAuditLogRetention()).toBe(logs.RetentionDays.ONE_YEAR);
    expect(accessAuditLogRetention({ logRetentionDays: 100 })).toBe(logs.RetentionDays.FOUR_MONTHS);
    expect(accessAuditLogRetention({ logRetentionDays: 1827 })).toBe(logs.RetentionDays.FIVE_YEARS);
    expect(accessAuditLogRetention({ logRetentionDays: 5000 })).toBe(logs.RetentionDays.INFINITE);
  });
});

describe('AccessAuditMonitor', () => {
  it('bundles the Lambda and is cdk-nag clean with defaults, subscribing to the imported log group', () => {
    const template = synth(
      (stack) =>
        new AccessAuditMonitor(stack, 'AccessAudit', {
          clusterIdentifier: 'source-cluster',
          config: { logRetentionDays: 400 },
        }),
      true,
    );
    // An existing cluster's imported log group gets accessAudit.logRetentionDays by default.
    template.hasResourceProperties('Custom::LogRetention', {
      LogGroupName: '/aws/rds/cluster/source-cluster/postgresql',
      RetentionInDays: 400,
    });
    template.hasResourceProperties('AWS::Logs::SubscriptionFilter', {
      LogGroupName: '/aws/rds/cluster/source-cluster/postgresql',
      FilterPattern: '?"AUDIT" ?"CONTEXT" ?"ERROR" ?"STATEMENT" ?"FATAL"',
    });
    template.resourceCountIs('AWS::SQS::Queue', 1); // failed invocations only
    template.resourceCountIs('AWS::SNS::Subscription', 0);
    template.hasResourceProperties('AWS::Lambda::Function', {
      Handler: 'index.handler',
      Environment: {
        Variables: Match.objectLike({
          ALERT_TOPIC_ARN: { Ref: Match.stringLikeRegexp('Topic') },
          POWERTOOLS_SERVICE_NAME: 'access-audit-monitor',
          POWERTOOLS_METRICS_NAMESPACE: 'AuditTrail/AccessAudit',
        }),
      },
    });
  });

  const template = synth((stack) => {
    const logGroup = new logs.LogGroup(stack, 'PostgresLog', {
      logGroupName: '/aws/rds/cluster/shop/postgresql',
      retention: logs.RetentionDays.ONE_YEAR,
    });
    new AccessAuditMonitor(stack, 'AccessAudit', { logGroup, config: FULL_CONFIG });
  });

  it('passes a config the Lambda accepts through its environment', () => {
    const fn = Object.values(
      template.findResources('AWS::Lambda::Function', { Properties: { Handler: 'index.handler' } }),
    )[0] as {
      Properties: { Environment: { Variables: Record<string, unknown> } };
    };
    const variables = fn.Properties.Environment.Variables;
    const settings = loadSettings({
      ALERT_TOPIC_ARN: 'arn:aws:sns:eu-west-1:123456789012:t',
      FORWARD_QUEUE_URL: 'https://sqs.eu-west-1.amazonaws.com/123456789012/q.fifo',
      ACCESS_AUDIT_CONFIG: variables.ACCESS_AUDIT_CONFIG as string,
    });
    expect(settings.config.serviceAccounts).toEqual(['app_svc']);
    expect(settings.config.sqs.forward).toBe('events');
    expect(variables.FORWARD_QUEUE_URL).toEqual({
      Ref: expect.stringMatching(/^AccessAuditForward/),
    });
  });

  it('encrypts the topic with a rotated customer-managed key CloudWatch of this account may use', () => {
    template.hasResourceProperties('AWS::KMS::Key', {
      EnableKeyRotation: true,
      KeyPolicy: {
        Statement: Match.arrayWith([
          Match.objectLike({
            Effect: 'Allow',
            Principal: { Service: 'cloudwatch.amazonaws.com' },
            Action: ['kms:Decrypt', 'kms:GenerateDataKey*'],
            Condition: { StringEquals: { 'aws:SourceAccount': '123456789012' } },
          }),
        ]),
      },
    });
    template.hasResourceProperties('AWS::SNS::Topic', { KmsMasterKeyId: Match.anyValue() });
  });

  it("lets only this account's CloudWatch alarms publish and denies insecure transport", () => {
    template.hasResourceProperties('AWS::SNS::TopicPolicy', {
      PolicyDocument: {
        Statement: Match.arrayWith([
          Match.objectLike({
            Effect: 'Deny',
            Principal: '*',
            Condition: { Bool: { 'aws:SecureTransport': 'false' } },
          }),
          Match.objectLike({
            Effect: 'Allow',
            Action: 'sns:Publish',
            Principal: { Service: 'cloudwatch.amazonaws.com' },
            Condition: {
              StringEquals: { 'aws:SourceAccount': '123456789012' },
              ArnLike: { 'aws:SourceArn': Match.anyValue() },
            },
          }),
        ]),
      },
    });
  });

  it('subscribes the configured e-mail and HTTPS endpoints', () => {
    template.hasResourceProperties('AWS::SNS::Subscription', {
      Protocol: 'email',
      Endpoint: 'dba@example.com',
    });
    template.hasResourceProperties('AWS::SNS::Subscription', {
      Protocol: 'https',
      Endpoint: 'https://hooks.example.com/audit',
    });
  });

  it('creates an encrypted FIFO forward queue with a FIFO dead-letter queue', () => {
    template.hasResourceProperties('AWS::SQS::Queue', {
      FifoQueue: true,
      ContentBasedDeduplication: false,
      KmsMasterKeyId: Match.anyValue(),
      RedrivePolicy: { deadLetterTargetArn: Match.anyValue(), maxReceiveCount: 5 },
    });
    const queues = Object.values(template.findResources('AWS::SQS::Queue')) as {
      Properties: Record<string, unknown>;
    }[];
    expect(queues).toHaveLength(3); // forward, its dead letters, failed invocations
    for (const queue of queues) expect(queue.Properties.KmsMasterKeyId).toBeDefined();
    template.resourceCountIs('AWS::SQS::QueuePolicy', 3);
  });

  it('subscribes the Lambda to the PostgreSQL log and keeps failed invocations', () => {
    template.hasResourceProperties('AWS::Logs::SubscriptionFilter', {
      LogGroupName: { Ref: Match.anyValue() },
      FilterPattern: '?"AUDIT" ?"CONTEXT" ?"ERROR" ?"STATEMENT" ?"FATAL"',
    });
    template.hasResourceProperties('AWS::Lambda::Permission', {
      Principal: 'logs.amazonaws.com',
      Action: 'lambda:InvokeFunction',
    });
    template.hasResourceProperties('AWS::Lambda::EventInvokeConfig', {
      MaximumRetryAttempts: 2,
      DestinationConfig: { OnFailure: { Destination: Match.anyValue() } },
    });
  });

  it("alarms on human activity and on the monitor's own errors, notifying the topic", () => {
    template.hasResourceProperties('AWS::CloudWatch::Alarm', {
      MetricName: 'Alerts',
      Namespace: 'AuditTrail/AccessAudit',
      Dimensions: [{ Name: 'service', Value: 'access-audit-monitor' }],
      Statistic: 'Sum',
      Threshold: 2,
      ComparisonOperator: 'GreaterThanOrEqualToThreshold',
      AlarmActions: [{ Ref: Match.stringLikeRegexp('Topic') }],
      OKActions: [{ Ref: Match.stringLikeRegexp('Topic') }],
    });
    template.hasResourceProperties('AWS::CloudWatch::Alarm', {
      Metrics: Match.arrayWith([
        Match.objectLike({
          Expression: 'FILL(lambdaErrors, 0) + FILL(monitorErrors, 0) + FILL(parseErrors, 0)',
        }),
      ]),
      OKActions: [{ Ref: Match.stringLikeRegexp('Topic') }],
    });
  });

  it('creates a dashboard with alarm state and recent alerts', () => {
    const dashboard = Object.values(template.findResources('AWS::CloudWatch::Dashboard'))[0] as {
      Properties: { DashboardBody: unknown };
    };
    const body = JSON.stringify(dashboard.Properties.DashboardBody);
    expect(body).toContain('Access audit alarms');
    expect(body).toContain('Recent access alerts');
    expect(body).toContain('filter message = \\\\\\"access alert\\\\\\"');
  });

  it('saves the runbook Logs Insights queries and shows recent human activity beside the alarms', () => {
    const names = Object.values(template.findResources('AWS::Logs::QueryDefinition')).map(
      (resource) => (resource as { Properties: { Name: string } }).Properties.Name,
    );
    expect(names).toEqual([
      'audit-trail/AccessAuditTest/access-audit/session-statements',
      'audit-trail/AccessAuditTest/access-audit/human-activity',
      'audit-trail/AccessAuditTest/access-audit/privilege-changes',
    ]);
    template.hasResourceProperties('AWS::Logs::QueryDefinition', {
      Name: 'audit-trail/AccessAuditTest/access-audit/human-activity',
      LogGroupNames: [{ Ref: Match.stringLikeRegexp('PostgresLog') }],
      QueryString: Match.stringLikeRegexp(
        'user not in \\["app_svc", "rdsadmin", "audit_trail_canary"\\]',
      ),
    });
    const dashboard = Object.values(template.findResources('AWS::CloudWatch::Dashboard'))[0] as {
      Properties: { DashboardBody: unknown };
    };
    const body = JSON.stringify(dashboard.Properties.DashboardBody);
    expect(body).toContain('Recent human activity');
    expect(body).toContain('\\"view\\":\\"table\\"');
  });

  it('refuses a bad config and a missing log group with clear errors', () => {
    expect(() =>
      synth(
        (stack) =>
          new AccessAuditMonitor(stack, 'A', {
            clusterIdentifier: 'c',
            config: { alerts: { emails: ['nope'] } },
          }),
      ),
    ).toThrow(/accessAudit\.alerts\.emails\.0: must be an e-mail address/);
    expect(() => synth((stack) => new AccessAuditMonitor(stack, 'A', {}))).toThrow(
      /give logGroup or clusterIdentifier/,
    );
  });
});

describe('AccessAuditMonitor canary', () => {
  let monitor: AccessAuditMonitor | undefined;
  const template = synth((stack) => {
    const vpc = new ec2.Vpc(stack, 'Vpc', {
      maxAzs: 2,
      natGateways: 0,
      subnetConfiguration: [{ name: 'isolated', subnetType: ec2.SubnetType.PRIVATE_ISOLATED }],
    });
    const database = new ec2.SecurityGroup(stack, 'SourceDb', { vpc, allowAllOutbound: false });
    const secret = new secretsmanager.Secret(stack, 'CanarySecret', {
      generateSecretString: {
        secretStringTemplate: JSON.stringify({ username: 'probe' }),
        generateStringKey: 'password',
      },
    });
    acknowledge(secret, 'test secret', 'AwsSolutions-SMG4');
    acknowledge(vpc, 'test VPC', 'AwsSolutions-VPC7');
    monitor = new AccessAuditMonitor(stack, 'AccessAudit', {
      clusterIdentifier: 'source-cluster',
      config: {
        logFormat: 'csvlog',
        canary: { role: 'probe', intervalMinutes: 10, missedPeriodsToAlarm: 3 },
      },
      canary: {
        secret,
        databaseName: 'appdb',
        host: 'source.cluster-abc.eu-west-1.rds.amazonaws.com',
        port: 5432,
        vpc,
        vpcSubnets: { subnetType: ec2.SubnetType.PRIVATE_ISOLATED },
        database: new ec2.Connections({ securityGroups: [database] }),
      },
    });
  });

  it('runs the canary Lambda in the VPC on the configured schedule as the canary role', () => {
    template.hasResourceProperties('AWS::Lambda::Function', {
      VpcConfig: Match.objectLike({ SecurityGroupIds: Match.anyValue() }),
      Environment: {
        Variables: Match.objectLike({
          CANARY_SECRET_ARN: { Ref: Match.stringLikeRegexp('CanarySecret') },
          CANARY_DATABASE: 'appdb',
          CANARY_ROLE: 'probe',
          CANARY_HOST: 'source.cluster-abc.eu-west-1.rds.amazonaws.com',
          CANARY_PORT: '5432',
        }),
      },
    });
    template.hasResourceProperties('AWS::Events::Rule', {
      ScheduleExpression: 'rate(10 minutes)',
      Targets: [Match.objectLike({ RetryPolicy: { MaximumRetryAttempts: 0 } })],
    });
    // The alert Lambda learns the canary role (and the log format) through its config.
    const alert = Object.values(
      template.findResources('AWS::Lambda::Function', {
        Properties: { Environment: { Variables: { ACCESS_AUDIT_CONFIG: Match.anyValue() } } },
      }),
    )[0] as { Properties: { Environment: { Variables: { ACCESS_AUDIT_CONFIG: string } } } };
    const settings = loadSettings({
      ALERT_TOPIC_ARN: 'arn:aws:sns:eu-west-1:123456789012:t',
      ACCESS_AUDIT_CONFIG: alert.Properties.Environment.Variables.ACCESS_AUDIT_CONFIG,
    });
    expect(settings.config.canary.role).toBe('probe');
    expect(settings.config.logFormat).toBe('csvlog');
  });

  it('lets the canary read its secret only, reach the database port and HTTPS inside the VPC only', () => {
    template.hasResourceProperties('AWS::IAM::Policy', {
      PolicyDocument: {
        Statement: [
          Match.objectLike({
            Action: ['secretsmanager:GetSecretValue', 'secretsmanager:DescribeSecret'],
            Resource: { Ref: Match.stringLikeRegexp('CanarySecret') },
          }),
        ],
      },
    });
    template.hasResourceProperties('AWS::EC2::SecurityGroup', {
      GroupDescription: 'audit-trail access-audit canary Lambda',
      SecurityGroupEgress: [Match.objectLike({ IpProtocol: 'tcp', FromPort: 443, ToPort: 443 })],
    });
    template.hasResourceProperties('AWS::EC2::SecurityGroupEgress', {
      IpProtocol: 'tcp',
      FromPort: 5432,
      ToPort: 5432,
    });
    template.hasResourceProperties('AWS::EC2::SecurityGroupIngress', {
      IpProtocol: 'tcp',
      FromPort: 5432,
      ToPort: 5432,
    });
  });

  it('alarms when CanarySeen stays below 1, missing data counting as not seen', () => {
    template.hasResourceProperties('AWS::CloudWatch::Alarm', {
      MetricName: 'CanarySeen',
      Namespace: 'AuditTrail/AccessAudit',
      Statistic: 'Sum',
      Period: 600,
      Threshold: 1,
      ComparisonOperator: 'LessThanThreshold',
      EvaluationPeriods: 3,
      DatapointsToAlarm: 3,
      TreatMissingData: 'breaching',
      AlarmActions: [{ Ref: Match.stringLikeRegexp('Topic') }],
      OKActions: [{ Ref: Match.stringLikeRegexp('Topic') }],
    });
    expect(monitor?.canary?.alarm).toBeDefined();
  });

  it('warns at synthesis when the monitor has no canary', () => {
    const app = new App({ context: { 'aws:cdk:bundling-stacks': [] } });
    const stack = new Stack(app, 'NoCanary', { env: ENV });
    new AccessAuditMonitor(stack, 'AccessAudit', { clusterIdentifier: 'c' });
    const warnings = Annotations.fromStack(stack).findWarning(
      '*',
      Match.stringLikeRegexp('without a canary'),
    );
    expect(warnings).toHaveLength(1);
  });
});

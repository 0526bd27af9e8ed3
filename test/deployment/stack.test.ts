import { readFileSync } from 'node:fs';
import path from 'node:path';
import { Stack } from 'aws-cdk-lib';
import { Match, Template } from 'aws-cdk-lib/assertions';
import * as sns from 'aws-cdk-lib/aws-sns';
import { buildTableMappings, buildTaskSettings, type TableMappings } from '../../mappings';
import { parseConfig, type AuditTrailConfig } from '../../src/config';
import { currentKitVersion } from '../../src/migrate/kit-version';
import { buildApp } from '../../infra/build-app';
import { rdsCaBundle } from '../../src/postgres/tls';

/** Skips NodejsFunction bundling (seconds per function); `npx cdk synth` bundles for real. */
const FAST = { context: { 'aws:cdk:bundling-stacks': [] } };

const example = parseConfig(
  JSON.parse(
    readFileSync(path.join(__dirname, '../../examples/aws.config.json'), 'utf8'),
  ) as unknown,
  'examples/aws.config.json',
);

/** Synthesizes once; Template.fromStack runs cdk-nag (Validations) and throws on any finding. */
function synth(config: AuditTrailConfig) {
  const built = buildApp(config, FAST);
  return { ...built, template: Template.fromStack(built.stack) };
}

const { template } = synth(example);

function onlyResource(type: string): { Properties: Record<string, unknown>; DependsOn?: string[] } {
  const resources = Object.values(template.findResources(type));
  expect(resources).toHaveLength(1);
  return resources[0] as { Properties: Record<string, unknown>; DependsOn?: string[] };
}

function logicalId(type: string, props: Record<string, unknown> = {}): string {
  const ids = Object.keys(template.findResources(type, { Properties: props }));
  expect(ids, type).toHaveLength(1);
  return ids[0] as string;
}

describe('example config (several tables, one composite key)', () => {
  it('creates an isolated VPC with flow logs and a Secrets Manager endpoint, no NAT', () => {
    template.resourceCountIs('AWS::EC2::VPC', 1);
    template.resourceCountIs('AWS::EC2::NatGateway', 0);
    template.resourceCountIs('AWS::EC2::InternetGateway', 0);
    template.resourceCountIs('AWS::EC2::FlowLog', 1);
    template.hasResourceProperties('AWS::EC2::VPCEndpoint', {
      ServiceName: Match.objectLike({
        'Fn::Join': Match.arrayWith([Match.arrayWith(['.secretsmanager'])]),
      }),
      PrivateDnsEnabled: true,
      VpcEndpointType: 'Interface',
    });
  });

  it('creates the source with a logical-replication cluster parameter group and log export', () => {
    template.hasResourceProperties('AWS::RDS::DBClusterParameterGroup', {
      Family: 'aurora-postgresql16',
      Parameters: {
        'rds.logical_replication': '1',
        wal_sender_timeout: '60000',
        max_slot_wal_keep_size: '20480',
      },
    });
    const parameterGroup = logicalId('AWS::RDS::DBClusterParameterGroup', {
      Parameters: Match.objectLike({ 'rds.logical_replication': '1' }),
    });
    template.hasResourceProperties('AWS::RDS::DBCluster', {
      DBClusterParameterGroupName: { Ref: parameterGroup },
      DatabaseName: 'app',
      StorageEncrypted: true,
      EnableCloudwatchLogsExports: ['postgresql'],
      EnableIAMDatabaseAuthentication: true,
    });
  });

  it('creates the target: Serverless v2, encrypted, private, snapshot on delete outside production', () => {
    template.hasResource('AWS::RDS::DBCluster', {
      Properties: Match.objectLike({
        DatabaseName: 'audit',
        StorageEncrypted: true,
        DeletionProtection: false,
        ServerlessV2ScalingConfiguration: { MinCapacity: 0.5, MaxCapacity: 4 },
      }),
      DeletionPolicy: 'Snapshot',
    });
    template.allResourcesProperties('AWS::RDS::DBInstance', {
      PubliclyAccessible: false,
      DBInstanceClass: 'db.serverless',
    });
  });

  it('creates the DMS subnet group and a private replication instance', () => {
    onlyResource('AWS::DMS::ReplicationSubnetGroup');
    template.hasResourceProperties('AWS::DMS::ReplicationInstance', {
      ReplicationInstanceIdentifier: 'audittrail-instance',
      ReplicationInstanceClass: 'dms.t3.medium',
      PubliclyAccessible: false,
      MultiAZ: false,
      ReplicationSubnetGroupIdentifier: { Ref: logicalId('AWS::DMS::ReplicationSubnetGroup') },
    });
  });

  it("points the source endpoint's DDL capture at the schema the logins resource fills, not public", () => {
    template.hasResourceProperties('AWS::DMS::Endpoint', {
      EndpointType: 'source',
      PostgreSqlSettings: Match.objectLike({ DdlArtifactsSchema: 'audit_dms_ddl' }),
    });
  });

  // The kit's facts about DMS's stream (each partition's changes under the leaf's name,
  // generated columns in every INSERT, migrate's pending-change check) are test_decoding's.
  // Left to DMS, it decodes with pglogical wherever that extension is installed.
  it('pins the source endpoint to test_decoding, whatever extensions the source has', () => {
    template.hasResourceProperties('AWS::DMS::Endpoint', {
      EndpointType: 'source',
      PostgreSqlSettings: Match.objectLike({ PluginName: 'test-decoding' }),
    });
  });

  it('creates endpoints that read Secrets Manager through a role trusted by the regional DMS principal', () => {
    const role = logicalId('AWS::IAM::Role', {
      AssumeRolePolicyDocument: {
        Statement: [
          {
            Action: 'sts:AssumeRole',
            Effect: 'Allow',
            Principal: { Service: { 'Fn::Sub': 'dms.${AWS::Region}.amazonaws.com' } },
          },
        ],
        Version: '2012-10-17',
      },
    });
    template.hasResourceProperties('AWS::DMS::Endpoint', {
      EndpointType: 'source',
      EngineName: 'aurora-postgresql',
      PostgreSqlSettings: Match.objectLike({
        HeartbeatEnable: true,
        HeartbeatFrequency: 5,
        SecretsManagerAccessRoleArn: { 'Fn::GetAtt': [role, 'Arn'] },
      }),
    });
    template.hasResourceProperties('AWS::DMS::Endpoint', {
      EndpointType: 'target',
      DatabaseName: 'audit',
      PostgreSqlSettings: Match.objectLike({
        SecretsManagerAccessRoleArn: { 'Fn::GetAtt': [role, 'Arn'] },
      }),
    });
    template.hasResourceProperties('AWS::IAM::Policy', {
      Roles: [{ Ref: role }],
      PolicyDocument: Match.objectLike({
        Statement: Match.arrayWith([
          Match.objectLike({
            Action: ['secretsmanager:GetSecretValue', 'secretsmanager:DescribeSecret'],
          }),
        ]),
      }),
    });
  });

  it('creates one full-load-and-CDC task whose mappings and settings are the builders’ JSON', () => {
    const task = onlyResource('AWS::DMS::ReplicationTask').Properties;
    expect(task.MigrationType).toBe('full-load-and-cdc');
    expect(JSON.parse(task.TableMappings as string)).toEqual(buildTableMappings(example));
    expect(JSON.parse(task.ReplicationTaskSettings as string)).toEqual(buildTaskSettings(example));
    const mappings = task.TableMappings as string;
    expect(mappings).toContain('"table-name":"order[_]items"');
    expect(mappings).toContain('"value":"order_items_staging"');
    expect(mappings).toContain('"data-type":{"type":"datetime","precision":6}');
  });

  it('stops the task on data and apply errors, and a stopped task notifies the alert topic', () => {
    const settings = JSON.parse(
      onlyResource('AWS::DMS::ReplicationTask').Properties.ReplicationTaskSettings as string,
    ) as { ErrorBehavior: Record<string, unknown> };
    expect(settings.ErrorBehavior).toMatchObject({
      DataErrorPolicy: 'STOP_TASK',
      TableErrorPolicy: 'STOP_TASK',
      ApplyErrorUpdatePolicy: 'STOP_TASK',
      ApplyErrorDeletePolicy: 'STOP_TASK',
    });
    template.hasResourceProperties('AWS::DMS::EventSubscription', {
      SourceType: 'replication-task',
      EventCategories: Match.arrayWith(['failure']),
      Enabled: true,
    });
  });

  it('runs the migrations in the VPC before the task exists, and starts the task after it', () => {
    const migrations = logicalId('Custom::AuditTrailMigrations');
    const prepare = logicalId('Custom::AuditTrailReplicationPrepare');
    const task = logicalId('AWS::DMS::ReplicationTask');
    const properties = template.findResources('Custom::AuditTrailMigrations')[migrations]
      ?.Properties as Record<string, unknown>;
    expect(JSON.parse(properties.Config as string)).toEqual({
      auditSchema: example.auditSchema,
      tables: example.tables,
    });
    // A kit upgrade changes the resource, so `cdk deploy` runs the new migrations.
    expect(properties.KitVersion).toBe(currentKitVersion());
    expect(
      template.findResources('Custom::AuditTrailReplicationPrepare')[prepare]?.DependsOn,
    ).toContain(migrations);
    expect(template.findResources('AWS::DMS::ReplicationTask')[task]?.DependsOn).toContain(prepare);
    template.hasResource('Custom::AuditTrailReplicationStart', {
      Properties: Match.objectLike({ Phase: 'start', Kind: 'task', Arn: { Ref: task } }),
      DependsOn: Match.arrayWith([task]),
    });
    template.hasResourceProperties('AWS::Lambda::Function', {
      Description: Match.stringLikeRegexp('target migrations'),
      VpcConfig: Match.objectLike({ SubnetIds: Match.anyValue() }),
    });
  });

  it('lets only DMS, the migrations, the logins set-up and secret rotation reach the databases', () => {
    const ingress = Object.values(template.findResources('AWS::EC2::SecurityGroupIngress')).map(
      (resource) =>
        (resource as { Properties: { Description: string; FromPort: number } }).Properties,
    );
    const databaseRules = ingress
      .filter((rule) => rule.FromPort === 5432)
      .map((rule) => rule.Description);
    expect(databaseRules.sort()).toEqual([
      'audit-trail DMS replication',
      'audit-trail DMS replication',
      'audit-trail chain anchor',
      'audit-trail logins',
      'audit-trail logins',
      'audit-trail migrations',
      'audit-trail migrations reads the catalog',
      'audit-trail secret rotation',
      'audit-trail secret rotation',
    ]);
  });

  it('alarms on CDC latency and task failures through an encrypted SNS topic', () => {
    const topic = logicalId('AWS::SNS::Topic');
    template.hasResourceProperties('AWS::SNS::Topic', { KmsMasterKeyId: Match.anyValue() });
    template.hasResourceProperties('AWS::SNS::Subscription', {
      Protocol: 'email',
      Endpoint: 'audit-alerts@example.com',
    });
    for (const metric of ['CDCLatencySource', 'CDCLatencyTarget']) {
      template.hasResourceProperties('AWS::CloudWatch::Alarm', {
        Namespace: 'AWS/DMS',
        MetricName: metric,
        Threshold: 300,
        AlarmActions: [{ Ref: topic }],
        Dimensions: Match.arrayWith([
          { Name: 'ReplicationInstanceIdentifier', Value: 'audittrail-instance' },
        ]),
      });
    }
    template.hasResourceProperties('AWS::DMS::EventSubscription', {
      SnsTopicArn: { Ref: topic },
      SourceType: 'replication-task',
      SourceIds: ['audittrail-task'],
      EventCategories: ['failure', 'state change'],
    });
  });

  it('verifies TLS: both endpoints verify-full against the RDS CA bundle, force_ssl on both clusters', () => {
    const certificate = logicalId('AWS::DMS::Certificate');
    const pem = onlyResource('AWS::DMS::Certificate').Properties.CertificatePem as string;
    expect(pem).toBe(rdsCaBundle());
    for (const type of ['source', 'target']) {
      template.hasResourceProperties('AWS::DMS::Endpoint', {
        EndpointType: type,
        SslMode: 'verify-full',
        CertificateArn: { Ref: certificate },
      });
    }
    const groups = Object.values(template.findResources('AWS::RDS::DBClusterParameterGroup'));
    expect(groups).toHaveLength(2);
    for (const group of groups) {
      expect(group).toMatchObject({ Properties: { Parameters: { 'rds.force_ssl': '1' } } });
    }
    // Each cluster uses its own group.
    const used = Object.values(template.findResources('AWS::RDS::DBCluster')).map(
      (cluster) =>
        (cluster as { Properties: { DBClusterParameterGroupName: unknown } }).Properties
          .DBClusterParameterGroupName,
    );
    expect(new Set(used.map((ref) => JSON.stringify(ref))).size).toBe(2);
  });

  it('puts the task ARN in an output for `audit-trail status`', () => {
    template.hasOutput('TaskArn', { Value: { Ref: logicalId('AWS::DMS::ReplicationTask') } });
  });
});

describe('existing VPC and source, DMS Serverless, production', () => {
  const config = parseConfig({
    ...example,
    // A partitioned table (#17 item 11): DMS captures its leaf partitions, by name.
    tables: [...example.tables, { table: 'measures', partitions: ['measures_eu', 'measures_us'] }],
    deployment: {
      stackName: 'Prod-Audit',
      account: '123456789012',
      region: 'eu-west-1',
      production: true,
      network: {
        vpcId: 'vpc-0abc1234',
        availabilityZones: ['eu-west-1a', 'eu-west-1b'],
        privateSubnetIds: ['subnet-0aaa1111', 'subnet-0bbb2222'],
      },
      source: {
        mode: 'existing',
        clusterIdentifier: 'shop-prod',
        endpoint: 'shop-prod.cluster-abc.eu-west-1.rds.amazonaws.com',
        databaseName: 'shop',
        secretArn: 'arn:aws:secretsmanager:eu-west-1:123456789012:secret:shop-dms-AbCdEf',
        securityGroupId: 'sg-0123abcd',
      },
      dms: { mode: 'serverless', maxCapacityUnits: 8, createAccountRoles: true },
    },
  });
  const built = synth(config);
  const prod = built.template;

  it('imports the VPC and the source: no VPC, no source cluster, ingress added to its security group', () => {
    prod.resourceCountIs('AWS::EC2::VPC', 0);
    // Only the target's group (force_ssl): an imported source's group is its owner's.
    prod.resourceCountIs('AWS::RDS::DBClusterParameterGroup', 1);
    expect(JSON.stringify(prod.findResources('AWS::RDS::DBClusterParameterGroup'))).not.toContain(
      'rds.logical_replication',
    );
    prod.resourceCountIs('AWS::RDS::DBCluster', 1);
    prod.hasResourceProperties('AWS::EC2::SecurityGroupIngress', {
      GroupId: 'sg-0123abcd',
      FromPort: 5432,
    });
    prod.hasResourceProperties('AWS::DMS::ReplicationSubnetGroup', {
      SubnetIds: ['subnet-0aaa1111', 'subnet-0bbb2222'],
    });
    prod.hasResourceProperties('AWS::DMS::Endpoint', {
      EndpointType: 'source',
      DatabaseName: 'shop',
      PostgreSqlSettings: Match.objectLike({
        SecretsManagerSecretId:
          'arn:aws:secretsmanager:eu-west-1:123456789012:secret:shop-dms-AbCdEf',
      }),
    });
  });

  it('protects the target in production', () => {
    prod.hasResource('AWS::RDS::DBCluster', {
      Properties: Match.objectLike({ DeletionProtection: true }),
      DeletionPolicy: 'Retain',
    });
  });

  it('uses DMS Serverless, multi-AZ in production, with the same mappings as objects', () => {
    prod.resourceCountIs('AWS::DMS::ReplicationInstance', 0);
    prod.resourceCountIs('AWS::DMS::ReplicationTask', 0);
    const replication = Object.values(prod.findResources('AWS::DMS::ReplicationConfig'))[0] as {
      Properties: Record<string, unknown>;
    };
    expect(replication.Properties).toMatchObject({
      ReplicationConfigIdentifier: 'prod-audit-replication',
      ReplicationType: 'full-load-and-cdc',
      ComputeConfig: { MinCapacityUnits: 1, MaxCapacityUnits: 8, MultiAZ: true },
      TableMappings: buildTableMappings(config),
      ReplicationSettings: buildTaskSettings(config),
    });
    prod.hasResourceProperties('Custom::AuditTrailReplicationStart', { Kind: 'serverless' });
  });

  it('selects each leaf partition of a partitioned table (not the table) and stages them as the table', () => {
    const replication = Object.values(prod.findResources('AWS::DMS::ReplicationConfig'))[0] as {
      Properties: { TableMappings: TableMappings };
    };
    const rules = replication.Properties.TableMappings.rules;
    const tableNames = (predicate: (rule: (typeof rules)[number]) => boolean) =>
      rules.filter(predicate).map((rule) => rule['object-locator']['table-name']);
    const selected = tableNames((rule) => rule['rule-type'] === 'selection');
    expect(selected).toEqual(expect.arrayContaining(['measures[_]eu', 'measures[_]us']));
    expect(selected).not.toContain('measures');
    expect(
      tableNames(
        (rule) =>
          rule['rule-type'] === 'transformation' &&
          rule['rule-target'] === 'table' &&
          rule.value === 'measures_staging',
      ),
    ).toEqual(['measures[_]eu', 'measures[_]us']);
  });

  it('creates the account-level DMS roles in their own stack, deployed first', () => {
    const roles = Template.fromStack(built.rolesStack as Stack);
    roles.hasResourceProperties('AWS::IAM::Role', {
      RoleName: 'dms-vpc-role',
      ManagedPolicyArns: [
        Match.objectLike({
          'Fn::Join': Match.arrayWith([
            Match.arrayWith([Match.stringLikeRegexp('AmazonDMSVPCManagementRole')]),
          ]),
        }),
      ],
    });
    roles.hasResourceProperties('AWS::IAM::Role', { RoleName: 'dms-cloudwatch-logs-role' });
    expect(built.stack.dependencies).toContain(built.rolesStack);
  });
});

describe('cdk-nag', () => {
  it('fails synthesis on an unacknowledged AwsSolutions finding', () => {
    const { app, stack } = buildApp(parseConfig({ tables: [{ table: 'orders' }] }), FAST);
    new sns.Topic(stack, 'UnencryptedTopic');
    expect(() => app.synth()).toThrow(/AwsSolutions-SNS3/);
  });
});

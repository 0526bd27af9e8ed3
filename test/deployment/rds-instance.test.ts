import { readFileSync } from 'node:fs';
import path from 'node:path';
import { Match, Template } from 'aws-cdk-lib/assertions';
import { buildApp } from '../../infra/build-app';
import { parseConfig } from '../../src/config';

/** Skips NodejsFunction bundling; `npx cdk synth` bundles for real. */
const FAST = { context: { 'aws:cdk:bundling-stacks': [] } };

const example = JSON.parse(
  readFileSync(path.join(__dirname, '../../examples/rds-instance.config.json'), 'utf8'),
) as Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any -- test fixture

/** Synthesizes; Template.fromStack runs cdk-nag and throws on any unacknowledged finding. */
function synth(deployment: Record<string, unknown>, extra: Record<string, unknown> = {}) {
  const config = parseConfig({ ...example, ...extra, deployment });
  const built = buildApp(config, FAST);
  return Template.fromStack(built.stack);
}

const existingInstance = {
  mode: 'existing',
  engine: 'postgres',
  instanceIdentifier: 'shop-db',
  endpoint: 'shop-db.abc.eu-west-1.rds.amazonaws.com',
  databaseName: 'shop',
  secretArn: 'arn:aws:secretsmanager:eu-west-1:123456789012:secret:shop-AbCdEf',
  securityGroupId: 'sg-0aaa1111',
  parameterGroupName: 'shop-pg16',
};
const existingCluster = {
  mode: 'existing',
  clusterIdentifier: 'audit-store',
  endpoint: 'audit-store.cluster-abc.eu-west-1.rds.amazonaws.com',
  databaseName: 'audit',
  secretArn: 'arn:aws:secretsmanager:eu-west-1:123456789012:secret:audit-AbCdEf',
  securityGroupId: 'sg-0bbb2222',
};

function endpoint(template: Template, type: 'source' | 'target') {
  const found = Object.values(template.findResources('AWS::DMS::Endpoint')).filter(
    (resource) =>
      (resource as { Properties: { EndpointType: string } }).Properties.EndpointType === type,
  );
  expect(found).toHaveLength(1);
  return (found[0] as { Properties: Record<string, unknown> }).Properties;
}

/** The source log group's subscription (a kit-created target's log is watched too). */
function subscribedLogGroup(template: Template): string {
  const filters = Object.entries(template.findResources('AWS::Logs::SubscriptionFilter'))
    .filter(([id]) => !id.includes('TargetSubscription'))
    .map(([, filter]) => filter);
  expect(filters).toHaveLength(1);
  return JSON.stringify((filters[0] as { Properties: { LogGroupName: unknown } }).Properties);
}

describe('new RDS for PostgreSQL instances as source and target (examples/rds-instance)', () => {
  const template = synth(example.deployment);

  it('creates DB instances, not clusters: encrypted gp3, private, IAM auth, log export', () => {
    template.resourceCountIs('AWS::RDS::DBCluster', 0);
    template.resourceCountIs('AWS::RDS::DBClusterParameterGroup', 0);
    template.resourceCountIs('AWS::RDS::DBInstance', 2);
    template.allResourcesProperties('AWS::RDS::DBInstance', {
      Engine: 'postgres',
      EngineVersion: '16.6',
      StorageEncrypted: true,
      StorageType: 'gp3',
      PubliclyAccessible: false,
      EnableIAMDatabaseAuthentication: true,
      EnableCloudwatchLogsExports: ['postgresql'],
      MultiAZ: false,
      DeletionProtection: false,
    });
    template.hasResource('AWS::RDS::DBInstance', {
      Properties: Match.objectLike({ DBInstanceClass: 'db.t4g.small', DBName: 'app' }),
      DeletionPolicy: 'Snapshot',
    });
    template.hasResourceProperties('AWS::RDS::DBInstance', {
      DBInstanceClass: 'db.t4g.micro',
      DBName: 'audit',
      AllocatedStorage: '20',
      MaxAllocatedStorage: 80,
    });
  });

  it('gives the source a DB parameter group with logical replication and pgAudit', () => {
    const groups = template.findResources('AWS::RDS::DBParameterGroup');
    const [id, group] = Object.entries(groups).find(([, resource]) =>
      JSON.stringify(resource).includes('rds.logical_replication'),
    ) as [string, { Properties: { Family: string; Parameters: Record<string, string> } }];
    expect(group.Properties.Family).toBe('postgres16');
    expect(group.Properties.Parameters).toMatchObject({
      'rds.logical_replication': '1',
      wal_sender_timeout: '60000',
      max_slot_wal_keep_size: '20480',
      'pgaudit.role': 'rds_pgaudit',
    });
    expect(group.Properties.Parameters.shared_preload_libraries?.split(',')).toEqual([
      'pg_stat_statements',
      'pgaudit',
    ]);
    template.hasResourceProperties('AWS::RDS::DBInstance', {
      DBName: 'app',
      DBParameterGroupName: { Ref: id },
    });
  });

  it('points both DMS endpoints at engine postgres, TLS verified', () => {
    expect(endpoint(template, 'source')).toMatchObject({
      EngineName: 'postgres',
      SslMode: 'verify-full',
    });
    expect(endpoint(template, 'target')).toMatchObject({
      EngineName: 'postgres',
      SslMode: 'verify-full',
    });
  });

  it('forces TLS on both instances through their DB parameter groups', () => {
    const groups = template.findResources('AWS::RDS::DBParameterGroup');
    expect(Object.keys(groups)).toHaveLength(2);
    for (const [id, group] of Object.entries(groups)) {
      expect(group).toMatchObject({ Properties: { Parameters: { 'rds.force_ssl': '1' } } });
      template.hasResourceProperties('AWS::RDS::DBInstance', { DBParameterGroupName: { Ref: id } });
    }
  });

  it('subscribes the access-audit monitor to /aws/rds/instance/<id>/postgresql, after the instance', () => {
    const instance = Object.keys(template.findResources('AWS::RDS::DBInstance')).find((id) =>
      id.startsWith('Source'),
    ) as string;
    const logGroup = subscribedLogGroup(template);
    expect(logGroup).toContain('/aws/rds/instance/');
    expect(logGroup).toContain(`{"Ref":"${instance}"}`);
    const filters = Object.values(template.findResources('AWS::Logs::SubscriptionFilter')) as {
      DependsOn?: string[];
      Properties: Record<string, unknown>;
    }[];
    for (const filter of filters) expect(filter.DependsOn).toContain(instance);
    // The new target instance runs pgAudit too, and its log is watched as well.
    const target = Object.keys(template.findResources('AWS::RDS::DBInstance')).find((id) =>
      id.startsWith('Target'),
    ) as string;
    expect(filters).toHaveLength(2);
    expect(filters.some((f) => JSON.stringify(f.Properties).includes(`{"Ref":"${target}"}`))).toBe(
      true,
    );
  });

  it('runs the migrations after both instances exist', () => {
    const instances = Object.keys(template.findResources('AWS::RDS::DBInstance'));
    const migrations = Object.values(template.findResources('Custom::AuditTrailMigrations'))[0] as {
      DependsOn: string[];
    };
    expect(migrations.DependsOn).toEqual(expect.arrayContaining(instances));
  });
});

describe('imported RDS instance source, imported Aurora target', () => {
  const template = synth(
    { ...example.deployment, source: existingInstance, target: existingCluster },
    { accessAudit: {} },
  );

  it('creates no database, adds ingress to both imported security groups', () => {
    template.resourceCountIs('AWS::RDS::DBInstance', 0);
    template.resourceCountIs('AWS::RDS::DBCluster', 0);
    for (const group of ['sg-0aaa1111', 'sg-0bbb2222']) {
      template.hasResourceProperties('AWS::EC2::SecurityGroupIngress', {
        GroupId: group,
        FromPort: 5432,
      });
    }
  });

  it('uses engine postgres for the instance and aurora-postgresql for the cluster', () => {
    expect(endpoint(template, 'source')).toMatchObject({
      EngineName: 'postgres',
      DatabaseName: 'shop',
    });
    expect(endpoint(template, 'target')).toMatchObject({
      EngineName: 'aurora-postgresql',
      DatabaseName: 'audit',
      // DMS's own login, created with the imported target's secret (never that secret itself).
      PostgreSqlSettings: {
        SecretsManagerSecretId: { Ref: expect.stringMatching(/^LoginsDmsSecret/) },
      },
    });
  });

  it('watches the imported instance’s log group and names its parameter group in an output', () => {
    expect(subscribedLogGroup(template)).toContain('"/aws/rds/instance/shop-db/postgresql"');
    template.hasOutput('SourceParameterGroup', { Value: 'shop-pg16' });
    template.hasOutput('SourceLogGroup', { Value: '/aws/rds/instance/shop-db/postgresql' });
  });
});

describe('new Aurora source, imported RDS instance target', () => {
  const template = synth({
    ...example.deployment,
    source: { mode: 'new' },
    target: { ...existingInstance, instanceIdentifier: 'audit-db', databaseName: 'audit' },
  });

  it('creates the Aurora source only and points the endpoints at the right engines', () => {
    template.resourceCountIs('AWS::RDS::DBCluster', 1);
    template.resourceCountIs('AWS::RDS::DBInstance', 1);
    template.hasResourceProperties('AWS::RDS::DBClusterParameterGroup', {
      Parameters: Match.objectLike({ 'rds.logical_replication': '1' }),
    });
    expect(endpoint(template, 'source').EngineName).toBe('aurora-postgresql');
    expect(endpoint(template, 'target').EngineName).toBe('postgres');
  });
});

describe('imported Aurora source, new RDS instance target, production', () => {
  const template = synth({
    ...example.deployment,
    production: true,
    source: { ...existingCluster, clusterIdentifier: 'shop', databaseName: 'shop' },
    target: { engine: 'postgres' },
  });

  it('protects the instance: deletion protection, retained, Multi-AZ by default', () => {
    template.resourceCountIs('AWS::RDS::DBInstance', 1);
    template.hasResource('AWS::RDS::DBInstance', {
      Properties: Match.objectLike({
        DeletionProtection: true,
        MultiAZ: true,
        DBInstanceClass: 'db.t4g.small',
      }),
      DeletionPolicy: 'Retain',
    });
    expect(endpoint(template, 'source').EngineName).toBe('aurora-postgresql');
    expect(endpoint(template, 'target').EngineName).toBe('postgres');
  });
});

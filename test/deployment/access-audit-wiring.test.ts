import { readFileSync } from 'node:fs';
import path from 'node:path';
import { Match, Template } from 'aws-cdk-lib/assertions';
import { buildApp } from '../../infra/build-app';
import { parseConfig } from '../../src/config';

/** Skips NodejsFunction bundling; the bundle itself is tested by `npx cdk synth` elsewhere. */
const FAST = { context: { 'aws:cdk:bundling-stacks': [] } };

const example = JSON.parse(
  readFileSync(path.join(__dirname, '../../examples/aws.config.json'), 'utf8'),
) as Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any -- test fixture

function synth(extra: Record<string, unknown>) {
  const config = parseConfig({ ...example, ...extra });
  const built = buildApp(config, FAST);
  return { ...built, template: Template.fromStack(built.stack) };
}

describe('access audit in the deployed app', () => {
  const withAudit = synth({
    deployment: {
      ...example.deployment,
      source: {
        ...example.deployment.source,
        clusterParameters: { shared_preload_libraries: 'pg_stat_statements,pg_hint_plan' },
      },
    },
    accessAudit: { auditedRoles: ['alice', 'bob'], serviceAccounts: ['app_svc'] },
  });

  it('preloads pgaudit next to the libraries the user asked for, with logical replication kept', () => {
    const groups = Object.values(
      withAudit.template.findResources('AWS::RDS::DBClusterParameterGroup'),
    ).filter((group) => JSON.stringify(group).includes('rds.logical_replication'));
    expect(groups).toHaveLength(1);
    const parameters = (groups[0] as { Properties: { Parameters: Record<string, string> } })
      .Properties.Parameters;
    expect(parameters.shared_preload_libraries?.split(',').sort()).toEqual([
      'pg_hint_plan',
      'pg_stat_statements',
      'pgaudit',
    ]);
    expect(parameters['pgaudit.role']).toBe('rds_pgaudit');
    expect(parameters['rds.logical_replication']).toBe('1');
  });

  it('subscribes the alert Lambda to the source cluster PostgreSQL log, after the cluster exists', () => {
    // The kit-created target's log has its own subscription (pgAudit on the target).
    const filters = Object.fromEntries(
      Object.entries(withAudit.template.findResources('AWS::Logs::SubscriptionFilter')).filter(
        ([id]) => !id.includes('TargetSubscription'),
      ),
    );
    expect(Object.keys(filters)).toHaveLength(1);
    const [filter] = Object.values(filters) as {
      Properties: Record<string, unknown>;
      DependsOn?: string[];
    }[];
    const clusterId = Object.keys(withAudit.template.findResources('AWS::RDS::DBCluster')).find(
      (id) => id.startsWith('Source'),
    );
    expect(JSON.stringify(filter?.Properties.LogGroupName)).toContain('/aws/rds/cluster/');
    expect(JSON.stringify(filter?.Properties.LogGroupName)).toContain(clusterId);
    expect(filter?.DependsOn).toEqual(expect.arrayContaining([clusterId]));
    withAudit.template.hasResourceProperties('AWS::CloudWatch::Dashboard', Match.anyValue());
  });

  it("keeps an existing source cluster's PostgreSQL log for logRetentionDays (the kit sets a new one's itself)", () => {
    const { template } = synth({
      deployment: {
        stackName: 'Existing',
        network: {
          vpcId: 'vpc-0abc1234',
          availabilityZones: ['eu-west-1a', 'eu-west-1b'],
          privateSubnetIds: ['subnet-0aaa1111', 'subnet-0bbb2222'],
        },
        source: {
          mode: 'existing',
          clusterIdentifier: 'shop',
          endpoint: 'shop.cluster-abc.eu-west-1.rds.amazonaws.com',
          databaseName: 'shop',
          secretArn: 'arn:aws:secretsmanager:eu-west-1:123456789012:secret:shop-dms-AbCdEf',
          securityGroupId: 'sg-0123abcd',
        },
      },
      accessAudit: { logRetentionDays: 400 },
    });
    template.hasResourceProperties('Custom::LogRetention', {
      LogGroupName: '/aws/rds/cluster/shop/postgresql',
      RetentionInDays: 400,
    });
  });

  it('adds nothing for the access audit without an accessAudit section', () => {
    const { template, accessAudit } = synth({});
    expect(accessAudit).toBeUndefined();
    template.resourceCountIs('AWS::Logs::SubscriptionFilter', 0);
    // The source's group (the target's runs pgAudit whatever the access audit does).
    const groups = Object.values(
      template.findResources('AWS::RDS::DBClusterParameterGroup'),
    ).filter((group) => JSON.stringify(group).includes('rds.logical_replication'));
    const parameters = (groups[0] as { Properties: { Parameters: Record<string, string> } })
      .Properties.Parameters;
    expect(parameters.shared_preload_libraries ?? '').not.toContain('pgaudit');
  });
});

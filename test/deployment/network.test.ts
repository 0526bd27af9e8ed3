import { readFileSync } from 'node:fs';
import path from 'node:path';
import { Validations } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import { buildApp } from '../../infra/build-app';
import { EGRESS_ANYWHERE } from '../../infra/nag';
import { ConfigError, parseConfig } from '../../src/config';

/** Skips NodejsFunction bundling; `npx cdk synth` bundles for real. */
const FAST = { context: { 'aws:cdk:bundling-stacks': [] } };

const example = JSON.parse(
  readFileSync(path.join(__dirname, '../../examples/aws.config.json'), 'utf8'),
) as unknown;
const { stack } = buildApp(parseConfig(example), FAST);
const template = Template.fromStack(stack);

type Resource = { Type: string; Properties: Record<string, unknown> };
type Resources = [string, Resource][];
const resourcesOf = (t: Template): Resources =>
  Object.entries(t.toJSON().Resources as Record<string, Resource>);
const all = resourcesOf(template);

function groupId(description: string, resources: Resources = all): string {
  const found = resources.filter(
    ([, r]) =>
      r.Type === 'AWS::EC2::SecurityGroup' && r.Properties.GroupDescription === description,
  );
  expect(found, description).toHaveLength(1);
  return found[0]![0];
}

/** Every egress rule of a group, inline or separate, as "port -> destination". */
function egress(id: string, resources: Resources = all): string[] {
  const group = resources.find(([key]) => key === id)![1];
  const inline = (group.Properties.SecurityGroupEgress ?? []) as Record<string, unknown>[];
  const separate = resources
    .filter(
      ([, r]) =>
        r.Type === 'AWS::EC2::SecurityGroupEgress' &&
        JSON.stringify(r.Properties.GroupId) === JSON.stringify({ 'Fn::GetAtt': [id, 'GroupId'] }),
    )
    .map(([, r]) => r.Properties);
  return [...inline, ...separate].map((rule) => {
    const group = rule.DestinationSecurityGroupId as
      { 'Fn::GetAtt': [string] } | string | undefined;
    const to =
      (typeof group === 'string' ? group : group?.['Fn::GetAtt'][0]) ??
      rule.DestinationPrefixListId ??
      rule.CidrIp;
    return `${String(rule.FromPort)} -> ${String(to)}`;
  });
}

describe('narrow network', () => {
  const source = groupId('audit-trail source: logical replication for DMS');
  const target = groupId('audit-trail target: staging tables and the audit log');
  const endpoint = all.find(
    ([, r]) =>
      r.Type === 'AWS::EC2::SecurityGroup' &&
      String(r.Properties.GroupDescription).includes('SecretsManager'),
  )![0];

  it.each([
    ['audit-trail migrations Lambda'],
    ['audit-trail DMS replication'],
    ['audit-trail logins Lambda'],
    ['audit-trail secret rotation functions'],
  ])('%s may reach only the two database ports and the Secrets Manager endpoint', (name) => {
    const rules = egress(groupId(name)).filter((rule) => rule !== '252 -> 255.255.255.255/32');
    expect(rules.sort()).toEqual(
      [`5432 -> ${source}`, `5432 -> ${target}`, `443 -> ${endpoint}`].sort(),
    );
  });

  it('the Secrets Manager endpoint serves only the kit’s database secrets, and lets only those rotate', () => {
    const endpoints = all.filter(
      ([, r]) =>
        r.Type === 'AWS::EC2::VPCEndpoint' &&
        JSON.stringify(r.Properties.ServiceName).includes('secretsmanager'),
    );
    expect(endpoints).toHaveLength(1);
    const policy = endpoints[0]![1].Properties.PolicyDocument as {
      Statement: { Effect: string; Action: string[]; Resource: unknown; Principal: unknown }[];
    };
    // The two master secrets (attachments) and the five login secrets (DMS target and
    // source, migrator, chain anchor, auditor: its rotation runs in the VPC).
    const secrets = all
      .filter(
        ([, r]) =>
          r.Type === 'AWS::SecretsManager::SecretTargetAttachment' ||
          (r.Type === 'AWS::SecretsManager::Secret' &&
            String(r.Properties.Description).startsWith('audit-trail login')),
      )
      .map(([id]) => ({ Ref: id }));
    expect(secrets).toHaveLength(7);
    expect(policy.Statement).toHaveLength(3);
    const [read, rotate, random] = policy.Statement;
    expect(read).toMatchObject({
      Effect: 'Allow',
      Principal: { AWS: '*' },
      Action: ['secretsmanager:GetSecretValue', 'secretsmanager:DescribeSecret'],
    });
    expect(read!.Resource).toHaveLength(7);
    expect(read!.Resource).toEqual(expect.arrayContaining(secrets));
    expect(rotate).toMatchObject({
      Effect: 'Allow',
      Principal: { AWS: '*' },
      Action: ['secretsmanager:PutSecretValue', 'secretsmanager:UpdateSecretVersionStage'],
    });
    expect(rotate!.Resource).toHaveLength(7);
    expect(rotate!.Resource).toEqual(expect.arrayContaining(secrets));
    // A random password names no secret.
    expect(random).toEqual({
      Effect: 'Allow',
      Principal: { AWS: '*' },
      Action: 'secretsmanager:GetRandomPassword',
      Resource: '*',
    });
  });
});

/** The kit's functions (and DMS) that read secrets, by security group description. */
const SECRET_READERS = [
  'audit-trail migrations Lambda',
  'audit-trail DMS replication',
  'audit-trail logins Lambda',
  'audit-trail secret rotation functions',
  'audit-trail chain anchor Lambda',
];

/** The example config in an existing VPC (and with an existing source, as there it is usual). */
function existingVpc(secretsManager?: Record<string, unknown>) {
  const config = parseConfig({
    ...(example as Record<string, unknown>),
    deployment: {
      ...(example as { deployment: Record<string, unknown> }).deployment,
      account: '123456789012',
      region: 'eu-west-1',
      network: {
        vpcId: 'vpc-0abc1234',
        availabilityZones: ['eu-west-1a', 'eu-west-1b'],
        privateSubnetIds: ['subnet-0aaa1111', 'subnet-0bbb2222'],
        ...(secretsManager && { secretsManager }),
      },
    },
  });
  const built = buildApp(config, FAST);
  const t = Template.fromStack(built.stack);
  return { ...built, template: t, resources: resourcesOf(t) };
}

/** Every egress rule of the template to 0.0.0.0/0 or ::/0, with its group. */
function openEgress(resources: Resources): string[] {
  return resources.flatMap(([id, r]) => {
    const rules =
      r.Type === 'AWS::EC2::SecurityGroup'
        ? ((r.Properties.SecurityGroupEgress ?? []) as Record<string, unknown>[])
        : r.Type === 'AWS::EC2::SecurityGroupEgress'
          ? [r.Properties]
          : [];
    return rules
      .filter((rule) => rule.CidrIp === '0.0.0.0/0' || rule.CidrIpv6 === '::/0')
      .map((rule) => `${id}:${String(rule.FromPort)}`);
  });
}

describe('existing VPC: how functions reach Secrets Manager', () => {
  it('by default creates the kit’s own closed endpoint there: no HTTPS to anywhere', () => {
    const { template: t, resources } = existingVpc();
    expect(openEgress(resources)).toEqual([]);
    const endpoints = resources.filter(([, r]) => r.Type === 'AWS::EC2::VPCEndpoint');
    expect(endpoints).toHaveLength(1);
    expect(endpoints[0]![1].Properties).toMatchObject({
      VpcId: 'vpc-0abc1234',
      VpcEndpointType: 'Interface',
      PrivateDnsEnabled: true,
      SubnetIds: ['subnet-0aaa1111', 'subnet-0bbb2222'],
    });
    // The same policy as in a new VPC: the kit's secrets only.
    const policy = endpoints[0]![1].Properties.PolicyDocument as { Statement: unknown[] };
    expect(policy.Statement).toHaveLength(3);
    // No S3 gateway endpoint: the routes of an imported VPC are not the kit's to change.
    t.resourcePropertiesCountIs('AWS::EC2::VPCEndpoint', { VpcEndpointType: 'Gateway' }, 0);
    const endpoint = groupId('audit-trail SecretsManager endpoint', resources);
    expect(egress(endpoint, resources)).toEqual(['252 -> 255.255.255.255/32']);
    for (const name of SECRET_READERS) {
      expect(egress(groupId(name, resources), resources), name).toContain(`443 -> ${endpoint}`);
    }
  });

  it('endpoint-security-group: HTTPS to that group only, and ingress to it from each function', () => {
    const { template: t, resources } = existingVpc({
      access: 'endpoint-security-group',
      securityGroupId: 'sg-0e0e0e0e',
    });
    expect(openEgress(resources)).toEqual([]);
    t.resourceCountIs('AWS::EC2::VPCEndpoint', 0);
    for (const name of SECRET_READERS) {
      const id = groupId(name, resources);
      expect(egress(id, resources), name).toContain('443 -> sg-0e0e0e0e');
      t.hasResourceProperties('AWS::EC2::SecurityGroupIngress', {
        GroupId: 'sg-0e0e0e0e',
        FromPort: 443,
        ToPort: 443,
        SourceSecurityGroupId: { 'Fn::GetAtt': [id, 'GroupId'] },
      });
    }
  });

  it('prefix-list: HTTPS to that prefix list only', () => {
    const { template: t, resources } = existingVpc({
      access: 'prefix-list',
      prefixListId: 'pl-0f0f0f0f',
    });
    expect(openEgress(resources)).toEqual([]);
    t.resourceCountIs('AWS::EC2::VPCEndpoint', 0);
    for (const name of SECRET_READERS) {
      expect(egress(groupId(name, resources), resources), name).toContain('443 -> pl-0f0f0f0f');
    }
  });

  it('any-https: HTTPS to anywhere, each one acknowledged in cdk-nag with the config field as reason', () => {
    const { stack: s, resources } = existingVpc({ access: 'any-https' });
    const open = openEgress(resources);
    expect(open).toHaveLength(SECRET_READERS.length);
    for (const name of SECRET_READERS) {
      expect(open, name).toContain(`${groupId(name, resources)}:443`);
    }
    const acknowledged = s.node
      .findAll()
      .flatMap((c) => c.node.metadata)
      .filter((m) => m.type === Validations.ACKNOWLEDGED_RULES_METADATA_KEY)
      .flatMap((m) => Object.entries(m.data as Record<string, string>))
      .filter(([id]) => id.endsWith(EGRESS_ANYWHERE));
    expect(acknowledged).toHaveLength(SECRET_READERS.length);
    for (const [, reason] of acknowledged) {
      expect(reason).toContain('deployment.network.secretsManager.access is "any-https"');
    }
  });

  it('cdk-nag refuses open egress nobody acknowledged', () => {
    const { app, stack: s } = buildApp(parseConfig({ tables: [{ table: 'orders' }] }), FAST);
    new ec2.SecurityGroup(s, 'Open', { vpc: new ec2.Vpc(s, 'Other'), description: 'open' });
    expect(() => app.synth()).toThrow(new RegExp(EGRESS_ANYWHERE));
  });

  it('refuses secretsManager without vpcId, naming the field', () => {
    expect(() =>
      parseConfig({
        tables: [{ table: 'orders' }],
        deployment: { network: { secretsManager: { access: 'any-https' } } },
      }),
    ).toThrow(/deployment\.network\.secretsManager.*only with vpcId/s);
    expect(() =>
      parseConfig({
        tables: [{ table: 'orders' }],
        deployment: { network: { vpcId: 'vpc-0abc', secretsManager: { access: 'prefix-list' } } },
      }),
    ).toThrow(ConfigError);
  });
});

import { readFileSync } from 'node:fs';
import path from 'node:path';
import { Template } from 'aws-cdk-lib/assertions';
import { buildApp } from '../../infra/build-app';
import { parseConfig } from '../../src/config';

/** Skips NodejsFunction bundling; `npx cdk synth` bundles for real. */
const FAST = { context: { 'aws:cdk:bundling-stacks': [] } };

const example = JSON.parse(
  readFileSync(path.join(__dirname, '../../examples/aws.config.json'), 'utf8'),
) as unknown;
const { stack } = buildApp(parseConfig(example), FAST);
const template = Template.fromStack(stack);

type Resource = { Type: string; Properties: Record<string, unknown> };
const all = Object.entries(template.toJSON().Resources as Record<string, Resource>);

function groupId(description: string): string {
  const found = all.filter(
    ([, r]) =>
      r.Type === 'AWS::EC2::SecurityGroup' && r.Properties.GroupDescription === description,
  );
  expect(found, description).toHaveLength(1);
  return found[0]![0];
}

/** Every egress rule of a group, inline or separate, as "port -> destination". */
function egress(id: string): string[] {
  const group = all.find(([key]) => key === id)![1];
  const inline = (group.Properties.SecurityGroupEgress ?? []) as Record<string, unknown>[];
  const separate = all
    .filter(
      ([, r]) =>
        r.Type === 'AWS::EC2::SecurityGroupEgress' &&
        JSON.stringify(r.Properties.GroupId) === JSON.stringify({ 'Fn::GetAtt': [id, 'GroupId'] }),
    )
    .map(([, r]) => r.Properties);
  return [...inline, ...separate].map((rule) => {
    const to =
      (rule.DestinationSecurityGroupId as { 'Fn::GetAtt': [string] } | undefined)?.[
        'Fn::GetAtt'
      ][0] ?? rule.CidrIp;
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

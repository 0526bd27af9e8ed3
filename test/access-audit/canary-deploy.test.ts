import { readFileSync } from 'node:fs';
import path from 'node:path';
import { Annotations, Match, Template } from 'aws-cdk-lib/assertions';
import { buildApp } from '../../infra/build-app';
import { parseConfig } from '../../src/config';

/** Skips NodejsFunction bundling (the bundle is tested by `npx cdk synth` elsewhere). */
const FAST = { context: { 'aws:cdk:bundling-stacks': [] } };

const example = JSON.parse(
  readFileSync(path.join(__dirname, '../../examples/aws.config.json'), 'utf8'),
) as { tables: unknown[]; deployment: Record<string, unknown> };

/** Template.fromStack runs cdk-nag (Validations): any unacknowledged finding throws. */
function synth(config: Record<string, unknown>) {
  const built = buildApp(parseConfig(config), FAST);
  return { ...built, template: Template.fromStack(built.stack) };
}

type Resources = Record<string, { Type: string; Properties: Record<string, unknown> }>;

function resources(template: Template, type: string): Resources {
  return template.findResources(type) as Resources;
}

/** The logical id of the one resource of `type` whose id contains `fragment`. */
function logicalId(template: Template, type: string, fragment: string): string {
  const ids = Object.keys(template.findResources(type)).filter((id) => id.includes(fragment));
  expect(ids).toHaveLength(1);
  return ids[0]!;
}

/** Roles (by policy) allowed to read `secretId`. */
function readersOf(template: Template, secretId: string): string[] {
  return Object.values(resources(template, 'AWS::IAM::Policy'))
    .filter((policy) =>
      (
        policy.Properties.PolicyDocument as {
          Statement: { Action: unknown; Resource: unknown }[];
        }
      ).Statement.some(
        (statement) =>
          JSON.stringify(statement.Action).includes('secretsmanager:GetSecretValue') &&
          JSON.stringify(statement.Resource).includes(`"${secretId}"`),
      ),
    )
    .flatMap((policy) => (policy.Properties.Roles as { Ref: string }[]).map((role) => role.Ref));
}

function noCanaryWarnings(stack: Parameters<typeof Annotations.fromStack>[0]) {
  return Annotations.fromStack(stack).findWarning('*', Match.stringLikeRegexp('without a canary'));
}

describe.each([
  ['with change history', { tables: example.tables }],
  ['access audit only (no tables)', {}],
])('the canary on a kit-created source, %s', (_name, tables) => {
  const built = synth({
    ...tables,
    deployment: example.deployment,
    accessAudit: { auditedRoles: ['alice'], serviceAccounts: ['app_svc'] },
  });
  const { template } = built;
  const canarySecret = () => logicalId(template, 'AWS::SecretsManager::Secret', 'CanarySecret');
  const canaryFunction = () =>
    Object.entries(resources(template, 'AWS::Lambda::Function')).find(([, fn]) =>
      JSON.stringify(fn.Properties.Environment ?? {}).includes('CANARY_SECRET_ARN'),
    )!;

  it('is deployed: no synthesis warning, the monitor has its canary', () => {
    expect(built.accessAudit?.canary).toBeDefined();
    expect(noCanaryWarnings(built.stack)).toEqual([]);
  });

  it('gets its login and rotated secret from the logins custom resource', () => {
    const secret = canarySecret();
    // The shape the canary Lambda and the single-user rotation read (host is the cluster's).
    const generated = JSON.stringify(
      resources(template, 'AWS::SecretsManager::Secret')[secret]!.Properties.GenerateSecretString,
    );
    for (const field of [
      '"engine\\":\\"postgres',
      '"dbname\\":\\"app',
      '"username\\":\\"audit_trail_canary',
    ])
      expect(generated).toContain(field);
    expect(generated).toContain('"GenerateStringKey":"password"');
    const logins = Object.values(resources(template, 'Custom::AuditTrailLogins'));
    expect(logins).toHaveLength(1);
    const properties = logins[0]!.Properties as Record<string, unknown>;
    expect(properties.CanarySecretArn).toEqual({ Ref: secret });
    expect(JSON.stringify(properties.SourceAdmin)).toContain('SourceCluster');
    expect(JSON.parse(properties.Config as string).accessAudit).toEqual({
      canary: { role: 'audit_trail_canary' },
    });
    template.hasResourceProperties('AWS::SecretsManager::RotationSchedule', {
      SecretId: { Ref: secret },
    });
  });

  it('reads only its own secret; only it, the logins function and rotation read that secret', () => {
    const secret = canarySecret();
    const [, fn] = canaryFunction();
    const variables = (fn.Properties.Environment as { Variables: Record<string, unknown> })
      .Variables;
    expect(variables.CANARY_SECRET_ARN).toEqual({ Ref: secret });
    expect(variables.CANARY_DATABASE).toBe('app');
    expect(variables.CANARY_ROLE).toBe('audit_trail_canary');
    const canaryRole = (fn.Properties.Role as { 'Fn::GetAtt': [string, string] })['Fn::GetAtt'][0];
    const readers = readersOf(template, secret);
    expect(readers).toContain(canaryRole);
    expect(readers.filter((role) => role !== canaryRole).every((role) => /Logins/.test(role))).toBe(
      true,
    );
    // The canary's policy names no other secret.
    const canaryPolicies = Object.values(resources(template, 'AWS::IAM::Policy')).filter((policy) =>
      JSON.stringify(policy.Properties.Roles).includes(canaryRole),
    );
    const secretsNamed = JSON.stringify(canaryPolicies).match(
      /"Ref":"[A-Za-z0-9]*Secret[A-Za-z0-9]*"/g,
    );
    expect(new Set(secretsNamed)).toEqual(new Set([`"Ref":"${secret}"`]));
    // The Secrets Manager endpoint serves it (its policy lists the secrets it may read).
    const endpoint = Object.values(resources(template, 'AWS::EC2::VPCEndpoint')).find((e) =>
      JSON.stringify(e.Properties.ServiceName).includes('secretsmanager'),
    );
    expect(JSON.stringify(endpoint?.Properties.PolicyDocument)).toContain(`"Ref":"${secret}"`);
  });

  it('reaches the source port and the Secrets Manager endpoint, nothing else', () => {
    const canarySg = logicalId(template, 'AWS::EC2::SecurityGroup', 'CanarySecurityGroup');
    const sourceSg = Object.keys(template.findResources('AWS::EC2::SecurityGroup')).find(
      (id) => id.startsWith('Source') && id.includes('SecurityGroup'),
    )!;
    template.hasResourceProperties('AWS::EC2::SecurityGroupIngress', {
      GroupId: { 'Fn::GetAtt': [sourceSg, 'GroupId'] },
      SourceSecurityGroupId: { 'Fn::GetAtt': [canarySg, 'GroupId'] },
      FromPort: 5432,
    });
    template.hasResourceProperties('AWS::EC2::SecurityGroupIngress', {
      SourceSecurityGroupId: { 'Fn::GetAtt': [canarySg, 'GroupId'] },
      FromPort: 443,
      GroupId: { 'Fn::GetAtt': [Match.stringLikeRegexp('SecretsManager'), 'GroupId'] },
    });
    // Egress: only rules naming the source's port or 443 (no "all traffic").
    const group = resources(template, 'AWS::EC2::SecurityGroup')[canarySg]!;
    expect(JSON.stringify(group.Properties.SecurityGroupEgress ?? [])).not.toContain('"-1"');
    const egress = Object.values(resources(template, 'AWS::EC2::SecurityGroupEgress')).filter(
      (rule) => JSON.stringify(rule.Properties.GroupId).includes(canarySg),
    );
    expect(egress.length).toBeGreaterThan(0);
    // To the source's group on its port, to the endpoint's group on 443: nowhere else.
    expect(
      egress.map((rule) => [
        rule.Properties.IpProtocol,
        rule.Properties.FromPort,
        JSON.stringify(rule.Properties.DestinationSecurityGroupId),
      ]),
    ).toEqual(
      expect.arrayContaining([
        ['tcp', 5432, expect.stringContaining(sourceSg)],
        ['tcp', 443, expect.stringContaining('SecretsManager')],
      ]),
    );
    expect(egress).toHaveLength(2);
  });

  it('runs on the schedule after its login exists, and alarms when no canary is seen', () => {
    const [fnId] = canaryFunction();
    const rules = Object.entries(
      template.findResources('AWS::Events::Rule', {
        Properties: { ScheduleExpression: 'rate(5 minutes)' },
      }),
    ).filter(([, rule]) => JSON.stringify(rule).includes(fnId));
    expect(rules).toHaveLength(1);
    const loginsId = logicalId(template, 'Custom::AuditTrailLogins', 'Logins');
    expect((rules[0]![1] as { DependsOn?: string[] }).DependsOn).toEqual(
      expect.arrayContaining([loginsId]),
    );
    template.hasResourceProperties('AWS::CloudWatch::Alarm', {
      MetricName: 'CanarySeen',
      TreatMissingData: 'breaching',
      EvaluationPeriods: 2,
      OKActions: Match.anyValue(),
    });
  });
});

describe('the canary on an existing source', () => {
  const existing = {
    tables: example.tables,
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
        port: 5433,
        databaseName: 'shop',
        secretArn: 'arn:aws:secretsmanager:eu-west-1:123456789012:secret:shop-dms-AbCdEf',
        securityGroupId: 'sg-0123abcd',
      },
    },
    accessAudit: { auditedRoles: ['alice'] },
  };
  const CANARY_ARN = 'arn:aws:secretsmanager:eu-west-1:123456789012:secret:shop-canary-AbCdEf';

  it('uses the secret the operator names in deployment.source.canarySecretArn, unrotated', () => {
    const { template, accessAudit, stack } = synth({
      ...existing,
      deployment: {
        ...existing.deployment,
        source: { ...existing.deployment.source, canarySecretArn: CANARY_ARN },
      },
    });
    expect(accessAudit?.canary).toBeDefined();
    expect(noCanaryWarnings(stack)).toEqual([]);
    template.hasResourceProperties('AWS::Lambda::Function', {
      Environment: {
        Variables: Match.objectLike({
          CANARY_SECRET_ARN: CANARY_ARN,
          CANARY_DATABASE: 'shop',
          CANARY_HOST: 'shop.cluster-abc.eu-west-1.rds.amazonaws.com',
          CANARY_PORT: '5433',
        }),
      },
    });
    template.hasResourceProperties('AWS::EC2::SecurityGroupIngress', {
      GroupId: 'sg-0123abcd',
      FromPort: 5433,
      SourceSecurityGroupId: {
        'Fn::GetAtt': [Match.stringLikeRegexp('CanarySecurityGroup'), 'GroupId'],
      },
    });
    // The kit's Secrets Manager endpoint in the existing VPC serves that secret.
    const endpoint = Object.values(resources(template, 'AWS::EC2::VPCEndpoint')).find((e) =>
      JSON.stringify(e.Properties.ServiceName).includes('secretsmanager'),
    );
    expect(JSON.stringify(endpoint?.Properties.PolicyDocument)).toContain(CANARY_ARN);
    // The kit neither creates nor rotates a login on a database it does not own.
    expect(JSON.stringify(resources(template, 'Custom::AuditTrailLogins'))).not.toContain(
      'CanarySecretArn',
    );
    expect(
      JSON.stringify(resources(template, 'AWS::SecretsManager::RotationSchedule')),
    ).not.toContain(CANARY_ARN);
  });

  it('without canarySecretArn still synthesises, with the warning naming the field', () => {
    const { accessAudit, stack } = synth(existing);
    expect(accessAudit?.canary).toBeUndefined();
    const warnings = noCanaryWarnings(stack);
    expect(warnings).toHaveLength(1);
    expect(JSON.stringify(warnings[0]?.entry.data)).toContain('canarySecretArn');
  });

  it('refuses a canarySecretArn that is not a Secrets Manager ARN, naming the field', () => {
    expect(() =>
      parseConfig({
        ...existing,
        deployment: {
          ...existing.deployment,
          source: { ...existing.deployment.source, canarySecretArn: 'canary' },
        },
      }),
    ).toThrow(/deployment\.source\.canarySecretArn: must be a Secrets Manager secret ARN/);
  });
});

import { readFileSync } from 'node:fs';
import path from 'node:path';
import { Template } from 'aws-cdk-lib/assertions';
import { buildApp } from '../../infra/build-app';
import { parseConfig } from '../../src/config';

/** Skips NodejsFunction bundling; `npx cdk synth` bundles for real. */
const FAST = { context: { 'aws:cdk:bundling-stacks': [] } };

const example = JSON.parse(
  readFileSync(path.join(__dirname, '../../examples/aws.config.json'), 'utf8'),
) as { deployment: Record<string, unknown> };

/** Synthesizes (cdk-nag runs: an unacknowledged finding throws) with deployment overrides. */
function synth(deployment: Record<string, unknown> = {}) {
  const config = parseConfig({ ...example, deployment: { ...example.deployment, ...deployment } });
  const { stack } = buildApp(config, FAST);
  return Template.fromStack(stack);
}

type Resource = { Type: string; Properties: Record<string, unknown> };

function only(template: Template, type: string, prefix: string): [string, Resource] {
  const found = Object.entries(template.toJSON().Resources as Record<string, Resource>).filter(
    ([id, r]) => r.Type === type && id.startsWith(prefix),
  );
  expect(found, `${type} ${prefix}`).toHaveLength(1);
  return found[0]!;
}

describe('the query path without a bastion: Data API and the auditor policy', () => {
  const template = synth();
  const [clusterId, cluster] = only(template, 'AWS::RDS::DBCluster', 'TargetCluster');
  const [secretId, secret] = only(template, 'AWS::SecretsManager::Secret', 'LoginsAuditorSecret');
  const [policyId, policy] = only(template, 'AWS::IAM::ManagedPolicy', 'AuditorAccess');
  const clusterArn = {
    'Fn::Join': [
      '',
      [
        'arn:',
        { Ref: 'AWS::Partition' },
        ':rds:',
        { Ref: 'AWS::Region' },
        ':',
        { Ref: 'AWS::AccountId' },
        ':cluster:',
        { Ref: clusterId },
      ],
    ],
  };

  it('enables the Data API on the target cluster only', () => {
    expect(cluster.Properties.EnableHttpEndpoint).toBe(true);
    const source = only(template, 'AWS::RDS::DBCluster', 'SourceCluster')[1];
    expect(source.Properties.EnableHttpEndpoint).not.toBe(true);
  });

  it('the policy allows the read calls on that cluster and that secret, nothing else', () => {
    expect(policy.Properties.PolicyDocument).toEqual({
      Version: '2012-10-17',
      Statement: [
        {
          Sid: 'DataApiOnTheTarget',
          Effect: 'Allow',
          Action: [
            'rds-data:ExecuteStatement',
            'rds-data:BeginTransaction',
            'rds-data:CommitTransaction',
            'rds-data:RollbackTransaction',
          ],
          Resource: clusterArn,
        },
        {
          Sid: 'AuditorLoginSecret',
          Effect: 'Allow',
          Action: 'secretsmanager:GetSecretValue',
          Resource: { Ref: secretId },
        },
      ],
    });
    // A managed policy to attach, not a grant to some principal of the stack's.
    expect(policy.Properties.Roles ?? policy.Properties.Users ?? policy.Properties.Groups).toBe(
      undefined,
    );
  });

  it('outputs the cluster, the secret and the policy an auditor uses', () => {
    const outputs = template.toJSON().Outputs as Record<string, { Value: unknown }>;
    expect(outputs.TargetClusterArn?.Value).toEqual(clusterArn);
    expect(outputs.AuditorSecretArn?.Value).toEqual({ Ref: secretId });
    expect(outputs.AuditorPolicyArn?.Value).toEqual({ Ref: policyId });
  });

  it('the auditor login is created by the logins resource as <auditSchema>_auditor and rotated', () => {
    // The template joins the host in; the user name is a literal part of it.
    expect(JSON.stringify(secret.Properties.GenerateSecretString)).toContain(
      '\\"username\\":\\"audit_auditor\\"',
    );
    const [, logins] = only(template, 'Custom::AuditTrailLogins', 'Logins');
    expect(logins.Properties.AuditorSecretArn).toEqual({ Ref: secretId });
    const rotations = Object.values(template.toJSON().Resources as Record<string, Resource>).filter(
      (r) => r.Type === 'AWS::SecretsManager::RotationSchedule',
    );
    expect(rotations.map((r) => r.Properties.SecretId)).toContainEqual({ Ref: secretId });
  });

  it('an RDS for PostgreSQL target (no Data API) gets no auditor login, policy or outputs', () => {
    const instance = synth({ target: { engine: 'postgres', databaseName: 'audit' } });
    const json = instance.toJSON() as { Resources: Record<string, Resource>; Outputs: object };
    expect(
      Object.values(json.Resources).filter((r) => r.Type === 'AWS::IAM::ManagedPolicy'),
    ).toEqual([]);
    expect(
      Object.keys(json.Resources).filter((id) => id.startsWith('LoginsAuditorSecret')),
    ).toEqual([]);
    expect(Object.keys(json.Outputs)).not.toContain('AuditorPolicyArn');
  });
});

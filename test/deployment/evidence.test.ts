import { readFileSync } from 'node:fs';
import path from 'node:path';
import { Template } from 'aws-cdk-lib/assertions';
import { buildApp } from '../../infra/build-app';
import { parseConfig } from '../../src/config';

/** Skips NodejsFunction bundling; `npx cdk synth` bundles for real. */
const FAST = { context: { 'aws:cdk:bundling-stacks': [] } };

const synthesized = new Map<string, Template>();

/** Each example is synthesized once per production flag (synthesis takes seconds). */
function synthExample(file: string, production: boolean): Template {
  const key = `${file}:${production}`;
  const cached = synthesized.get(key);
  if (cached) return cached;
  const template = synthUncached(file, production);
  synthesized.set(key, template);
  return template;
}

function synthUncached(file: string, production: boolean): Template {
  const example = JSON.parse(
    readFileSync(path.join(__dirname, '../../examples', file), 'utf8'),
  ) as { deployment: Record<string, unknown> };
  const config = parseConfig({
    ...example,
    accessAudit: { auditedRoles: ['alice'], sqs: { enabled: true } },
    deployment: { ...example.deployment, production },
  });
  return Template.fromStack(buildApp(config, FAST).stack);
}

/** Resource types that hold or protect evidence: logs, credentials, keys, buckets, queues, databases. */
const EVIDENCE_TYPES = [
  'AWS::Logs::LogGroup',
  'AWS::SecretsManager::Secret',
  'AWS::KMS::Key',
  'AWS::S3::Bucket',
  'AWS::SQS::Queue',
  'AWS::RDS::DBCluster',
  'AWS::RDS::DBInstance',
];

type Resource = { Type: string; DeletionPolicy?: string; Properties?: Record<string, unknown> };

function resources(template: Template): [string, Resource][] {
  return Object.entries(template.toJSON().Resources as Record<string, Resource>);
}

describe.each(['aws.config.json', 'rds-instance.config.json'])('evidence in %s', (file) => {
  // Synthesized while collecting (as the other deployment tests do): seconds each.
  const templates = [synthExample(file, false), synthExample(file, true)] as const;

  it('production: no evidence resource is deleted with the stack', () => {
    const evidence = resources(templates[1]).filter(([, resource]) =>
      EVIDENCE_TYPES.includes(resource.Type),
    );
    const types = new Set(evidence.map(([, resource]) => resource.Type));
    expect([...types].sort()).toEqual(
      expect.arrayContaining(['AWS::KMS::Key', 'AWS::Logs::LogGroup', 'AWS::SQS::Queue']),
    );
    // CloudFormation deletes a resource without a DeletionPolicy: missing counts as Delete.
    const deleted = evidence
      .filter(([, resource]) => resource.DeletionPolicy !== 'Retain')
      .map(([id, resource]) => `${id} (${resource.Type}): ${resource.DeletionPolicy ?? 'Delete'}`);
    expect(deleted).toEqual([]);
  });

  it('every log group the stack creates is encrypted with the kit’s CMK', () => {
    for (const template of templates) {
      const logGroups = resources(template).filter(([, r]) => r.Type === 'AWS::Logs::LogGroup');
      expect(logGroups.length).toBeGreaterThanOrEqual(3);
      const keys = new Set(
        logGroups.map(([, group]) => JSON.stringify(group.Properties?.KmsKeyId ?? 'none')),
      );
      expect(keys.size).toBe(1);
      const [key] = [...keys];
      expect(key).toMatch(/^\{"Fn::GetAtt":\["EvidenceLogKey[0-9A-F]+","Arn"\]\}$/);
    }
  });
});

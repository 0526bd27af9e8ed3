import { readFileSync } from 'node:fs';
import path from 'node:path';
import { Template } from 'aws-cdk-lib/assertions';
import { expect } from 'vitest';
import { buildApp } from '../../../infra/build-app';
import { parseConfig } from '../../../src/config';

/** Skips NodejsFunction bundling; the DAS function's bundle is tested in das-lambda.test.ts. */
export const FAST = { context: { 'aws:cdk:bundling-stacks': [] } };

/** examples/aws.config.json, the config the DAS synthesis tests start from. */
export const EXAMPLE_CONFIG = JSON.parse(
  readFileSync(path.join(__dirname, '../../../examples/aws.config.json'), 'utf8'),
) as Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any -- test fixture

/** A provisioned Aurora cluster (DAS does not run on the Serverless v2 cluster the kit creates). */
export const EXISTING_SOURCE = {
  mode: 'existing',
  clusterIdentifier: 'app-prod',
  endpoint: 'app-prod.cluster-abc.eu-west-1.rds.amazonaws.com',
  databaseName: 'app',
  secretArn: 'arn:aws:secretsmanager:eu-west-1:123456789012:secret:app-AbCdEf',
  securityGroupId: 'sg-0abc123',
};

/**
 * Synthesises the example app with this `accessAudit` section and `deployment` changes
 * (cdk-nag runs in Template.fromStack and throws on any finding).
 */
export function synthAccessAudit(accessAudit: unknown, deployment: Record<string, unknown> = {}) {
  const config = parseConfig({
    ...EXAMPLE_CONFIG,
    accessAudit,
    deployment: { ...EXAMPLE_CONFIG.deployment, ...deployment },
  });
  const built = buildApp(config, FAST);
  return { ...built, template: Template.fromStack(built.stack) };
}

/** The logical id of the one resource of `type` whose id starts with `prefix`. */
export function logicalId(template: Template, type: string, prefix: string): string {
  const ids = Object.keys(template.findResources(type)).filter((id) => id.startsWith(prefix));
  expect(ids).toHaveLength(1);
  return ids[0]!;
}

/** `arn:<partition><parts…>` as CloudFormation joins it. */
export const partitionArn = (...parts: unknown[]) => ({
  'Fn::Join': ['', ['arn:', { Ref: 'AWS::Partition' }, ...parts]],
});

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

type Resource = { Type: string; Properties: Record<string, unknown>; DeletionPolicy?: string };

function resources(template: Template, type: string, prefix = 'ChainAnchor'): [string, Resource][] {
  return Object.entries(template.toJSON().Resources as Record<string, Resource>).filter(
    ([id, r]) => r.Type === type && id.startsWith(prefix),
  );
}

function one(template: Template, type: string, prefix?: string): [string, Resource] {
  const found = resources(template, type, prefix);
  expect(found, type).toHaveLength(1);
  return found[0]!;
}

const getAtt = (id: string, attribute = 'Arn') => ({ 'Fn::GetAtt': [id, attribute] });
const objectsUnder = (bucket: string, prefix: string) => ({
  'Fn::Join': ['', [getAtt(bucket), `/${prefix}*`]],
});

describe('chain anchor: Object Lock bucket and scheduled Lambda', () => {
  const template = synth();
  const anchorsBucket = resources(template, 'AWS::S3::Bucket').find(
    ([, r]) => r.Properties.ObjectLockEnabled === true,
  )!;
  const [bucketId, bucket] = anchorsBucket;
  const [keyId] = one(template, 'AWS::KMS::Key');
  const [secretId] = one(template, 'AWS::SecretsManager::Secret', 'LoginsAnchorSecret');
  const [functionId, fn] = one(template, 'AWS::Lambda::Function');

  it('locks every anchor (governance outside production, 365 days), versioned, KMS, no public access, retained', () => {
    expect(bucket.Properties).toMatchObject({
      ObjectLockEnabled: true,
      ObjectLockConfiguration: {
        ObjectLockEnabled: 'Enabled',
        Rule: { DefaultRetention: { Mode: 'GOVERNANCE', Days: 365 } },
      },
      VersioningConfiguration: { Status: 'Enabled' },
      BucketEncryption: {
        ServerSideEncryptionConfiguration: [
          {
            BucketKeyEnabled: true,
            ServerSideEncryptionByDefault: {
              SSEAlgorithm: 'aws:kms',
              KMSMasterKeyID: getAtt(keyId),
            },
          },
        ],
      },
      PublicAccessBlockConfiguration: {
        BlockPublicAcls: true,
        BlockPublicPolicy: true,
        IgnorePublicAcls: true,
        RestrictPublicBuckets: true,
      },
      OwnershipControls: { Rules: [{ ObjectOwnership: 'BucketOwnerEnforced' }] },
      LoggingConfiguration: { LogFilePrefix: 'anchors-bucket/' },
    });
    expect(bucket.DeletionPolicy).toBe('Retain');
    template.hasResourceProperties('AWS::KMS::Key', {
      Description: 'audit-trail: chain anchors bucket',
      EnableKeyRotation: true,
    });
  });

  it('refuses every request without TLS 1.2 or later, and allows nothing else in the bucket policy', () => {
    const [, policy] = resources(template, 'AWS::S3::BucketPolicy').find(
      ([, r]) => JSON.stringify(r.Properties.Bucket) === JSON.stringify({ Ref: bucketId }),
    )!;
    const everything = [getAtt(bucketId), { 'Fn::Join': ['', [getAtt(bucketId), '/*']] }];
    expect((policy.Properties.PolicyDocument as { Statement: unknown[] }).Statement).toEqual([
      {
        Action: 's3:*',
        Condition: { Bool: { 'aws:SecureTransport': 'false' } },
        Effect: 'Deny',
        Principal: { AWS: '*' },
        Resource: everything,
      },
      {
        Action: 's3:*',
        Condition: { NumericLessThan: { 's3:TlsVersion': 1.2 } },
        Effect: 'Deny',
        Principal: { AWS: '*' },
        Resource: everything,
      },
    ]);
  });

  it('lets the Lambda read its login secret and add anchors under the prefix, nothing more', () => {
    const [, policy] = one(template, 'AWS::IAM::Policy', 'ChainAnchorFunction');
    expect((policy.Properties.PolicyDocument as { Statement: unknown[] }).Statement).toEqual([
      {
        Action: ['secretsmanager:GetSecretValue', 'secretsmanager:DescribeSecret'],
        Effect: 'Allow',
        Resource: { Ref: secretId },
      },
      {
        Action: ['s3:PutObject', 's3:PutObjectRetention'],
        Effect: 'Allow',
        Resource: objectsUnder(bucketId, 'chain-heads/'),
      },
      { Action: 'kms:GenerateDataKey', Effect: 'Allow', Resource: getAtt(keyId) },
    ]);
  });

  it('runs every 5 minutes in the VPC, connecting with the anchor login to the target', () => {
    template.hasResourceProperties('AWS::Events::Rule', {
      ScheduleExpression: 'rate(5 minutes)',
      Targets: [{ Arn: getAtt(functionId) }],
    });
    expect(fn.Properties).toMatchObject({
      Environment: {
        Variables: {
          ANCHOR_BUCKET: { Ref: bucketId },
          ANCHOR_PREFIX: 'chain-heads/',
          AUDIT_SCHEMA: 'audit',
          RETENTION_DAYS: '365',
          OBJECT_LOCK_MODE: 'GOVERNANCE',
          TARGET_SECRET_ARN: { Ref: secretId },
          TARGET_PORT: '5432',
          TARGET_DATABASE: 'audit',
        },
      },
      VpcConfig: { SubnetIds: [expect.anything(), expect.anything()] },
    });
  });

  it('has the logins resource create the anchor login (reader role) and rotate its secret', () => {
    const [, logins] = one(template, 'Custom::AuditTrailLogins', 'Logins');
    expect(logins.Properties.AnchorSecretArn).toEqual({ Ref: secretId });
    template.hasResourceProperties('AWS::SecretsManager::Secret', {
      Description: 'audit-trail login audit_anchor (audit)',
    });
    template.hasResourceProperties('AWS::SecretsManager::RotationSchedule', {
      SecretId: { Ref: secretId },
    });
  });

  it('its security group reaches the target port, the Secrets Manager endpoint and S3 (its prefix list), nothing else', () => {
    const all = Object.entries(template.toJSON().Resources as Record<string, Resource>);
    const groupOf = (description: string) =>
      all.find(
        ([, r]) =>
          r.Type === 'AWS::EC2::SecurityGroup' &&
          String(r.Properties.GroupDescription).includes(description),
      )![0];
    const anchorGroup = groupOf('audit-trail chain anchor Lambda');
    const group = all.find(([id]) => id === anchorGroup)![1];
    const rules = [
      ...((group.Properties.SecurityGroupEgress ?? []) as Record<string, unknown>[]),
      ...all
        .filter(
          ([, r]) =>
            r.Type === 'AWS::EC2::SecurityGroupEgress' &&
            JSON.stringify(r.Properties.GroupId) === JSON.stringify(getAtt(anchorGroup, 'GroupId')),
        )
        .map(([, r]) => r.Properties),
    ].map(({ Description: _description, GroupId: _group, ...rule }) => rule);
    const [prefixListId, lookup] = one(template, 'Custom::AWS', 'ChainAnchorS3PrefixList');
    // The id is looked up at deploy time by name; the lookup may do nothing else.
    expect(JSON.stringify(lookup.Properties.Create)).toContain('describeManagedPrefixLists');
    expect(JSON.stringify(lookup.Properties.Create)).toContain('.s3');
    const [, lookupPolicy] = one(template, 'AWS::IAM::Policy', 'ChainAnchorS3PrefixList');
    expect(lookupPolicy.Properties.PolicyDocument).toEqual({
      Statement: [{ Action: 'ec2:DescribeManagedPrefixLists', Effect: 'Allow', Resource: '*' }],
      Version: '2012-10-17',
    });
    expect(rules).toHaveLength(3);
    expect(rules).toEqual(
      expect.arrayContaining([
        {
          IpProtocol: 'tcp',
          FromPort: 5432,
          ToPort: 5432,
          DestinationSecurityGroupId: getAtt(
            groupOf('audit-trail target: staging tables and the audit log'),
            'GroupId',
          ),
        },
        {
          IpProtocol: 'tcp',
          FromPort: 443,
          ToPort: 443,
          DestinationSecurityGroupId: getAtt(groupOf('SecretsManager'), 'GroupId'),
        },
        {
          IpProtocol: 'tcp',
          FromPort: 443,
          ToPort: 443,
          DestinationPrefixListId: getAtt(prefixListId, 'PrefixLists.0.PrefixListId'),
        },
      ]),
    );
  });

  it('reaches S3 only through a gateway endpoint that takes nothing but anchors', () => {
    const [, endpoint] = one(template, 'AWS::EC2::VPCEndpoint', 'NetworkVpcAnchorsS3');
    expect(endpoint.Properties.VpcEndpointType).toBe('Gateway');
    expect(endpoint.Properties.PolicyDocument).toEqual({
      Statement: [
        {
          Action: ['s3:PutObject', 's3:PutObjectRetention'],
          Effect: 'Allow',
          Principal: { AWS: '*' },
          Resource: objectsUnder(bucketId, 'chain-heads/'),
        },
      ],
      Version: '2012-10-17',
    });
  });
});

describe('deployment.anchors config', () => {
  it('production: compliance mode, seven years', () => {
    const template = synth({ production: true });
    template.hasResourceProperties('AWS::S3::Bucket', {
      ObjectLockConfiguration: {
        ObjectLockEnabled: 'Enabled',
        Rule: { DefaultRetention: { Mode: 'COMPLIANCE', Days: 2555 } },
      },
    });
    template.hasResourceProperties('AWS::Lambda::Function', {
      Environment: { Variables: { OBJECT_LOCK_MODE: 'COMPLIANCE', RETENTION_DAYS: '2555' } },
    });
  });

  it('takes interval, retention, mode and prefix from the config', () => {
    const template = synth({
      anchors: { everyMinutes: 15, retentionDays: 30, mode: 'COMPLIANCE', prefix: 'heads/' },
    });
    template.hasResourceProperties('AWS::Events::Rule', { ScheduleExpression: 'rate(15 minutes)' });
    template.hasResourceProperties('AWS::S3::Bucket', {
      ObjectLockConfiguration: {
        ObjectLockEnabled: 'Enabled',
        Rule: { DefaultRetention: { Mode: 'COMPLIANCE', Days: 30 } },
      },
    });
  });

  it('enabled: false deploys no bucket, Lambda or login', () => {
    const template = synth({ anchors: { enabled: false } });
    expect(resources(template, 'AWS::S3::Bucket')).toHaveLength(0);
    expect(resources(template, 'AWS::Lambda::Function')).toHaveLength(0);
    expect(
      one(template, 'Custom::AuditTrailLogins', 'Logins')[1].Properties.AnchorSecretArn,
    ).toBeUndefined();
  });

  it.each([
    [{ everyMinutes: 0 }, 'deployment.anchors.everyMinutes'],
    [{ retentionDays: 0 }, 'deployment.anchors.retentionDays'],
    [{ mode: 'compliance' }, 'deployment.anchors.mode'],
    [{ prefix: '/abs' }, 'deployment.anchors.prefix'],
    [{ bucket: 'mine' }, 'deployment.anchors'],
  ])('refuses %j naming %s', (anchors, field) => {
    expect(() =>
      parseConfig({ ...example, deployment: { ...example.deployment, anchors } }),
    ).toThrow(`${field}: `);
  });
});

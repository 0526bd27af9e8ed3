import { readFileSync } from 'node:fs';
import path from 'node:path';
import { Template } from 'aws-cdk-lib/assertions';
import { buildApp } from '../../infra/build-app';
import { parseConfig } from '../../src/config';

/** Skips NodejsFunction bundling; `npx cdk synth` bundles for real. */
const FAST = { context: { 'aws:cdk:bundling-stacks': [] } };

const example = JSON.parse(
  readFileSync(path.join(__dirname, '../../examples/aws.config.json'), 'utf8'),
) as Record<string, unknown>;
const built = buildApp(
  parseConfig({
    ...example,
    accessAudit: { auditedRoles: ['alice'], alerts: { emails: ['dba-alerts@example.com'] } },
  }),
  FAST,
);
const template = Template.fromStack(built.stack);

interface Statement {
  Sid?: string;
  Effect: string;
  Principal: unknown;
  Action: string | string[];
  Condition?: Record<string, Record<string, unknown>>;
}

function only<T>(resources: Record<string, unknown>): [string, T] {
  const entries = Object.entries(resources);
  expect(entries).toHaveLength(1);
  return entries[0] as [string, T];
}

/** This account and this region, as CloudFormation writes them. */
const ACCOUNT = { Ref: 'AWS::AccountId' };
const sourceArn = (service: string, resource: string) => ({
  'Fn::Join': [
    '',
    [
      'arn:',
      { Ref: 'AWS::Partition' },
      `:${service}:`,
      { Ref: 'AWS::Region' },
      ':',
      ACCOUNT,
      resource,
    ],
  ],
});
const cloudwatchCondition = {
  StringEquals: { 'aws:SourceAccount': ACCOUNT },
  ArnLike: { 'aws:SourceArn': sourceArn('cloudwatch', ':alarm:*') },
};
const dmsCondition = {
  StringEquals: { 'aws:SourceAccount': ACCOUNT },
  ArnLike: { 'aws:SourceArn': sourceArn('dms', ':*') },
};

describe('one shared alert topic for the DMS alarms, DMS events and the access audit', () => {
  const [topicId, topic] = only<{ Properties: { KmsMasterKeyId: unknown } }>(
    template.findResources('AWS::SNS::Topic'),
  );

  it('is the only topic and every alarm and event subscription notifies it', () => {
    const alarms = Object.values(template.findResources('AWS::CloudWatch::Alarm')) as {
      Properties: { AlarmActions: unknown[] };
    }[];
    expect(alarms.length).toBeGreaterThanOrEqual(4);
    for (const alarm of alarms) expect(alarm.Properties.AlarmActions).toEqual([{ Ref: topicId }]);
    template.hasResourceProperties('AWS::DMS::EventSubscription', {
      SnsTopicArn: { Ref: topicId },
    });
    for (const email of ['audit-alerts@example.com', 'dba-alerts@example.com']) {
      template.hasResourceProperties('AWS::SNS::Subscription', {
        TopicArn: { Ref: topicId },
        Endpoint: email,
      });
    }
  });

  it('topic policy: exactly this account’s CloudWatch alarms and DMS, and TLS only', () => {
    const [, policy] = only<{
      Properties: { PolicyDocument: { Statement: Statement[] }; Topics: unknown[] };
    }>(template.findResources('AWS::SNS::TopicPolicy'));
    expect(policy.Properties.Topics).toEqual([{ Ref: topicId }]);
    const statements = policy.Properties.PolicyDocument.Statement;
    const allows = statements.filter((statement) => statement.Effect === 'Allow');
    expect(
      allows.map(({ Principal, Action, Condition }) => ({ Principal, Action, Condition })),
    ).toEqual([
      {
        Principal: { Service: 'cloudwatch.amazonaws.com' },
        Action: 'sns:Publish',
        Condition: cloudwatchCondition,
      },
      {
        Principal: { Service: 'dms.amazonaws.com' },
        Action: 'sns:Publish',
        Condition: dmsCondition,
      },
    ]);
    const denies = statements.filter((statement) => statement.Effect === 'Deny');
    expect(denies).toEqual([
      expect.objectContaining({
        Principal: '*',
        Action: 'sns:Publish',
        Condition: { Bool: { 'aws:SecureTransport': 'false' } },
      }),
    ]);
  });

  it('key policy: the account, and CloudWatch and DMS only for this account', () => {
    const keyId = (topic.Properties.KmsMasterKeyId as { 'Fn::GetAtt': [string, string] })[
      'Fn::GetAtt'
    ][0];
    const key = template.findResources('AWS::KMS::Key')[keyId] as {
      Properties: { EnableKeyRotation: boolean; KeyPolicy: { Statement: Statement[] } };
    };
    expect(key.Properties.EnableKeyRotation).toBe(true);
    const principals = key.Properties.KeyPolicy.Statement.map(({ Principal, Condition }) => ({
      Principal,
      Condition,
    }));
    expect(principals).toEqual([
      {
        Principal: {
          AWS: {
            'Fn::Join': ['', ['arn:', { Ref: 'AWS::Partition' }, ':iam::', ACCOUNT, ':root']],
          },
        },
        Condition: undefined,
      },
      { Principal: { Service: 'cloudwatch.amazonaws.com' }, Condition: cloudwatchCondition },
      { Principal: { Service: 'dms.amazonaws.com' }, Condition: dmsCondition },
    ]);
  });
});

import { Match } from 'aws-cdk-lib/assertions';
import { buildApp } from '../../infra/build-app';
import { parseConfig } from '../../src/config';
import {
  EXAMPLE_CONFIG,
  EXISTING_SOURCE,
  FAST,
  logicalId,
  partitionArn,
  synthAccessAudit,
} from './support/das-cdk';

const synth = synthAccessAudit;

describe('Database Activity Streams in the deployed app (existing provisioned cluster, new VPC)', () => {
  const { template, activityStream } = synth(
    { activityStream: { enabled: true } },
    { source: EXISTING_SOURCE },
  );
  const lookup = logicalId(template, 'Custom::AuditTrailClusterResourceId', 'ActivityStream');
  const resourceId = { 'Fn::GetAtt': [lookup, 'ResourceId'] };
  const key = logicalId(template, 'AWS::KMS::Key', 'ActivityStreamKey');
  const starterRole = logicalId(
    template,
    'AWS::IAM::Role',
    'ActivityStreamStarterOnEventServiceRole',
  );
  const decryptRole = logicalId(
    template,
    'AWS::IAM::Role',
    'ActivityStreamDecryptFunctionServiceRole',
  );
  const stream = logicalId(template, 'Custom::AuditTrailActivityStream', 'ActivityStream');
  const queue = logicalId(template, 'AWS::SQS::Queue', 'ActivityStreamDecryptFailures');
  const clusterArn = partitionArn(
    ':rds:',
    { Ref: 'AWS::Region' },
    ':',
    { Ref: 'AWS::AccountId' },
    ':cluster:app-prod',
  );
  const kinesisArn = partitionArn(
    ':kinesis:',
    { Ref: 'AWS::Region' },
    ':',
    { Ref: 'AWS::AccountId' },
    ':stream/',
    { 'Fn::GetAtt': [stream, 'StreamName'] },
  );

  it('creates a rotated key that RDS may use for this cluster and the decrypt role only under its resource id', () => {
    expect(activityStream).toBeDefined();
    template.hasResourceProperties('AWS::KMS::Key', {
      Description: 'audit-trail: Database Activity Stream of the source cluster',
      EnableKeyRotation: true,
      KeyPolicy: {
        Version: '2012-10-17',
        Statement: [
          {
            Action: 'kms:*',
            Effect: 'Allow',
            Principal: { AWS: partitionArn(':iam::', { Ref: 'AWS::AccountId' }, ':root') },
            Resource: '*',
          },
          {
            Sid: 'RdsActivityStreamOfThisCluster',
            Action: ['kms:CreateGrant', 'kms:DescribeKey'],
            Effect: 'Allow',
            Principal: { AWS: { 'Fn::GetAtt': [starterRole, 'Arn'] } },
            Resource: '*',
            Condition: {
              StringEquals: {
                'kms:ViaService': {
                  'Fn::Join': ['', ['rds.', { Ref: 'AWS::Region' }, '.amazonaws.com']],
                },
              },
              Bool: { 'kms:GrantIsForAWSResource': 'true' },
            },
          },
          {
            Sid: 'DecryptActivityOfThisCluster',
            Action: 'kms:Decrypt',
            Effect: 'Allow',
            Principal: { AWS: { 'Fn::GetAtt': [decryptRole, 'Arn'] } },
            Resource: '*',
            Condition: {
              StringEquals: {
                'kms:EncryptionContext:aws:rds:dbc-id': resourceId,
              },
            },
          },
        ],
      },
    });
    // Outside production the key goes with the stack.
    expect(template.toJSON().Resources[key].DeletionPolicy).toBe('Delete');
  });

  it('starts the stream on the cluster with that key, async, after the KMS endpoint exists', () => {
    const resource = template.toJSON().Resources[stream];
    expect(resource.Properties).toEqual({
      ServiceToken: expect.anything(),
      Action: 'stream',
      ClusterIdentifier: 'app-prod',
      ClusterArn: clusterArn,
      KmsKeyArn: { 'Fn::GetAtt': [key, 'Arn'] },
      Mode: 'async',
      Retain: 'false',
    });
    const endpoint = logicalId(template, 'AWS::EC2::VPCEndpoint', 'ActivityStreamKmsEndpoint');
    expect(resource.DependsOn).toEqual(expect.arrayContaining([endpoint]));
    template.hasResourceProperties('Custom::AuditTrailClusterResourceId', {
      Action: 'describe',
      ClusterIdentifier: 'app-prod',
    });
  });

  it('lets the starter start, stop and describe this cluster only, and the waiter describe it', () => {
    template.hasResourceProperties('AWS::IAM::Policy', {
      Roles: [{ Ref: starterRole }],
      PolicyDocument: {
        Version: '2012-10-17',
        Statement: [
          {
            Action: ['rds:StartActivityStream', 'rds:StopActivityStream', 'rds:DescribeDBClusters'],
            Effect: 'Allow',
            Resource: clusterArn,
          },
        ],
      },
    });
    template.hasResourceProperties('AWS::IAM::Policy', {
      Roles: [
        {
          Ref: logicalId(template, 'AWS::IAM::Role', 'ActivityStreamStarterIsCompleteServiceRole'),
        },
      ],
      PolicyDocument: {
        Version: '2012-10-17',
        Statement: [{ Action: 'rds:DescribeDBClusters', Effect: 'Allow', Resource: clusterArn }],
      },
    });
  });

  it('reads the aws-rds-das stream with partial batch responses, bisection and a failure queue', () => {
    template.hasResourceProperties('AWS::Lambda::EventSourceMapping', {
      EventSourceArn: kinesisArn,
      FunctionName: {
        Ref: logicalId(template, 'AWS::Lambda::Function', 'ActivityStreamDecryptFunction'),
      },
      StartingPosition: 'TRIM_HORIZON',
      BatchSize: 100,
      BisectBatchOnFunctionError: true,
      FunctionResponseTypes: ['ReportBatchItemFailures'],
      MaximumRetryAttempts: 3,
      DestinationConfig: { OnFailure: { Destination: { 'Fn::GetAtt': [queue, 'Arn'] } } },
    });
    template.hasResourceProperties('AWS::SQS::Queue', {
      KmsMasterKeyId: { 'Fn::GetAtt': [Match.stringLikeRegexp('^AlertTopicKey'), 'Arn'] },
      MessageRetentionPeriod: 14 * 24 * 3600,
    });
  });

  it('runs the decrypt function under the monitor service name, with the cluster resource id and the kit alert topic', () => {
    const monitorFunction = Object.values(template.findResources('AWS::Lambda::Function')).find(
      (fn) =>
        JSON.stringify(fn).includes('Parses pgAudit records') ||
        JSON.stringify(fn).includes('parses pgAudit records'),
    ) as { Properties: { Environment: { Variables: Record<string, unknown> } } };
    const monitorEnv = monitorFunction.Properties.Environment.Variables;
    template.hasResourceProperties('AWS::Lambda::Function', {
      Description: Match.stringLikeRegexp('decrypts the Database Activity Stream'),
      MemorySize: 1024,
      Environment: {
        Variables: {
          ALERT_TOPIC_ARN: { Ref: Match.stringLikeRegexp('^AlertTopic') },
          ACCESS_AUDIT_CONFIG: monitorEnv.ACCESS_AUDIT_CONFIG,
          DAS_CLUSTER_RESOURCE_ID: resourceId,
          // Unreadable records go to the failure queue themselves (issue #12).
          DAS_FAILURE_QUEUE_URL: { Ref: queue },
          POWERTOOLS_SERVICE_NAME: monitorEnv.POWERTOOLS_SERVICE_NAME,
          POWERTOOLS_METRICS_NAMESPACE: monitorEnv.POWERTOOLS_METRICS_NAMESPACE,
        },
      },
    });
  });

  it('gives the decrypt role stream reads, topic publishing and the failure queue, and no KMS right on the stream key', () => {
    const alertKey = {
      'Fn::GetAtt': [logicalId(template, 'AWS::KMS::Key', 'AlertTopicKey'), 'Arn'],
    };
    template.hasResourceProperties('AWS::IAM::Policy', {
      Roles: [{ Ref: decryptRole }],
      PolicyDocument: {
        Version: '2012-10-17',
        Statement: [
          {
            Action: 'sns:Publish',
            Effect: 'Allow',
            Resource: { Ref: Match.stringLikeRegexp('^AlertTopic') },
          },
          { Action: ['kms:Decrypt', 'kms:GenerateDataKey*'], Effect: 'Allow', Resource: alertKey },
          {
            Action: ['sqs:SendMessage', 'sqs:GetQueueAttributes', 'sqs:GetQueueUrl'],
            Effect: 'Allow',
            Resource: { 'Fn::GetAtt': [queue, 'Arn'] },
          },
          {
            Action: ['kms:Decrypt', 'kms:Encrypt', 'kms:ReEncrypt*', 'kms:GenerateDataKey*'],
            Effect: 'Allow',
            Resource: alertKey,
          },
          {
            Action: [
              'kinesis:DescribeStreamSummary',
              'kinesis:GetRecords',
              'kinesis:GetShardIterator',
              'kinesis:ListShards',
              'kinesis:SubscribeToShard',
              'kinesis:DescribeStream',
              'kinesis:ListStreams',
              'kinesis:DescribeStreamConsumer',
            ],
            Effect: 'Allow',
            Resource: kinesisArn,
          },
        ],
      },
    });
  });

  it('alarms on decrypt failures and lag through the alert topic', () => {
    const topic = { Ref: Match.stringLikeRegexp('^AlertTopic') };
    template.hasResourceProperties('AWS::CloudWatch::Alarm', {
      AlarmDescription: Match.stringLikeRegexp('decrypt function failed or gave up'),
      Threshold: 1,
      AlarmActions: [topic],
      OKActions: [topic],
    });
    template.hasResourceProperties('AWS::CloudWatch::Alarm', {
      MetricName: 'IteratorAge',
      Namespace: 'AWS/Lambda',
      Threshold: 15 * 60_000,
      AlarmActions: [topic],
    });
  });

  it('alarms when the stream goes quiet: no authenticated record for 15 minutes, missing data breaching', () => {
    const topic = { Ref: Match.stringLikeRegexp('^AlertTopic') };
    template.hasResourceProperties('AWS::CloudWatch::Alarm', {
      AlarmDescription: Match.stringLikeRegexp('went quiet'),
      Namespace: 'AuditTrail/AccessAudit',
      MetricName: 'DasRecordsRead',
      Dimensions: [
        { Name: 'ClusterResourceId', Value: resourceId },
        { Name: 'service', Value: 'access-audit-monitor' },
      ],
      Statistic: 'Sum',
      Period: 60,
      EvaluationPeriods: 15,
      DatapointsToAlarm: 15,
      ComparisonOperator: 'LessThanThreshold',
      Threshold: 1,
      // A stopped stream sends nothing, so the function publishes nothing: missing is the alarm.
      TreatMissingData: 'breaching',
      AlarmActions: [topic],
      OKActions: [topic],
    });
  });

  it('alerts at once when anyone calls StopActivityStream on this cluster (CloudTrail through EventBridge)', () => {
    const rules = template.findResources('AWS::Events::Rule', {
      Properties: {
        EventPattern: {
          source: ['aws.rds'],
          'detail-type': ['AWS API Call via CloudTrail'],
          detail: {
            eventSource: ['rds.amazonaws.com'],
            eventName: ['StopActivityStream'],
            requestParameters: { resourceArn: [clusterArn] },
          },
        },
        State: 'ENABLED',
      },
    });
    expect(Object.keys(rules)).toHaveLength(1);
    const [ruleId, rule] = Object.entries(rules)[0]!;
    const targets = (rule as { Properties: { Targets: Record<string, unknown>[] } }).Properties
      .Targets;
    expect(targets).toHaveLength(1);
    expect(targets[0]).toMatchObject({
      Arn: { Ref: expect.stringMatching(/^AlertTopic/) },
      RoleArn: { 'Fn::GetAtt': [expect.stringMatching(/EventsRole/), 'Arn'] },
    });
    // The message names who stopped the stream, from where, and when.
    const input = JSON.stringify(targets[0]!.InputTransformer);
    for (const field of ['userIdentity.arn', 'sourceIPAddress', 'eventTime', 'eventID'])
      expect(input).toContain(field);
    // The role EventBridge publishes with may publish to the alert topic (and use its key), nothing else.
    const roleId = (targets[0]!.RoleArn as { 'Fn::GetAtt': [string, string] })['Fn::GetAtt'][0];
    template.hasResourceProperties('AWS::IAM::Role', {
      AssumeRolePolicyDocument: {
        Statement: [Match.objectLike({ Principal: { Service: 'events.amazonaws.com' } })],
      },
    });
    const policies = template.findResources('AWS::IAM::Policy', {
      Properties: { Roles: [{ Ref: roleId }] },
    });
    const statements = Object.values(policies).flatMap(
      (policy) =>
        (policy as { Properties: { PolicyDocument: { Statement: { Action: unknown }[] } } })
          .Properties.PolicyDocument.Statement,
    );
    expect(
      statements
        .map((statement) => statement.Action)
        .flat()
        .sort(),
    ).toEqual(['kms:Decrypt', 'kms:GenerateDataKey*', 'sns:Publish']);
    expect(ruleId).toMatch(/^ActivityStream/);
  });

  it('alerts at once when anyone disables the stream key, schedules its deletion or replaces its policy', () => {
    const rules = template.findResources('AWS::Events::Rule', {
      Properties: {
        EventPattern: {
          source: ['aws.kms'],
          'detail-type': ['AWS API Call via CloudTrail'],
          detail: {
            eventSource: ['kms.amazonaws.com'],
            eventName: ['DisableKey', 'ScheduleKeyDeletion', 'PutKeyPolicy'],
            resources: { ARN: [{ 'Fn::GetAtt': [key, 'Arn'] }] },
          },
        },
        State: 'ENABLED',
      },
    });
    expect(Object.keys(rules)).toHaveLength(1);
    const rule = Object.values(rules)[0] as { Properties: { Targets: Record<string, unknown>[] } };
    expect(rule.Properties.Targets).toEqual([
      expect.objectContaining({
        Arn: { Ref: expect.stringMatching(/^AlertTopic/) },
        RoleArn: { 'Fn::GetAtt': [expect.stringMatching(/EventsRole/), 'Arn'] },
      }),
    ]);
    const input = JSON.stringify(rule.Properties.Targets[0]!.InputTransformer);
    for (const field of ['eventName', 'userIdentity.arn', 'sourceIPAddress', 'eventTime'])
      expect(input).toContain(field);
  });

  it('shows the stream alarms and its records and heartbeats on the access-audit dashboard', () => {
    const dashboards = template.findResources('AWS::CloudWatch::Dashboard');
    const body = JSON.stringify(Object.values(dashboards)[0]);
    expect(body).toContain('DasRecordsRead');
    expect(body).toContain('DasHeartbeats');
    for (const alarm of ['QuietAlarm', 'FailureAlarm', 'LagAlarm'])
      expect(body).toMatch(new RegExp(`ActivityStreamDecrypt${alarm}`));
  });

  it('reaches KMS through an endpoint that serves the stream key only, open to the source cluster only', () => {
    template.hasResourceProperties('AWS::EC2::VPCEndpoint', {
      ServiceName: { 'Fn::Join': ['', ['com.amazonaws.', { Ref: 'AWS::Region' }, '.kms']] },
      PrivateDnsEnabled: true,
      PolicyDocument: {
        Version: '2012-10-17',
        Statement: [
          {
            Action: 'kms:*',
            Effect: 'Allow',
            Principal: { AWS: '*' },
            Resource: { 'Fn::GetAtt': [key, 'Arn'] },
          },
        ],
      },
    });
    template.hasResourceProperties('AWS::EC2::SecurityGroupIngress', {
      GroupId: {
        'Fn::GetAtt': [Match.stringLikeRegexp('^ActivityStreamKmsEndpointGroup'), 'GroupId'],
      },
      SourceSecurityGroupId: 'sg-0abc123',
      FromPort: 443,
      ToPort: 443,
    });
  });
});

describe('Database Activity Streams: other deployments', () => {
  it('refuses the kit-made Serverless v2 source when the config has no deployment section to name', () => {
    const config = parseConfig({
      ...EXAMPLE_CONFIG,
      deployment: undefined,
      accessAudit: { activityStream: { enabled: true } },
    });
    expect(() => buildApp(config, FAST)).toThrow(/not supported on Aurora Serverless v2/);
  });

  it('is not deployed unless enabled', () => {
    for (const accessAudit of [
      {},
      { activityStream: {} },
      { activityStream: { enabled: false } },
    ]) {
      const { template, activityStream } = synth(accessAudit);
      expect(activityStream).toBeUndefined();
      template.resourceCountIs('Custom::AuditTrailActivityStream', 0);
    }
  });

  it('in an existing VPC: sync mode, the key bound to the looked-up resource id, no KMS endpoint', () => {
    const { template } = synth(
      { activityStream: { enabled: true, mode: 'sync' } },
      {
        network: {
          vpcId: 'vpc-0abc123',
          availabilityZones: ['eu-west-1a', 'eu-west-1b'],
          privateSubnetIds: ['subnet-0aaa', 'subnet-0bbb'],
        },
        source: EXISTING_SOURCE,
      },
    );
    const lookup = logicalId(template, 'Custom::AuditTrailClusterResourceId', 'ActivityStream');
    template.hasResourceProperties('Custom::AuditTrailActivityStream', {
      ClusterIdentifier: 'app-prod',
      ClusterArn: partitionArn(
        ':rds:',
        { Ref: 'AWS::Region' },
        ':',
        { Ref: 'AWS::AccountId' },
        ':cluster:app-prod',
      ),
      Mode: 'sync',
    });
    template.hasResourceProperties('AWS::KMS::Key', {
      KeyPolicy: {
        Statement: Match.arrayWith([
          Match.objectLike({
            Sid: 'DecryptActivityOfThisCluster',
            Condition: {
              StringEquals: {
                'kms:EncryptionContext:aws:rds:dbc-id': { 'Fn::GetAtt': [lookup, 'ResourceId'] },
              },
            },
          }),
        ]),
      },
    });
    // The VPC's routes to KMS are its owner's (only the kit's Secrets Manager endpoint).
    template.resourcePropertiesCountIs(
      'AWS::EC2::VPCEndpoint',
      { ServiceName: { 'Fn::Join': ['', ['com.amazonaws.', { Ref: 'AWS::Region' }, '.kms']] } },
      0,
    );
  });

  it('forwards DAS events to the access-audit queue when sqs is enabled: its URL and send rights on it only', () => {
    const { template } = synth(
      {
        activityStream: { enabled: true },
        sqs: { enabled: true, fifo: true, forward: 'events', format: 'both' },
      },
      { source: EXISTING_SOURCE },
    );
    const forward = Object.keys(template.findResources('AWS::SQS::Queue')).find((id) =>
      /^AccessAuditForward[0-9A-F]{8}$/.test(id),
    )!;
    template.hasResourceProperties('AWS::SQS::Queue', { FifoQueue: true });
    template.hasResourceProperties('AWS::Lambda::Function', {
      Description: Match.stringLikeRegexp('decrypts the Database Activity Stream'),
      Environment: { Variables: Match.objectLike({ FORWARD_QUEUE_URL: { Ref: forward } }) },
    });
    const decryptRole = logicalId(
      template,
      'AWS::IAM::Role',
      'ActivityStreamDecryptFunctionServiceRole',
    );
    const statements = Object.values(template.findResources('AWS::IAM::Policy'))
      .filter(
        (policy) =>
          JSON.stringify(policy.Properties.Roles) === JSON.stringify([{ Ref: decryptRole }]),
      )
      .flatMap((policy) => policy.Properties.PolicyDocument.Statement as Record<string, unknown>[]);
    const onForward = statements.filter(
      (statement) =>
        JSON.stringify(statement.Resource) === JSON.stringify({ 'Fn::GetAtt': [forward, 'Arn'] }),
    );
    expect(onForward).toEqual([
      {
        Action: ['sqs:SendMessage', 'sqs:GetQueueAttributes', 'sqs:GetQueueUrl'],
        Effect: 'Allow',
        Resource: { 'Fn::GetAtt': [forward, 'Arn'] },
      },
    ]);
  });

  it('gives the decrypt function no queue without sqs.enabled', () => {
    const { template } = synth({ activityStream: { enabled: true } }, { source: EXISTING_SOURCE });
    const decrypt = Object.values(template.findResources('AWS::Lambda::Function')).find((fn) =>
      JSON.stringify(fn).includes('decrypts the Database Activity Stream'),
    ) as { Properties: { Environment: { Variables: Record<string, unknown> } } };
    expect(decrypt.Properties.Environment.Variables).not.toHaveProperty('FORWARD_QUEUE_URL');
  });

  it('takes batchSize and retryAttempts from the config into the event source mapping', () => {
    const { template } = synth(
      { activityStream: { enabled: true, batchSize: 250, retryAttempts: 7 } },
      { source: EXISTING_SOURCE },
    );
    template.hasResourceProperties('AWS::Lambda::EventSourceMapping', {
      BatchSize: 250,
      MaximumRetryAttempts: 7,
      BisectBatchOnFunctionError: true,
      FunctionResponseTypes: ['ReportBatchItemFailures'],
      DestinationConfig: { OnFailure: { Destination: Match.anyValue() } },
    });
  });

  it('reads one batch per shard at a time unless parallelizationFactor says more', () => {
    const one = synth({ activityStream: { enabled: true } }, { source: EXISTING_SOURCE });
    one.template.hasResourceProperties('AWS::Lambda::EventSourceMapping', {
      ParallelizationFactor: 1,
    });
    const { template } = synth(
      { activityStream: { enabled: true, parallelizationFactor: 4 } },
      { source: EXISTING_SOURCE },
    );
    template.hasResourceProperties('AWS::Lambda::EventSourceMapping', {
      ParallelizationFactor: 4,
      BisectBatchOnFunctionError: true,
      FunctionResponseTypes: ['ReportBatchItemFailures'],
    });
  });

  it('takes the quiet window from activityStream.quietMinutes', () => {
    const { template } = synth(
      { activityStream: { enabled: true, quietMinutes: 45 } },
      { source: EXISTING_SOURCE },
    );
    template.hasResourceProperties('AWS::CloudWatch::Alarm', {
      MetricName: 'DasRecordsRead',
      EvaluationPeriods: 45,
      DatapointsToAlarm: 45,
      TreatMissingData: 'breaching',
    });
  });

  it('retains the running stream, its key and failure queue in production', () => {
    const { template } = synth(
      { activityStream: { enabled: true } },
      { production: true, source: EXISTING_SOURCE },
    );
    template.hasResourceProperties('Custom::AuditTrailActivityStream', { Retain: 'true' });
    const resources = template.toJSON().Resources as Record<string, { DeletionPolicy?: string }>;
    expect(
      resources[logicalId(template, 'AWS::KMS::Key', 'ActivityStreamKey')]!.DeletionPolicy,
    ).toBe('Retain');
    expect(
      resources[logicalId(template, 'AWS::SQS::Queue', 'ActivityStreamDecryptFailures')]!
        .DeletionPolicy,
    ).toBe('Retain');
  });
});

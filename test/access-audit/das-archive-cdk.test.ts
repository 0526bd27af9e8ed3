import { Match } from 'aws-cdk-lib/assertions';
import { ARCHIVE_COLUMNS } from '../../src/access-audit/das/archive';
import { EXISTING_SOURCE, logicalId, partitionArn, synthAccessAudit } from './support/das-cdk';

/** Synthesises the app with an activity stream archive on an existing provisioned cluster. */
function synth(archive: unknown, deployment: Record<string, unknown> = {}) {
  return synthAccessAudit(
    { activityStream: { enabled: true, archive } },
    { source: EXISTING_SOURCE, ...deployment },
  );
}

const regional = (service: string, ...rest: unknown[]) =>
  partitionArn(`:${service}:`, { Ref: 'AWS::Region' }, ':', { Ref: 'AWS::AccountId' }, ...rest);

const databaseOf = (stackName: string) =>
  `${stackName.toLowerCase().replace(/[^a-z0-9_]/g, '_')}_activity`;
/** The catalog, database and table ARNs a Glue table read is checked against. */
const glueArnsOf = (stackName: string) => [
  regional('glue', ':catalog'),
  regional('glue', `:database/${databaseOf(stackName)}`),
  regional('glue', `:table/${databaseOf(stackName)}/activity_events`),
];

describe('DAS archive (Firehose → S3, Glue, Athena): JSON, the issue example', () => {
  const { template, stack } = synth({ retentionDays: 2555, glacierAfterDays: 90 });
  const key = logicalId(template, 'AWS::KMS::Key', 'ActivityStreamArchiveKey');
  const keyArn = { 'Fn::GetAtt': [key, 'Arn'] };
  const bucket = logicalId(template, 'AWS::S3::Bucket', 'ActivityStreamArchiveBucket');
  const bucketArn = { 'Fn::GetAtt': [bucket, 'Arn'] };
  const objects = (prefix: string) => ({
    'Fn::Join': ['', [bucketArn, `/${prefix}*`]],
  });
  const results = logicalId(template, 'AWS::S3::Bucket', 'ActivityStreamArchiveResults');
  const accessLogs = logicalId(template, 'AWS::S3::Bucket', 'ActivityStreamArchiveAccessLogs');
  const stream = logicalId(
    template,
    'AWS::KinesisFirehose::DeliveryStream',
    'ActivityStreamArchiveDeliveryStream',
  );
  const deliveryRole = logicalId(template, 'AWS::IAM::Role', 'ActivityStreamArchiveDeliveryRole');
  const database = databaseOf(stack.stackName);
  const workGroup = `${stack.stackName}-activity-audit`;
  const glueArns = glueArnsOf(stack.stackName);

  it('keeps the archive in a versioned, KMS-encrypted (customer key), access-logged bucket with no public access, Glacier after 90 days and expiry after 2555', () => {
    template.hasResourceProperties('AWS::KMS::Key', {
      Description: Match.stringLikeRegexp('Activity Stream archive'),
      EnableKeyRotation: true,
    });
    const resource = template.toJSON().Resources[bucket];
    expect(resource.DeletionPolicy).toBe('Retain');
    expect(resource.Properties).toEqual({
      BucketEncryption: {
        ServerSideEncryptionConfiguration: [
          {
            BucketKeyEnabled: true,
            ServerSideEncryptionByDefault: { KMSMasterKeyID: keyArn, SSEAlgorithm: 'aws:kms' },
          },
        ],
      },
      LifecycleConfiguration: {
        Rules: [
          {
            Id: 'retention',
            Status: 'Enabled',
            Transitions: [{ StorageClass: 'GLACIER', TransitionInDays: 90 }],
            ExpirationInDays: 2555,
            NoncurrentVersionExpiration: { NoncurrentDays: 30 },
            AbortIncompleteMultipartUpload: { DaysAfterInitiation: 7 },
          },
        ],
      },
      LoggingConfiguration: {
        DestinationBucketName: { Ref: accessLogs },
        LogFilePrefix: 'archive-bucket/',
      },
      OwnershipControls: { Rules: [{ ObjectOwnership: 'BucketOwnerEnforced' }] },
      PublicAccessBlockConfiguration: {
        BlockPublicAcls: true,
        BlockPublicPolicy: true,
        IgnorePublicAcls: true,
        RestrictPublicBuckets: true,
      },
      VersioningConfiguration: { Status: 'Enabled' },
    });
    // No Object Lock unless asked.
    expect(resource.Properties.ObjectLockEnabled).toBeUndefined();
  });

  it('refuses every request over plain HTTP or TLS below 1.2', () => {
    template.hasResourceProperties('AWS::S3::BucketPolicy', {
      Bucket: { Ref: bucket },
      PolicyDocument: {
        Statement: Match.arrayWith([
          Match.objectLike({
            Effect: 'Deny',
            Action: 's3:*',
            Principal: { AWS: '*' },
            Condition: { Bool: { 'aws:SecureTransport': 'false' } },
          }),
          Match.objectLike({
            Effect: 'Deny',
            Action: 's3:*',
            Condition: { NumericLessThan: { 's3:TlsVersion': 1.2 } },
          }),
        ]),
      },
    });
  });

  it('delivers through an encrypted Firehose stream, gzipped JSON under events/dt=<date>/, failures under errors/', () => {
    template.hasResourceProperties('AWS::KinesisFirehose::DeliveryStream', {
      DeliveryStreamType: 'DirectPut',
      DeliveryStreamEncryptionConfigurationInput: {
        KeyType: 'CUSTOMER_MANAGED_CMK',
        KeyARN: keyArn,
      },
      ExtendedS3DestinationConfiguration: {
        BucketARN: bucketArn,
        RoleARN: { 'Fn::GetAtt': [deliveryRole, 'Arn'] },
        Prefix: 'events/dt=!{timestamp:yyyy-MM-dd}/',
        ErrorOutputPrefix: 'errors/!{firehose:error-output-type}/dt=!{timestamp:yyyy-MM-dd}/',
        BufferingHints: { IntervalInSeconds: 300, SizeInMBs: 5 },
        CompressionFormat: 'GZIP',
        EncryptionConfiguration: { KMSEncryptionConfig: { AWSKMSKeyARN: keyArn } },
        CloudWatchLoggingOptions: Match.objectLike({ Enabled: true }),
        DataFormatConversionConfiguration: Match.absent(),
      },
    });
  });

  it('lets Firehose (for this account only) write under events/ and errors/, use the key through S3 for this bucket, and log: nothing else', () => {
    template.hasResourceProperties('AWS::IAM::Role', {
      AssumeRolePolicyDocument: {
        Statement: [
          {
            Action: 'sts:AssumeRole',
            Effect: 'Allow',
            Principal: { Service: 'firehose.amazonaws.com' },
            Condition: { StringEquals: { 'sts:ExternalId': { Ref: 'AWS::AccountId' } } },
          },
        ],
      },
    });
    template.hasResourceProperties('AWS::IAM::Policy', {
      Roles: [{ Ref: deliveryRole }],
      PolicyDocument: {
        Version: '2012-10-17',
        Statement: [
          {
            Action: ['s3:GetBucketLocation', 's3:ListBucket', 's3:ListBucketMultipartUploads'],
            Effect: 'Allow',
            Resource: bucketArn,
          },
          {
            Action: ['s3:AbortMultipartUpload', 's3:GetObject', 's3:PutObject'],
            Effect: 'Allow',
            Resource: [objects('events/'), objects('errors/')],
          },
          {
            Action: ['kms:GenerateDataKey', 'kms:Decrypt'],
            Effect: 'Allow',
            Resource: keyArn,
            Condition: {
              StringEquals: {
                'kms:ViaService': {
                  'Fn::Join': ['', ['s3.', { Ref: 'AWS::Region' }, '.amazonaws.com']],
                },
                'kms:EncryptionContext:aws:s3:arn': bucketArn,
              },
            },
          },
          {
            Action: 'logs:PutLogEvents',
            Effect: 'Allow',
            Resource: regional(
              'logs',
              ':log-group:',
              {
                Ref: logicalId(template, 'AWS::Logs::LogGroup', 'ActivityStreamArchiveDeliveryLog'),
              },
              ':log-stream:',
              {
                Ref: logicalId(
                  template,
                  'AWS::Logs::LogStream',
                  'ActivityStreamArchiveDeliveryLogS3Delivery',
                ),
              },
            ),
          },
        ],
      },
    });
  });

  it('gives the decrypt function PutRecordBatch on this delivery stream only, and its name', () => {
    const decryptRole = logicalId(
      template,
      'AWS::IAM::Role',
      'ActivityStreamDecryptFunctionServiceRole',
    );
    template.hasResourceProperties('AWS::IAM::Policy', {
      Roles: [{ Ref: decryptRole }],
      PolicyDocument: {
        Statement: Match.arrayWith([
          {
            Action: 'firehose:PutRecordBatch',
            Effect: 'Allow',
            Resource: { 'Fn::GetAtt': [stream, 'Arn'] },
          },
        ]),
      },
    });
    const statements = Object.values(template.findResources('AWS::IAM::Policy'))
      .filter(
        (policy) =>
          JSON.stringify(policy.Properties.Roles) === JSON.stringify([{ Ref: decryptRole }]),
      )
      .flatMap((policy) => policy.Properties.PolicyDocument.Statement as { Action: unknown }[]);
    // No other Firehose action, and no right on the archive key or bucket.
    expect(JSON.stringify(statements.map((statement) => statement.Action))).not.toMatch(
      /firehose:(?!PutRecordBatch)|s3:/,
    );
    expect(JSON.stringify(statements)).not.toContain(key);
    template.hasResourceProperties('AWS::Lambda::Function', {
      Description: Match.stringLikeRegexp('decrypts the Database Activity Stream'),
      Environment: { Variables: Match.objectLike({ DAS_ARCHIVE_STREAM: { Ref: stream } }) },
    });
  });

  it('describes the archive in a Glue table partitioned by date (projection), with the columns the Lambda writes', () => {
    template.hasResourceProperties('AWS::Glue::Database', {
      DatabaseInput: { Name: database },
    });
    template.hasResourceProperties('AWS::Glue::Table', {
      DatabaseName: database,
      TableInput: {
        Name: 'activity_events',
        TableType: 'EXTERNAL_TABLE',
        PartitionKeys: [{ Name: 'dt', Type: 'string', Comment: Match.anyValue() }],
        Parameters: {
          classification: 'json',
          EXTERNAL: 'TRUE',
          'projection.enabled': 'true',
          'projection.dt.type': 'date',
          'projection.dt.format': 'yyyy-MM-dd',
          'projection.dt.range': 'NOW-2555DAYS,NOW',
          'projection.dt.interval': '1',
          'projection.dt.interval.unit': 'DAYS',
          'storage.location.template': {
            'Fn::Join': ['', ['s3://', { Ref: bucket }, '/events/dt=${dt}/']],
          },
          read_restored_glacier_objects: 'true',
        },
        StorageDescriptor: {
          Location: { 'Fn::Join': ['', ['s3://', { Ref: bucket }, '/events/']] },
          Columns: ARCHIVE_COLUMNS.map(({ name, type, comment }) => ({
            Name: name,
            Type: type,
            Comment: comment,
          })),
          InputFormat: 'org.apache.hadoop.mapred.TextInputFormat',
          OutputFormat: 'org.apache.hadoop.hive.ql.io.HiveIgnoreKeyTextOutputFormat',
          SerdeInfo: { SerializationLibrary: 'org.openx.data.jsonserde.JsonSerDe' },
        },
      },
    });
  });

  it('queries in an Athena workgroup that enforces KMS-encrypted results in its own bucket', () => {
    template.hasResourceProperties('AWS::Athena::WorkGroup', {
      Name: workGroup,
      RecursiveDeleteOption: true,
      WorkGroupConfiguration: {
        EngineVersion: { SelectedEngineVersion: 'Athena engine version 3' },
        EnforceWorkGroupConfiguration: true,
        PublishCloudWatchMetricsEnabled: true,
        ResultConfiguration: {
          OutputLocation: { 'Fn::Join': ['', ['s3://', { Ref: results }, '/']] },
          EncryptionConfiguration: { EncryptionOption: 'SSE_KMS', KmsKey: keyArn },
        },
      },
    });
    template.hasResourceProperties('AWS::S3::Bucket', {
      BucketEncryption: {
        ServerSideEncryptionConfiguration: [
          Match.objectLike({
            ServerSideEncryptionByDefault: { KMSMasterKeyID: keyArn, SSEAlgorithm: 'aws:kms' },
          }),
        ],
      },
      LoggingConfiguration: {
        DestinationBucketName: { Ref: accessLogs },
        LogFilePrefix: 'results-bucket/',
      },
      LifecycleConfiguration: {
        Rules: [Match.objectLike({ Id: 'results', ExpirationInDays: 30 })],
      },
    });
  });

  it('saves the report queries: a user in a window, a table, privilege changes, failed logins, each counting an event once', () => {
    const queries = Object.values(template.findResources('AWS::Athena::NamedQuery')).map(
      (query) => query.Properties as Record<string, string>,
    );
    expect(queries.map((query) => query.Name).sort()).toEqual([
      'activity of a user',
      'activity on a table',
      'failed logins',
      'privilege changes',
    ]);
    for (const query of queries) {
      expect(query).toMatchObject({ Database: database, WorkGroup: workGroup });
      expect(query.QueryString).toContain(`FROM "${database}"."activity_events"`);
      expect(query.QueryString).toContain('PARTITION BY event_id');
      expect(query.QueryString).toContain('WHERE copy_number = 1');
      expect(query.QueryString).toMatch(/dt BETWEEN '2026-11-01' AND '2026-12-01'/);
      // Athena skips Glacier objects silently: every query says so.
      expect(query.QueryString).toContain('Events older than 90 days are in S3 Glacier');
    }
    const sql = (name: string) => queries.find((query) => query.Name === name)!.QueryString!;
    expect(sql('activity on a table')).toContain("object_name = 'public.items'");
    expect(sql('privilege changes')).toContain("class = 'ROLE'");
    expect(sql('activity of a user')).toContain("db_user = 'alice'");
  });

  it('offers an auditor policy that runs the workgroup queries on the archive and nothing else', () => {
    template.hasResourceProperties('AWS::IAM::ManagedPolicy', {
      Description: Match.stringLikeRegexp('activity archive queries'),
      PolicyDocument: {
        Version: '2012-10-17',
        Statement: [
          {
            Action: [
              'athena:GetWorkGroup',
              'athena:StartQueryExecution',
              'athena:StopQueryExecution',
              'athena:GetQueryExecution',
              'athena:GetQueryResults',
              'athena:ListQueryExecutions',
              'athena:ListNamedQueries',
              'athena:GetNamedQuery',
              'athena:BatchGetNamedQuery',
            ],
            Effect: 'Allow',
            Resource: regional('athena', `:workgroup/${workGroup}`),
          },
          {
            Action: ['glue:GetDatabase', 'glue:GetTable', 'glue:GetPartitions'],
            Effect: 'Allow',
            Resource: glueArns,
          },
          {
            Action: ['s3:GetBucketLocation', 's3:ListBucket'],
            Effect: 'Allow',
            Resource: [bucketArn, { 'Fn::GetAtt': [results, 'Arn'] }],
          },
          { Action: 's3:GetObject', Effect: 'Allow', Resource: objects('events/') },
          {
            Action: ['s3:GetObject', 's3:PutObject', 's3:AbortMultipartUpload'],
            Effect: 'Allow',
            Resource: { 'Fn::Join': ['', [{ 'Fn::GetAtt': [results, 'Arn'] }, '/*']] },
          },
          {
            Action: ['kms:Decrypt', 'kms:GenerateDataKey'],
            Effect: 'Allow',
            Resource: keyArn,
            Condition: {
              StringEquals: {
                'kms:ViaService': {
                  'Fn::Join': ['', ['s3.', { Ref: 'AWS::Region' }, '.amazonaws.com']],
                },
              },
            },
          },
        ],
      },
    });
    expect(
      Object.keys(template.findOutputs('*')).some((id) => id.includes('AuditorPolicyArn')),
    ).toBe(true);
  });

  it('alarms through the alert topic when Firehose has not delivered for an hour', () => {
    template.hasResourceProperties('AWS::CloudWatch::Alarm', {
      Namespace: 'AWS/Firehose',
      MetricName: 'DeliveryToS3.DataFreshness',
      Dimensions: [{ Name: 'DeliveryStreamName', Value: { Ref: stream } }],
      Threshold: 3600,
      AlarmActions: [{ Ref: Match.stringLikeRegexp('^AlertTopic') }],
    });
    // No Parquet, no conversion alarm and no Glue right for Firehose.
    expect(JSON.stringify(template.findResources('AWS::CloudWatch::Alarm'))).not.toContain(
      'FailedConversion',
    );
  });
});

describe('DAS archive: Parquet, Object Lock, production, off', () => {
  it('converts to Parquet through the Glue table, which Firehose may read and nothing more', () => {
    const { template, stack } = synth({
      format: 'parquet',
      retentionDays: 400,
      glacierAfterDays: 30,
    });
    const deliveryRole = logicalId(template, 'AWS::IAM::Role', 'ActivityStreamArchiveDeliveryRole');
    template.hasResourceProperties('AWS::KinesisFirehose::DeliveryStream', {
      ExtendedS3DestinationConfiguration: Match.objectLike({
        BufferingHints: { IntervalInSeconds: 300, SizeInMBs: 64 },
        CompressionFormat: 'UNCOMPRESSED',
        DataFormatConversionConfiguration: {
          Enabled: true,
          InputFormatConfiguration: { Deserializer: { OpenXJsonSerDe: {} } },
          OutputFormatConfiguration: { Serializer: { ParquetSerDe: {} } },
          SchemaConfiguration: Match.objectLike({
            TableName: 'activity_events',
            VersionId: 'LATEST',
            RoleARN: { 'Fn::GetAtt': [deliveryRole, 'Arn'] },
          }),
        },
      }),
    });
    template.hasResourceProperties('AWS::Glue::Table', {
      TableInput: Match.objectLike({
        Parameters: Match.objectLike({
          classification: 'parquet',
          'projection.dt.range': 'NOW-400DAYS,NOW',
        }),
        StorageDescriptor: Match.objectLike({
          SerdeInfo: {
            SerializationLibrary: 'org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe',
          },
        }),
      }),
    });
    template.hasResourceProperties('AWS::IAM::Policy', {
      Roles: [{ Ref: deliveryRole }],
      PolicyDocument: {
        Statement: Match.arrayWith([
          {
            Action: ['glue:GetTable', 'glue:GetTableVersion', 'glue:GetTableVersions'],
            Effect: 'Allow',
            Resource: glueArnsOf(stack.stackName),
          },
        ]),
      },
    });
    template.hasResourceProperties('AWS::CloudWatch::Alarm', {
      MetricName: 'FailedConversion.Records',
      Threshold: 1,
    });
  });

  it('in production, locks every archived object for the retention period (compliance) and keeps the saved queries', () => {
    const { template } = synth(
      { objectLock: 'compliance', retentionDays: 2555 },
      { production: true },
    );
    template.hasResourceProperties('AWS::Athena::WorkGroup', { RecursiveDeleteOption: false });
    template.hasResourceProperties('AWS::S3::Bucket', {
      ObjectLockEnabled: true,
      ObjectLockConfiguration: {
        ObjectLockEnabled: 'Enabled',
        Rule: { DefaultRetention: { Mode: 'COMPLIANCE', Days: 2555 } },
      },
      LifecycleConfiguration: { Rules: [Match.objectLike({ ExpirationInDays: 2555 })] },
    });
  });

  it('deploys no archive without the section, or with it disabled', () => {
    for (const archive of [undefined, { enabled: false }]) {
      const { template, activityStream } = synth(archive);
      expect(activityStream?.archive).toBeUndefined();
      template.resourceCountIs('AWS::KinesisFirehose::DeliveryStream', 0);
      template.resourceCountIs('AWS::Athena::WorkGroup', 0);
    }
  });
});

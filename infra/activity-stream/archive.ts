import { ArnFormat, CfnOutput, Duration, RemovalPolicy, Stack } from 'aws-cdk-lib';
import * as athena from 'aws-cdk-lib/aws-athena';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as cloudwatchActions from 'aws-cdk-lib/aws-cloudwatch-actions';
import * as glue from 'aws-cdk-lib/aws-glue';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as firehose from 'aws-cdk-lib/aws-kinesisfirehose';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as logs from 'aws-cdk-lib/aws-logs';
import * as s3 from 'aws-cdk-lib/aws-s3';
import { Construct } from 'constructs';
import { ARCHIVE_COLUMNS } from '../../src/access-audit/das/archive';
import type { ActivityArchiveConfig } from '../../src/config/activity-stream';
import type { AlertTopic } from '../constructs/alert-topic';
import { evidenceAccessLogBucket, evidenceBucketProps } from '../constructs/evidence-bucket';
import { acknowledge } from '../nag';
import { archiveQueries } from './archive-queries';

/** Props of {@link ActivityArchive}. */
export interface ActivityArchiveProps {
  /** The validated `accessAudit.activityStream.archive` section. */
  readonly config: ActivityArchiveConfig;
  /** The kit's alert topic: the archive's delivery alarms notify it. */
  readonly alertTopic: AlertTopic;
  /** Days Athena query results are kept. @default 30 */
  readonly resultsRetentionDays?: number;
  /** Retain the workgroup's saved queries when the stack is deleted. @default false */
  readonly production?: boolean;
}

/** Key prefix of the archived events (`events/dt=YYYY-MM-DD/…`). */
export const ARCHIVE_EVENTS_PREFIX = 'events/';
/** Key prefix of records Firehose could not deliver or convert. */
export const ARCHIVE_ERRORS_PREFIX = 'errors/';
/** Name of the archive's Glue table. */
export const ARCHIVE_TABLE = 'activity_events';
/** Days a deleted or overwritten archive object stays recoverable as a noncurrent version. */
export const NONCURRENT_DAYS = 30;

/**
 * The long-term archive of a Database Activity Stream: the decrypt function puts every
 * decoded event into a Firehose delivery stream (encrypted with the archive key), which
 * writes it to S3 under `events/dt=<arrival date, UTC>/`, as gzipped newline-delimited
 * JSON or, with `format: parquet`, converted to Parquet through the Glue table. The bucket
 * is encrypted with the archive's customer-managed key, TLS-only, versioned, under
 * Object Lock when asked, with no public access and server access logs; objects move to
 * Glacier after `glacierAfterDays` and expire after `retentionDays`. A Glue table
 * (partition projection on `dt`, nothing to crawl) and an Athena workgroup that enforces
 * its encrypted result location, with saved queries, answer "who looked at table X last
 * month"; {@link auditorPolicy} is what an auditor needs to run them. Firehose's own
 * failures are alarmed through the alert topic: records it cannot deliver for too long
 * would be lost.
 *
 * @example
 * const archive = new ActivityArchive(this, 'Archive', { config: archiveConfig, alertTopic });
 * archive.grantPut(decryptFunction);
 */
export class ActivityArchive extends Construct {
  /** Encrypts the archive, the delivery stream and the query results. */
  readonly key: kms.Key;
  readonly bucket: s3.Bucket;
  /** Server access logs of the archive and results buckets. */
  readonly accessLogs: s3.Bucket;
  /** Athena query results of the workgroup. */
  readonly resultsBucket: s3.Bucket;
  readonly deliveryStream: firehose.CfnDeliveryStream;
  /** The role Firehose writes to S3 (and reads the Glue table) with. */
  readonly deliveryRole: iam.Role;
  readonly database: glue.CfnDatabase;
  readonly table: glue.CfnTable;
  readonly workGroup: athena.CfnWorkGroup;
  readonly queries: athena.CfnNamedQuery[];
  /** Attach to an auditor's role or group: run the workgroup's queries on the archive, nothing else. */
  readonly auditorPolicy: iam.ManagedPolicy;
  /** Firehose has not delivered for an hour: records older than its 24-hour retry window are lost. */
  readonly deliveryAlarm: cloudwatch.Alarm;
  /** Firehose could not convert records to Parquet (they are kept under `errors/`). */
  readonly conversionAlarm?: cloudwatch.Alarm;
  readonly databaseName: string;
  readonly workGroupName: string;

  constructor(scope: Construct, id: string, props: ActivityArchiveProps) {
    super(scope, id);
    const { config } = props;
    const stack = Stack.of(this);
    this.databaseName = `${stack.stackName.toLowerCase().replace(/[^a-z0-9_]/g, '_')}_activity`;
    this.workGroupName = `${stack.stackName}-activity-audit`;
    this.key = new kms.Key(this, 'Key', {
      description: 'audit-trail: Database Activity Stream archive (S3, Firehose, Athena results)',
      enableKeyRotation: true,
      // Archived objects outlive the stack; so must their key.
      removalPolicy: RemovalPolicy.RETAIN,
    });
    this.accessLogs = evidenceAccessLogBucket(
      this,
      'AccessLogs',
      'the archive and results buckets',
    );
    this.bucket = this.createBucket(config);
    this.resultsBucket = this.createResultsBucket(props.resultsRetentionDays ?? 30);
    this.database = new glue.CfnDatabase(this, 'Database', {
      catalogId: stack.account,
      databaseInput: {
        name: this.databaseName,
        description: 'audit-trail: Database Activity Stream archive',
      },
    });
    this.table = this.createTable(config);
    this.deliveryRole = this.createDeliveryRole(config);
    this.deliveryStream = this.createDeliveryStream(config);
    this.workGroup = this.createWorkGroup(props.production ?? false);
    const queries = archiveQueries(this.databaseName, ARCHIVE_TABLE, config.glacierAfterDays);
    this.queries = queries.map((query) => {
      const named = new athena.CfnNamedQuery(this, `Query${query.id}`, {
        name: query.name,
        description: query.description,
        database: this.databaseName,
        workGroup: this.workGroupName,
        queryString: query.sql,
      });
      named.addDependency(this.workGroup);
      named.addDependency(this.table);
      return named;
    });
    this.auditorPolicy = this.createAuditorPolicy();
    this.deliveryAlarm = this.alarm('DeliveryAlarm', {
      alarmDescription:
        'The Database Activity Stream archive has not been delivered to S3 for an hour: Firehose keeps retrying for 24 hours, then drops what it holds. See README "Database Activity Streams".',
      metric: this.firehoseMetric('DeliveryToS3.DataFreshness', cloudwatch.Stats.MAXIMUM),
      threshold: Duration.hours(1).toSeconds(),
    });
    if (config.format === 'parquet')
      this.conversionAlarm = this.alarm('ConversionAlarm', {
        alarmDescription:
          'Firehose could not convert Database Activity Stream records to Parquet: they are kept as JSON under errors/ in the archive bucket, outside the Athena table.',
        metric: this.firehoseMetric('FailedConversion.Records', cloudwatch.Stats.SUM),
        threshold: 1,
      });
    for (const alarm of [this.deliveryAlarm, this.conversionAlarm]) {
      alarm?.addAlarmAction(new cloudwatchActions.SnsAction(props.alertTopic.topic));
      alarm?.addOkAction(new cloudwatchActions.SnsAction(props.alertTopic.topic));
    }
    new CfnOutput(this, 'BucketName', { value: this.bucket.bucketName });
    new CfnOutput(this, 'WorkGroupName', { value: this.workGroupName });
    new CfnOutput(this, 'AuditorPolicyArn', { value: this.auditorPolicy.managedPolicyArn });
  }

  /** The delivery stream's name (a Lambda environment value). */
  get deliveryStreamName(): string {
    return this.deliveryStream.ref;
  }

  /** Lets `grantee` put records into the delivery stream, and nothing else. */
  grantPut(grantee: iam.IGrantable): iam.Grant {
    return iam.Grant.addToPrincipal({
      grantee,
      actions: ['firehose:PutRecordBatch'],
      resourceArns: [this.deliveryStream.attrArn],
    });
  }

  private createBucket(config: ActivityArchiveConfig): s3.Bucket {
    const lock =
      config.objectLock === 'off'
        ? undefined
        : ({
            mode: config.objectLock === 'compliance' ? 'COMPLIANCE' : 'GOVERNANCE',
            retentionDays: config.retentionDays,
          } as const);
    return new s3.Bucket(this, 'Bucket', {
      ...evidenceBucketProps(
        this.key,
        { bucket: this.accessLogs, prefix: 'archive-bucket/' },
        lock,
      ),
      lifecycleRules: [
        {
          id: 'retention',
          transitions: [
            {
              storageClass: s3.StorageClass.GLACIER,
              transitionAfter: Duration.days(config.glacierAfterDays),
            },
          ],
          expiration: Duration.days(config.retentionDays),
          // A deleted or overwritten object stays recoverable (and visible in the access
          // logs) this long; Object Lock is what makes deletion impossible.
          noncurrentVersionExpiration: Duration.days(NONCURRENT_DAYS),
          abortIncompleteMultipartUploadAfter: Duration.days(7),
        },
      ],
    });
  }

  private createResultsBucket(retentionDays: number): s3.Bucket {
    return new s3.Bucket(this, 'Results', {
      ...evidenceBucketProps(this.key, { bucket: this.accessLogs, prefix: 'results-bucket/' }),
      lifecycleRules: [
        {
          id: 'results',
          expiration: Duration.days(retentionDays),
          noncurrentVersionExpiration: Duration.days(1),
          abortIncompleteMultipartUploadAfter: Duration.days(1),
        },
      ],
    });
  }

  private createTable(config: ActivityArchiveConfig): glue.CfnTable {
    const stack = Stack.of(this);
    const location = `s3://${this.bucket.bucketName}/${ARCHIVE_EVENTS_PREFIX}`;
    const storage =
      config.format === 'parquet'
        ? {
            inputFormat: 'org.apache.hadoop.hive.ql.io.parquet.MapredParquetInputFormat',
            outputFormat: 'org.apache.hadoop.hive.ql.io.parquet.MapredParquetOutputFormat',
            serdeInfo: {
              serializationLibrary: 'org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe',
            },
          }
        : {
            inputFormat: 'org.apache.hadoop.mapred.TextInputFormat',
            outputFormat: 'org.apache.hadoop.hive.ql.io.HiveIgnoreKeyTextOutputFormat',
            serdeInfo: { serializationLibrary: 'org.openx.data.jsonserde.JsonSerDe' },
          };
    const table = new glue.CfnTable(this, 'Table', {
      catalogId: stack.account,
      databaseName: this.databaseName,
      tableInput: {
        name: ARCHIVE_TABLE,
        description:
          'audit-trail: Database Activity Stream events. dt is the UTC date Firehose received the event; count DISTINCT event_id (retries archive an event again).',
        tableType: 'EXTERNAL_TABLE',
        partitionKeys: [
          { name: 'dt', type: 'string', comment: 'UTC date Firehose received the event' },
        ],
        parameters: {
          classification: config.format,
          EXTERNAL: 'TRUE',
          // Partition projection: Athena derives the partitions, nothing to crawl or repair.
          'projection.enabled': 'true',
          'projection.dt.type': 'date',
          'projection.dt.format': 'yyyy-MM-dd',
          'projection.dt.range': `NOW-${config.retentionDays}DAYS,NOW`,
          'projection.dt.interval': '1',
          'projection.dt.interval.unit': 'DAYS',
          'storage.location.template': `${location}dt=\${dt}/`,
          // Athena skips objects in Glacier without an error; restored ones it may read.
          read_restored_glacier_objects: 'true',
        },
        storageDescriptor: {
          location,
          columns: ARCHIVE_COLUMNS.map(({ name, type, comment }) => ({ name, type, comment })),
          ...storage,
        },
      },
    });
    table.addDependency(this.database);
    return table;
  }

  private createDeliveryRole(config: ActivityArchiveConfig): iam.Role {
    const stack = Stack.of(this);
    const role = new iam.Role(this, 'DeliveryRole', {
      description: 'audit-trail: Firehose writes the activity archive',
      assumedBy: new iam.ServicePrincipal('firehose.amazonaws.com', {
        // Only Firehose acting for this account may assume it (confused deputy).
        conditions: { StringEquals: { 'sts:ExternalId': stack.account } },
      }),
    });
    role.addToPolicy(
      new iam.PolicyStatement({
        actions: ['s3:GetBucketLocation', 's3:ListBucket', 's3:ListBucketMultipartUploads'],
        resources: [this.bucket.bucketArn],
      }),
    );
    // Writes under the two prefixes only: no delete, no bucket configuration.
    role.addToPolicy(
      new iam.PolicyStatement({
        actions: ['s3:AbortMultipartUpload', 's3:GetObject', 's3:PutObject'],
        resources: [
          this.bucket.arnForObjects(`${ARCHIVE_EVENTS_PREFIX}*`),
          this.bucket.arnForObjects(`${ARCHIVE_ERRORS_PREFIX}*`),
        ],
      }),
    );
    role.addToPolicy(
      new iam.PolicyStatement({
        actions: ['kms:GenerateDataKey', 'kms:Decrypt'],
        resources: [this.key.keyArn],
        conditions: {
          StringEquals: {
            'kms:ViaService': `s3.${stack.region}.amazonaws.com`,
            // With an S3 Bucket Key the encryption context is the bucket's ARN.
            'kms:EncryptionContext:aws:s3:arn': this.bucket.bucketArn,
          },
        },
      }),
    );
    if (config.format === 'parquet')
      role.addToPolicy(
        new iam.PolicyStatement({
          actions: ['glue:GetTable', 'glue:GetTableVersion', 'glue:GetTableVersions'],
          resources: this.glueArns(),
        }),
      );
    const objects = (prefix: string) =>
      `Resource::<${stack.getLogicalId(this.bucket.node.defaultChild as s3.CfnBucket)}.Arn>/${prefix}*`;
    acknowledge(
      role,
      'Firehose names the objects it writes (prefix, date, stream, time, id): it may write anywhere under the events/ and errors/ prefixes, nowhere else',
      `AwsSolutions-IAM5[${objects(ARCHIVE_EVENTS_PREFIX)}]`,
      `AwsSolutions-IAM5[${objects(ARCHIVE_ERRORS_PREFIX)}]`,
    );
    return role;
  }

  private createDeliveryStream(config: ActivityArchiveConfig): firehose.CfnDeliveryStream {
    const stack = Stack.of(this);
    const logGroup = new logs.LogGroup(this, 'DeliveryLog', {
      retention: logs.RetentionDays.ONE_YEAR,
      removalPolicy: RemovalPolicy.RETAIN,
    });
    const logStream = logGroup.addStream('S3Delivery');
    this.deliveryRole.addToPolicy(
      new iam.PolicyStatement({
        actions: ['logs:PutLogEvents'],
        resources: [
          stack.formatArn({
            service: 'logs',
            resource: 'log-group',
            resourceName: `${logGroup.logGroupName}:log-stream:${logStream.logStreamName}`,
            arnFormat: ArnFormat.COLON_RESOURCE_NAME,
          }),
        ],
      }),
    );
    const parquet = config.format === 'parquet';
    const stream = new firehose.CfnDeliveryStream(this, 'DeliveryStream', {
      deliveryStreamType: 'DirectPut',
      deliveryStreamEncryptionConfigurationInput: {
        keyType: 'CUSTOMER_MANAGED_CMK',
        keyArn: this.key.keyArn,
      },
      extendedS3DestinationConfiguration: {
        bucketArn: this.bucket.bucketArn,
        roleArn: this.deliveryRole.roleArn,
        prefix: `${ARCHIVE_EVENTS_PREFIX}dt=!{timestamp:yyyy-MM-dd}/`,
        errorOutputPrefix: `${ARCHIVE_ERRORS_PREFIX}!{firehose:error-output-type}/dt=!{timestamp:yyyy-MM-dd}/`,
        // Parquet conversion needs at least 64 MiB buffers and compresses itself (Snappy).
        bufferingHints: { intervalInSeconds: 300, sizeInMBs: parquet ? 64 : 5 },
        compressionFormat: parquet ? 'UNCOMPRESSED' : 'GZIP',
        encryptionConfiguration: { kmsEncryptionConfig: { awskmsKeyArn: this.key.keyArn } },
        cloudWatchLoggingOptions: {
          enabled: true,
          logGroupName: logGroup.logGroupName,
          logStreamName: logStream.logStreamName,
        },
        ...(parquet && {
          dataFormatConversionConfiguration: {
            enabled: true,
            inputFormatConfiguration: { deserializer: { openXJsonSerDe: {} } },
            outputFormatConfiguration: { serializer: { parquetSerDe: {} } },
            schemaConfiguration: {
              catalogId: stack.account,
              databaseName: this.databaseName,
              tableName: ARCHIVE_TABLE,
              region: stack.region,
              roleArn: this.deliveryRole.roleArn,
              versionId: 'LATEST',
            },
          },
        }),
      },
    });
    // The role's policy must exist before Firehose first writes (or reads the table).
    stream.node.addDependency(this.deliveryRole);
    stream.addDependency(this.table);
    return stream;
  }

  private createWorkGroup(production: boolean): athena.CfnWorkGroup {
    return new athena.CfnWorkGroup(this, 'WorkGroup', {
      name: this.workGroupName,
      description: 'audit-trail: queries on the Database Activity Stream archive',
      // Outside production the saved queries go with the stack.
      recursiveDeleteOption: !production,
      workGroupConfiguration: {
        // Engine 3 reads restored Glacier objects (read_restored_glacier_objects).
        engineVersion: { selectedEngineVersion: 'Athena engine version 3' },
        // Users cannot send results elsewhere or unencrypted.
        enforceWorkGroupConfiguration: true,
        publishCloudWatchMetricsEnabled: true,
        resultConfiguration: {
          outputLocation: `s3://${this.resultsBucket.bucketName}/`,
          encryptionConfiguration: { encryptionOption: 'SSE_KMS', kmsKey: this.key.keyArn },
        },
      },
    });
  }

  private createAuditorPolicy(): iam.ManagedPolicy {
    const stack = Stack.of(this);
    const workGroupArn = stack.formatArn({
      service: 'athena',
      resource: 'workgroup',
      resourceName: this.workGroupName,
    });
    const policy = new iam.ManagedPolicy(this, 'AuditorPolicy', {
      description: 'audit-trail: run the activity archive queries in its Athena workgroup',
      statements: [
        new iam.PolicyStatement({
          actions: [
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
          resources: [workGroupArn],
        }),
        new iam.PolicyStatement({
          actions: ['glue:GetDatabase', 'glue:GetTable', 'glue:GetPartitions'],
          resources: this.glueArns(),
        }),
        new iam.PolicyStatement({
          actions: ['s3:GetBucketLocation', 's3:ListBucket'],
          resources: [this.bucket.bucketArn, this.resultsBucket.bucketArn],
        }),
        new iam.PolicyStatement({
          actions: ['s3:GetObject'],
          resources: [this.bucket.arnForObjects(`${ARCHIVE_EVENTS_PREFIX}*`)],
        }),
        new iam.PolicyStatement({
          actions: ['s3:GetObject', 's3:PutObject', 's3:AbortMultipartUpload'],
          resources: [this.resultsBucket.arnForObjects('*')],
        }),
        new iam.PolicyStatement({
          actions: ['kms:Decrypt', 'kms:GenerateDataKey'],
          resources: [this.key.keyArn],
          conditions: {
            StringEquals: { 'kms:ViaService': `s3.${stack.region}.amazonaws.com` },
          },
        }),
      ],
    });
    const arn = (bucket: s3.Bucket) =>
      `<${stack.getLogicalId(bucket.node.defaultChild as s3.CfnBucket)}.Arn>`;
    acknowledge(
      policy,
      'Athena reads every archived object of the partitions a query selects and writes result objects it names itself: reads under events/ and read/write in the results bucket only',
      `AwsSolutions-IAM5[Resource::${arn(this.bucket)}/${ARCHIVE_EVENTS_PREFIX}*]`,
      `AwsSolutions-IAM5[Resource::${arn(this.resultsBucket)}/*]`,
    );
    return policy;
  }

  /** The catalog, database and table ARNs Glue checks for a table read. */
  private glueArns(): string[] {
    const stack = Stack.of(this);
    return [
      stack.formatArn({ service: 'glue', resource: 'catalog' }),
      stack.formatArn({ service: 'glue', resource: 'database', resourceName: this.databaseName }),
      stack.formatArn({
        service: 'glue',
        resource: 'table',
        resourceName: `${this.databaseName}/${ARCHIVE_TABLE}`,
      }),
    ];
  }

  private firehoseMetric(metricName: string, statistic: string): cloudwatch.Metric {
    return new cloudwatch.Metric({
      namespace: 'AWS/Firehose',
      metricName,
      dimensionsMap: { DeliveryStreamName: this.deliveryStreamName },
      statistic,
      period: Duration.minutes(5),
    });
  }

  private alarm(
    id: string,
    props: Pick<cloudwatch.AlarmProps, 'alarmDescription' | 'metric' | 'threshold'>,
  ): cloudwatch.Alarm {
    return new cloudwatch.Alarm(this, id, {
      ...props,
      comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
      evaluationPeriods: 1,
      treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
    });
  }
}

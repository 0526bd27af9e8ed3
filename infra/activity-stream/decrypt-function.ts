import { Duration, RemovalPolicy } from 'aws-cdk-lib';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as cloudwatchActions from 'aws-cdk-lib/aws-cloudwatch-actions';
import * as kinesis from 'aws-cdk-lib/aws-kinesis';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as eventSources from 'aws-cdk-lib/aws-lambda-event-sources';
import type * as nodejs from 'aws-cdk-lib/aws-lambda-nodejs';
import * as logs from 'aws-cdk-lib/aws-logs';
import * as sqs from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';
import type { AccessAuditConfig } from '../../src/config/access-audit';
import {
  DAS_CLUSTER_DIMENSION,
  DAS_STREAM_METRICS,
  DEFAULT_METRICS_NAMESPACE,
  DEFAULT_SERVICE_NAME,
} from '../../src/lambda/access-alert/metrics';
import { ENV, settingsConfigJson } from '../../src/lambda/access-alert/settings';
import { CLUSTER_RESOURCE_ID_ENV, FAILURE_QUEUE_ENV } from '../../src/lambda/das-decrypt/handler';
import type { AlertTopic } from '../constructs/alert-topic';
import { bundledFunction } from '../constructs/bundled-function';
import { acknowledge } from '../nag';

/** Props of {@link ActivityStreamDecryptFunction}. */
export interface ActivityStreamDecryptFunctionProps {
  /** The validated `accessAudit` section: the rules, exclusions and alert format the function applies. */
  readonly config: AccessAuditConfig;
  /** `DbClusterResourceId` of the cluster: the encryption context of its data keys. */
  readonly clusterResourceId: string;
  /** The kit's alert topic (alerts, and the alarms below). */
  readonly alertTopic: AlertTopic;
  /** Kinesis records per invocation. @default 100 */
  readonly batchSize?: number;
  /** Retries of a failing record before its range goes to the failure queue. @default 3 */
  readonly retryAttempts?: number;
  /**
   * Batches of one shard processed at once (the event source mapping's
   * `ParallelizationFactor`, 1–10): more throughput per shard when one function instance
   * cannot keep up. Records with the same partition key (one instance) stay in order.
   * @default 1
   */
  readonly parallelizationFactor?: number;
  /**
   * Minutes without one record of the cluster's stream before the quiet-stream alarm
   * fires (`accessAudit.activityStream.quietMinutes`).
   * @default 15
   */
  readonly quietMinutes?: number;
  /**
   * Powertools service name: must be the access-audit monitor's, so its alert and
   * monitor-error alarms count the DAS function's metrics too.
   * @default "access-audit-monitor" (the monitor's default)
   */
  readonly serviceName?: string;
  /** CloudWatch namespace, the monitor's. @default "AuditTrail/AccessAudit" */
  readonly metricsNamespace?: string;
  /** Retention of the function's own log group. @default RetentionDays.ONE_YEAR */
  readonly logRetention?: logs.RetentionDays;
  /** Removal policy of the failure queue. @default RemovalPolicy.RETAIN */
  readonly removalPolicy?: RemovalPolicy;
  /**
   * The access-audit monitor's forward queue (`accessAudit.sqs.enabled`): DAS events go to
   * it as `sqs.forward`/`sqs.format` say, like pgAudit's.
   * @default no forwarding
   */
  readonly forwardQueue?: sqs.IQueue;
}

/**
 * The Lambda that decrypts a Database Activity Stream and alerts on it through the kit's
 * alert topic, with the access-audit monitor's rules, message format and metrics. It is
 * attached to the stream with {@link attach}: an event source mapping from the oldest
 * record, partial batch responses (the function reports the first record it could not
 * decode or deliver; Lambda checkpoints before it and retries from it), bisection on
 * error, and after the retries a failure queue that receives the shard and sequence
 * range to re-read. Alarms notify the alert topic when the function fails, when anything
 * reaches the failure queue, when it falls behind the stream, and when the stream goes
 * quiet: no record of the cluster's for `quietMinutes` (a stopped stream sends nothing,
 * so missing data is the alarm).
 */
export class ActivityStreamDecryptFunction extends Construct {
  readonly function: nodejs.NodejsFunction;
  /**
   * Unreadable records themselves (`kind: "unreadable-das-record"`, sent by the function),
   * and batches that still failed after the retries (Kinesis metadata: shard, sequence range).
   */
  readonly failureQueue: sqs.Queue;
  /** Lambda errors or anything in the failure queue: activity may be unread. */
  readonly failureAlarm: cloudwatch.Alarm;
  /** The oldest unread record is more than 15 minutes old. */
  readonly lagAlarm: cloudwatch.Alarm;
  /** No record of the cluster's stream was read for `quietMinutes`: the stream may be stopped. */
  readonly quietAlarm: cloudwatch.Alarm;
  private readonly props: ActivityStreamDecryptFunctionProps;

  constructor(scope: Construct, id: string, props: ActivityStreamDecryptFunctionProps) {
    super(scope, id);
    this.props = props;
    this.function = bundledFunction(this, 'Function', {
      entry: 'src/lambda/das-decrypt/index.ts',
      description:
        'Access audit: decrypts the Database Activity Stream and alerts on it with the access-audit rules',
      timeout: Duration.minutes(2),
      // The Encryption SDK and gunzip are CPU-bound: more memory is more CPU.
      memorySize: 1024,
      logRetention: props.logRetention ?? logs.RetentionDays.ONE_YEAR,
    });
    const fn = this.function;
    fn.addEnvironment(ENV.topicArn, props.alertTopic.topic.topicArn);
    fn.addEnvironment(
      ENV.config,
      settingsConfigJson(props.config, 'ActivityStreamDecryptFunction'),
    );
    fn.addEnvironment(CLUSTER_RESOURCE_ID_ENV, props.clusterResourceId);
    fn.addEnvironment('POWERTOOLS_SERVICE_NAME', props.serviceName ?? DEFAULT_SERVICE_NAME);
    fn.addEnvironment(
      'POWERTOOLS_METRICS_NAMESPACE',
      props.metricsNamespace ?? DEFAULT_METRICS_NAMESPACE,
    );
    props.alertTopic.grantPublish(fn);
    if (props.forwardQueue) {
      fn.addEnvironment(ENV.queueUrl, props.forwardQueue.queueUrl);
      props.forwardQueue.grantSendMessages(fn);
    }
    this.failureQueue = new sqs.Queue(this, 'Failures', {
      encryption: sqs.QueueEncryption.KMS,
      encryptionMasterKey: props.alertTopic.key,
      enforceSSL: true,
      retentionPeriod: Duration.days(14),
      removalPolicy: props.removalPolicy ?? RemovalPolicy.RETAIN,
    });
    // Unreadable records go here themselves (not only their range), so the batch goes on.
    fn.addEnvironment(FAILURE_QUEUE_ENV, this.failureQueue.queueUrl);
    this.failureQueue.grantSendMessages(fn);
    acknowledge(
      this.failureQueue,
      'this queue is itself the failure destination: nothing is retried from it automatically',
      'AwsSolutions-SQS3',
    );
    acknowledge(
      fn,
      'publishing to the KMS-encrypted topic and failure queue needs kms:GenerateDataKey* and kms:ReEncrypt* on the alert key (CDK grant)',
      'AwsSolutions-IAM5[Action::kms:GenerateDataKey*]',
      'AwsSolutions-IAM5[Action::kms:ReEncrypt*]',
    );
    this.failureAlarm = this.createFailureAlarm();
    this.lagAlarm = this.createLagAlarm();
    this.quietAlarm = this.createQuietAlarm();
  }

  /**
   * One of the cluster's stream metrics ({@link DAS_STREAM_METRICS}), summed per minute,
   * under the dimensions the function publishes it with.
   */
  metricStream(
    name: (typeof DAS_STREAM_METRICS)[keyof typeof DAS_STREAM_METRICS],
    props: cloudwatch.MetricOptions = {},
  ): cloudwatch.Metric {
    return new cloudwatch.Metric({
      namespace: this.props.metricsNamespace ?? DEFAULT_METRICS_NAMESPACE,
      metricName: name,
      dimensionsMap: {
        service: this.props.serviceName ?? DEFAULT_SERVICE_NAME,
        [DAS_CLUSTER_DIMENSION]: this.props.clusterResourceId,
      },
      statistic: cloudwatch.Stats.SUM,
      period: Duration.minutes(1),
      ...props,
    });
  }

  /** Adds the stream's alarms and its records and heartbeats to `dashboard` (the access-audit one). */
  addToDashboard(dashboard: cloudwatch.Dashboard): void {
    dashboard.addWidgets(
      new cloudwatch.AlarmStatusWidget({
        title: 'Database Activity Stream alarms',
        alarms: [this.quietAlarm, this.failureAlarm, this.lagAlarm],
        width: 8,
      }),
      new cloudwatch.GraphWidget({
        title: 'Database Activity Stream: records read (activity or heartbeat) and heartbeats',
        left: [
          this.metricStream(DAS_STREAM_METRICS.recordsRead, { label: 'Records read' }),
          this.metricStream(DAS_STREAM_METRICS.heartbeats, { label: 'Heartbeats' }),
        ],
        width: 16,
      }),
    );
  }

  /** Reads `stream` (the cluster's `aws-rds-das-…` stream) from its oldest record. */
  attach(stream: kinesis.IStream): eventSources.KinesisEventSource {
    const source = new eventSources.KinesisEventSource(stream, {
      startingPosition: lambda.StartingPosition.TRIM_HORIZON,
      batchSize: this.props.batchSize ?? 100,
      bisectBatchOnError: true,
      reportBatchItemFailures: true,
      retryAttempts: this.props.retryAttempts ?? 3,
      parallelizationFactor: this.props.parallelizationFactor ?? 1,
      onFailure: new eventSources.SqsDlq(this.failureQueue),
    });
    this.function.addEventSource(source);
    return source;
  }

  private createFailureAlarm(): cloudwatch.Alarm {
    const period = Duration.minutes(5);
    const alarm = new cloudwatch.Alarm(this, 'FailureAlarm', {
      alarmDescription:
        'The Database Activity Stream decrypt function failed or gave up on records (failure queue): activity may be unread. See README "Database Activity Streams".',
      metric: new cloudwatch.MathExpression({
        expression: 'FILL(errors, 0) + FILL(failed, 0)',
        usingMetrics: {
          errors: this.function.metricErrors({ period, statistic: cloudwatch.Stats.SUM }),
          failed: this.failureQueue.metricApproximateNumberOfMessagesVisible({
            period,
            statistic: cloudwatch.Stats.MAXIMUM,
          }),
        },
        period,
        label: 'DAS decrypt failures',
      }),
      threshold: 1,
      comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
      evaluationPeriods: 1,
      treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
    });
    this.notify(alarm);
    return alarm;
  }

  private createLagAlarm(): cloudwatch.Alarm {
    const alarm = new cloudwatch.Alarm(this, 'LagAlarm', {
      alarmDescription:
        'The Database Activity Stream decrypt function is more than 15 minutes behind the stream: alerts are late, and records older than the stream retention period are lost unread.',
      metric: new cloudwatch.Metric({
        namespace: 'AWS/Lambda',
        metricName: 'IteratorAge',
        dimensionsMap: { FunctionName: this.function.functionName },
        statistic: cloudwatch.Stats.MAXIMUM,
        period: Duration.minutes(5),
      }),
      threshold: Duration.minutes(15).toMilliseconds(),
      comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
      evaluationPeriods: 1,
      treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
    });
    this.notify(alarm);
    return alarm;
  }

  /**
   * A stopped stream (or cluster, or a function that opens nothing) publishes nothing at
   * all, so missing data breaches: the alarm fires after `quietMinutes` one-minute periods
   * in which no record of the cluster's was read. AWS documents heartbeat events on an
   * idle stream but not their interval (see README "The stream went quiet"), hence a
   * window of many minutes, configurable.
   */
  private createQuietAlarm(): cloudwatch.Alarm {
    const minutes = this.props.quietMinutes ?? 15;
    const alarm = new cloudwatch.Alarm(this, 'QuietAlarm', {
      alarmDescription: `The Database Activity Stream went quiet: no record (activity or heartbeat) of the cluster's stream was read for ${minutes} minutes. The stream may have been stopped (StopActivityStream), the cluster stopped, or the decrypt function may read nothing. See README "The stream went quiet".`,
      metric: this.metricStream(DAS_STREAM_METRICS.recordsRead),
      threshold: 1,
      comparisonOperator: cloudwatch.ComparisonOperator.LESS_THAN_THRESHOLD,
      evaluationPeriods: minutes,
      datapointsToAlarm: minutes,
      treatMissingData: cloudwatch.TreatMissingData.BREACHING,
    });
    this.notify(alarm);
    return alarm;
  }

  private notify(alarm: cloudwatch.Alarm): void {
    alarm.addAlarmAction(new cloudwatchActions.SnsAction(this.props.alertTopic.topic));
    alarm.addOkAction(new cloudwatchActions.SnsAction(this.props.alertTopic.topic));
  }
}

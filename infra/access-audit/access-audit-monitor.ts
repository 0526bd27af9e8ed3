import { Annotations, CfnOutput, Duration, RemovalPolicy, Stack } from 'aws-cdk-lib';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as cloudwatchActions from 'aws-cdk-lib/aws-cloudwatch-actions';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as lambdaDestinations from 'aws-cdk-lib/aws-lambda-destinations';
import type * as nodejs from 'aws-cdk-lib/aws-lambda-nodejs';
import * as logs from 'aws-cdk-lib/aws-logs';
import * as logsDestinations from 'aws-cdk-lib/aws-logs-destinations';
import * as sns from 'aws-cdk-lib/aws-sns';
import * as sqs from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';
import {
  accessAuditSchema,
  type AccessAuditConfig,
  type AccessAuditConfigInput,
} from '../../src/config/access-audit';
import {
  ACCESS_AUDIT_METRICS,
  DEFAULT_METRICS_NAMESPACE,
  DEFAULT_SERVICE_NAME,
} from '../../src/lambda/access-alert/metrics';
import { ENV, settingsConfigJson } from '../../src/lambda/access-alert/settings';
import { AlertTopic } from '../constructs/alert-topic';
import { AccessAuditCanary, type CanaryConnection } from './access-audit-canary';
import { humanActivity, runbookQueries } from './insights';
import { accessAuditLogRetention } from './parameters';
import { bundledFunction } from '../constructs/bundled-function';
import { acknowledge } from '../nag';

/** Props of {@link AccessAuditMonitor}. */
export interface AccessAuditMonitorProps {
  /**
   * The source cluster's PostgreSQL log group (RDS creates
   * `/aws/rds/cluster/<id>/postgresql` when `postgresql` log export is on).
   * Give this or `clusterIdentifier`.
   * @default imported from `clusterIdentifier`
   */
  readonly logGroup?: logs.ILogGroup;
  /**
   * Identifier of the source cluster, used to import its PostgreSQL log group when
   * `logGroup` is not given.
   * @default none (then `logGroup` is required)
   */
  readonly clusterIdentifier?: string;
  /**
   * Retention to apply to the PostgreSQL log group (the log group is the audit record).
   * `'unchanged'` leaves it alone: for a cluster whose own stack already sets it (for
   * example SourceDatabase's `logRetention`), or a `logGroup` you manage.
   * @default for a log group imported by `clusterIdentifier` (an existing cluster),
   * `accessAudit.logRetentionDays` (365 days); for a given `logGroup`, unchanged
   */
  readonly postgresLogRetention?: logs.RetentionDays | 'unchanged';
  /**
   * The `accessAudit` config section (validated here; defaults applied).
   * @default all defaults: built-in rules, no subscriptions, no queue
   */
  readonly config?: AccessAuditConfigInput | AccessAuditConfig;
  /**
   * Which log events reach the Lambda. pgAudit records and the CONTEXT lines the
   * forgery check reads matter, so the filter keeps connection lines from costing
   * invocations; refused attempts to change a pgaudit setting (`audit-tampering`) are
   * read from the ERROR, STATEMENT and FATAL lines, and raw forwarding (`sqs.format` raw
   * or both) needs the ERROR and STATEMENT lines of failed statements. A custom pattern
   * must keep CONTEXT lines, or forged records pass as genuine, and ERROR, STATEMENT and
   * FATAL lines, or refused attempts pass unseen.
   * @default FilterPattern.anyTerm(...subscriptionFilterTerms(config)): 'AUDIT', 'CONTEXT', 'ERROR', 'STATEMENT', 'FATAL'; without `defaultRules.auditTampering`, 'AUDIT', 'CONTEXT' (and 'ERROR', 'STATEMENT' with raw forwarding)
   */
  readonly filterPattern?: logs.IFilterPattern;
  /**
   * Powertools service name: the `service` dimension of every metric.
   * @default "access-audit-monitor"
   */
  readonly serviceName?: string;
  /** CloudWatch namespace of the monitor's metrics. @default "AuditTrail/AccessAudit" */
  readonly metricsNamespace?: string;
  /** Retention of the Lambda's own log group (it holds every alert as a structured line). @default RetentionDays.ONE_YEAR */
  readonly functionLogRetention?: logs.RetentionDays;
  /** Removal policy of the KMS key and queues. @default RemovalPolicy.RETAIN */
  readonly removalPolicy?: RemovalPolicy;
  /**
   * The alert topic to publish to, for example the pipeline stack's, so both halves of the
   * kit alert through one topic. The config's e-mails and HTTPS endpoints are subscribed to it.
   * @default a new {@link AlertTopic}
   */
  readonly alertTopic?: AlertTopic;
  /** Create the CloudWatch dashboard. @default true */
  readonly dashboard?: boolean;
  /**
   * Where the liveness canary logs in (`accessAudit.canary` sets its role and schedule).
   * Without it nothing notices a pgAudit that went silent, and synthesis warns.
   * @default no canary (a synthesis warning)
   */
  readonly canary?: CanaryConnection;
}

/**
 * Access-audit alerting for one source cluster: a CloudWatch Logs subscription on
 * the PostgreSQL log sends pgAudit records to the alert Lambda, which drops noise and
 * service accounts, applies the rules and publishes to an encrypted SNS topic (and
 * optionally an encrypted SQS queue with a dead-letter queue). Alarms on human
 * activity and on the monitor's own errors notify the same topic; a dashboard shows
 * activity, recent alerts and alarm state.
 *
 * pgAudit itself is configured on the cluster with {@link pgauditClusterParameters}
 * (parameter group) and `audit-trail pgaudit setup` (extension and roles).
 */
export class AccessAuditMonitor extends Construct {
  /** The validated config. */
  readonly config: AccessAuditConfig;
  /** The PostgreSQL log group the subscription reads. */
  readonly logGroup: logs.ILogGroup;
  /** Customer-managed key of the topic and queues (the alert topic's); CloudWatch alarms may use it. */
  readonly key: kms.Key;
  /** Alerts and alarm notifications. */
  readonly topic: sns.Topic;
  /** The optional forward queue (`accessAudit.sqs.enabled`). */
  readonly queue?: sqs.Queue;
  /** The alert Lambda. */
  readonly function: nodejs.NodejsFunction;
  /** Invocations that still failed after Lambda's retries, kept for replay. */
  readonly failedInvocations: sqs.Queue;
  /** Fires when humans ran anything a rule alerts on. */
  readonly humanActivityAlarm: cloudwatch.Alarm;
  /** Fires when the monitor fails: Lambda errors, delivery failures, unreadable records. */
  readonly monitorErrorsAlarm: cloudwatch.Alarm;
  /** The liveness canary, when `canary` was given. */
  readonly canary?: AccessAuditCanary;
  readonly dashboard?: cloudwatch.Dashboard;
  /** The runbook's saved Logs Insights queries over the PostgreSQL log (none for a log format they cannot parse). */
  readonly queryDefinitions: logs.QueryDefinition[];

  private readonly serviceName: string;
  private readonly namespace: string;
  private readonly filterPattern: logs.IFilterPattern;

  constructor(scope: Construct, id: string, props: AccessAuditMonitorProps) {
    super(scope, id);
    this.config = parseConfig(props.config);
    this.logGroup = resolveLogGroup(this, props);
    const retention =
      props.postgresLogRetention ??
      (props.logGroup === undefined ? accessAuditLogRetention(this.config) : 'unchanged');
    if (retention !== 'unchanged') this.applyLogRetention(retention);
    this.serviceName = props.serviceName ?? DEFAULT_SERVICE_NAME;
    this.namespace = props.metricsNamespace ?? DEFAULT_METRICS_NAMESPACE;
    const removalPolicy = props.removalPolicy ?? RemovalPolicy.RETAIN;

    const alerts =
      props.alertTopic ??
      new AlertTopic(this, 'Alerts', {
        displayName: 'Access audit alerts',
        keyDescription: 'Access audit alerts: SNS topic and SQS queues',
        removalPolicy,
      });
    alerts.subscribe(this.config.alerts);
    this.key = alerts.key;
    this.topic = alerts.topic;
    this.queue = this.config.sqs.enabled ? this.createForwardQueue(removalPolicy) : undefined;
    this.failedInvocations = this.encryptedQueue('FailedInvocations', removalPolicy, {
      retentionPeriod: Duration.days(14),
    });
    this.function = this.createFunction(props);
    this.filterPattern = props.filterPattern ?? defaultFilterPattern(this.config);
    new logs.SubscriptionFilter(this, 'Subscription', {
      logGroup: this.logGroup,
      destination: new logsDestinations.LambdaDestination(this.function),
      filterPattern: this.filterPattern,
    });
    if (this.queue) {
      new CfnOutput(this, 'ForwardQueueUrl', {
        value: this.queue.queueUrl,
        description: `access-audit forward queue (sqs.forward ${this.config.sqs.forward}, format ${this.config.sqs.format}); consumers need sqs:ReceiveMessage/DeleteMessage on it and kms:Decrypt on its key`,
      });
      new CfnOutput(this, 'ForwardQueueArn', { value: this.queue.queueArn });
    }
    this.humanActivityAlarm = this.createHumanActivityAlarm();
    this.monitorErrorsAlarm = this.createMonitorErrorsAlarm();
    if (props.canary) {
      this.canary = new AccessAuditCanary(this, 'Canary', {
        settings: this.config.canary,
        connection: props.canary,
        canarySeen: this.metric(ACCESS_AUDIT_METRICS.canarySeen),
        topic: this.topic,
        ...(props.functionLogRetention && { logRetention: props.functionLogRetention }),
      });
    } else {
      Annotations.of(this).addWarningV2(
        'audit-trail:access-audit-no-canary',
        'AccessAuditMonitor without a canary: a pgAudit that stops logging (extension dropped, role settings changed, log export off) raises no alarm. Give the canary prop (buildApp: deployment.source.canarySecretArn for an existing source).',
      );
    }
    this.queryDefinitions = this.createQueryDefinitions();
    if (props.dashboard ?? true) this.dashboard = this.createDashboard();
  }

  /**
   * Subscribes the alert Lambda to one more PostgreSQL log group (the target's, say), with
   * the same filter and rules: a second database alerts like the first.
   */
  watch(id: string, logGroup: logs.ILogGroup, filterPattern?: logs.IFilterPattern): void {
    new logs.SubscriptionFilter(this, id, {
      logGroup,
      destination: new logsDestinations.LambdaDestination(this.function),
      filterPattern: filterPattern ?? this.filterPattern,
    });
  }

  /** A metric the alert Lambda publishes, e.g. `metric(ACCESS_AUDIT_METRICS.alerts)`. */
  metric(name: string, options: cloudwatch.MetricOptions = {}): cloudwatch.Metric {
    return new cloudwatch.Metric({
      namespace: this.namespace,
      metricName: name,
      dimensionsMap: { service: this.serviceName },
      statistic: cloudwatch.Stats.SUM,
      period: Duration.minutes(this.config.alerts.alarmPeriodMinutes),
      ...options,
    });
  }

  private applyLogRetention(retention: logs.RetentionDays): void {
    const setter = new logs.LogRetention(this, 'PostgresLogRetention', {
      logGroupName: this.logGroup.logGroupName,
      retention,
    });
    // The retention setter is a singleton function aws-cdk-lib provides for the stack.
    const provider = Stack.of(this).node.tryFindChild(
      'LogRetentionaae0aa3c5b4d4f87b02d85b201efdd8a',
    );
    if (provider) {
      acknowledge(
        provider,
        'aws-cdk-lib log-retention function: writes its own logs with the basic execution policy',
        'AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole]',
      );
      acknowledge(
        provider,
        'aws-cdk-lib log-retention function: PutRetentionPolicy/DeleteRetentionPolicy on log groups named at deploy time',
        'AwsSolutions-IAM5[Resource::*]',
      );
    }
    void setter;
  }

  private createForwardQueue(removalPolicy: RemovalPolicy): sqs.Queue {
    const fifo = this.config.sqs.fifo;
    const deadLetterQueue = this.encryptedQueue('ForwardDeadLetters', removalPolicy, {
      retentionPeriod: Duration.days(14),
      ...(fifo ? { fifo: true } : {}),
    });
    return this.encryptedQueue('Forward', removalPolicy, {
      retentionPeriod: Duration.days(this.config.sqs.retentionDays),
      deadLetterQueue: { queue: deadLetterQueue, maxReceiveCount: 5 },
      // Deduplication ids are the CloudWatch log event ids, set by the Lambda.
      ...(fifo ? { fifo: true, contentBasedDeduplication: false } : {}),
    });
  }

  private encryptedQueue(
    id: string,
    removalPolicy: RemovalPolicy,
    props: sqs.QueueProps,
  ): sqs.Queue {
    const queue = new sqs.Queue(this, id, {
      encryption: sqs.QueueEncryption.KMS,
      encryptionMasterKey: this.key,
      enforceSSL: true,
      removalPolicy,
      ...props,
    });
    if (props.deadLetterQueue === undefined) {
      acknowledge(
        queue,
        'this queue is itself a dead-letter queue: nothing is retried from it automatically',
        'AwsSolutions-SQS3',
      );
    }
    return queue;
  }

  private createFunction(props: AccessAuditMonitorProps): nodejs.NodejsFunction {
    const fn = bundledFunction(this, 'AlertFunction', {
      entry: 'src/lambda/access-alert/index.ts',
      description:
        'Access audit: parses pgAudit records from the PostgreSQL log and alerts on human activity',
      timeout: Duration.minutes(1),
      memorySize: 512,
      logRetention: props.functionLogRetention ?? logs.RetentionDays.ONE_YEAR,
    });
    fn.addEnvironment(ENV.topicArn, this.topic.topicArn);
    if (this.queue) fn.addEnvironment(ENV.queueUrl, this.queue.queueUrl);
    fn.addEnvironment(ENV.config, settingsConfigJson(this.config, 'AccessAuditMonitor'));
    fn.addEnvironment('POWERTOOLS_SERVICE_NAME', this.serviceName);
    fn.addEnvironment('POWERTOOLS_METRICS_NAMESPACE', this.namespace);
    this.topic.grantPublish(fn);
    this.queue?.grantSendMessages(fn);
    // CloudWatch Logs invokes asynchronously: two retries, then the event is kept for replay.
    fn.configureAsyncInvoke({
      retryAttempts: 2,
      maxEventAge: Duration.hours(6),
      onFailure: new lambdaDestinations.SqsDestination(this.failedInvocations),
    });
    acknowledge(
      fn,
      'publishing to the KMS-encrypted topic/queue needs kms:GenerateDataKey* and kms:ReEncrypt* on that one key (CDK grant)',
      'AwsSolutions-IAM5[Action::kms:GenerateDataKey*]',
      'AwsSolutions-IAM5[Action::kms:ReEncrypt*]',
    );
    return fn;
  }

  private createHumanActivityAlarm(): cloudwatch.Alarm {
    const alarm = new cloudwatch.Alarm(this, 'HumanActivityAlarm', {
      alarmDescription:
        'Humans ran statements an access-audit rule alerts on (DML on application tables, privilege changes, DDL). See README "When an alert fires".',
      metric: this.metric(ACCESS_AUDIT_METRICS.alerts),
      threshold: this.config.alerts.alarmThreshold,
      comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
      evaluationPeriods: 1,
      treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
    });
    alarm.addAlarmAction(new cloudwatchActions.SnsAction(this.topic));
    // Back to OK is sent too, so an incident platform subscribed to the topic auto-closes.
    alarm.addOkAction(new cloudwatchActions.SnsAction(this.topic));
    return alarm;
  }

  private createMonitorErrorsAlarm(): cloudwatch.Alarm {
    const period = Duration.minutes(5);
    const alarm = new cloudwatch.Alarm(this, 'MonitorErrorsAlarm', {
      alarmDescription:
        'The access-audit monitor failed: Lambda errors, SNS/SQS delivery failures or unreadable pgAudit records. Alerts may be missing.',
      metric: new cloudwatch.MathExpression({
        expression: 'FILL(lambdaErrors, 0) + FILL(monitorErrors, 0) + FILL(parseErrors, 0)',
        usingMetrics: {
          lambdaErrors: this.function.metricErrors({ period, statistic: cloudwatch.Stats.SUM }),
          monitorErrors: this.metric(ACCESS_AUDIT_METRICS.monitorErrors, { period }),
          parseErrors: this.metric(ACCESS_AUDIT_METRICS.parseErrors, { period }),
        },
        period,
        label: 'Monitor errors',
      }),
      threshold: 1,
      comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
      evaluationPeriods: 1,
      treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
    });
    alarm.addAlarmAction(new cloudwatchActions.SnsAction(this.topic));
    alarm.addOkAction(new cloudwatchActions.SnsAction(this.topic));
    return alarm;
  }

  private createQueryDefinitions(): logs.QueryDefinition[] {
    const queries = runbookQueries(this.config);
    if (queries.length === 0)
      Annotations.of(this).addWarningV2(
        'audit-trail:access-audit-no-queries',
        'No saved Logs Insights queries: they read the RDS stderr prefix or jsonlog, and this log is neither.',
      );
    return queries.map(
      ({ name, query }) =>
        new logs.QueryDefinition(this, `Query-${name}`, {
          queryDefinitionName: `audit-trail/${Stack.of(this).stackName}/access-audit/${name}`,
          queryString: query,
          logGroups: [this.logGroup],
        }),
    );
  }

  private createDashboard(): cloudwatch.Dashboard {
    const dashboard = new cloudwatch.Dashboard(this, 'Dashboard', {
      defaultInterval: Duration.days(1),
    });
    dashboard.addWidgets(
      new cloudwatch.AlarmStatusWidget({
        title: 'Access audit alarms',
        alarms: [
          this.humanActivityAlarm,
          this.monitorErrorsAlarm,
          ...(this.canary ? [this.canary.alarm] : []),
        ],
        width: 8,
        height: 8,
      }),
      new cloudwatch.LogQueryWidget({
        title: 'Recent human activity (pgAudit records of roles that are not service accounts)',
        logGroupNames: [this.logGroup.logGroupName],
        queryString: humanActivity(this.config).toString(),
        view: cloudwatch.LogQueryVisualizationType.TABLE,
        width: 16,
        height: 8,
      }),
    );
    dashboard.addWidgets(
      new cloudwatch.GraphWidget({
        title: 'Human activity (alerts)',
        left: [
          this.metric(ACCESS_AUDIT_METRICS.humanDml, { label: 'Human DML' }),
          this.metric(ACCESS_AUDIT_METRICS.humanReads, { label: 'Human reads' }),
          this.metric(ACCESS_AUDIT_METRICS.privilegeChanges, { label: 'Privilege changes' }),
          this.metric(ACCESS_AUDIT_METRICS.ddl, { label: 'DDL' }),
          this.metric(ACCESS_AUDIT_METRICS.alerts, { label: 'All alerts' }),
        ],
        width: 12,
      }),
      new cloudwatch.GraphWidget({
        title: 'pgAudit records',
        left: [
          this.metric(ACCESS_AUDIT_METRICS.auditEvents, { label: 'Parsed' }),
          this.metric(ACCESS_AUDIT_METRICS.noise, { label: 'Tool noise dropped' }),
          this.metric(ACCESS_AUDIT_METRICS.excluded, { label: 'Excluded by config' }),
          this.metric(ACCESS_AUDIT_METRICS.canarySeen, { label: 'Canary seen' }),
        ],
        right: [
          this.metric(ACCESS_AUDIT_METRICS.parseErrors, { label: 'Unreadable' }),
          this.metric(ACCESS_AUDIT_METRICS.monitorErrors, { label: 'Delivery failures' }),
          this.function.metricErrors({ label: 'Lambda errors' }),
        ],
        width: 12,
      }),
    );
    dashboard.addWidgets(
      new cloudwatch.LogQueryWidget({
        title: 'Recent access alerts',
        logGroupNames: [this.function.logGroup.logGroupName],
        queryLines: [
          'fields @timestamp, severity, rule, user, database, remoteHost, command, objectName',
          'filter message = "access alert"',
          'sort @timestamp desc',
          'limit 50',
        ],
        width: 24,
        height: 8,
      }),
    );
    return dashboard;
  }
}

/**
 * The terms of the default subscription filter: a log event reaches the Lambda when it
 * holds any of them. pgAudit records (`AUDIT`), and `CONTEXT` lines: in a stderr log
 * the CONTEXT that marks a `RAISE LOG 'AUDIT: …'` forgery is a log event of its own,
 * and without it the forgery check would take every forgery as genuine. The ERROR and
 * STATEMENT lines of failed statements, and FATAL lines (a connection refused at
 * startup), with `audit-tampering` on: a refused `SET pgaudit.log = 'none'` leaves no
 * record, only them (`audit-tampering-attempt`). Raw forwarding also takes ERROR and
 * STATEMENT lines.
 */
export function subscriptionFilterTerms(config: AccessAuditConfig): string[] {
  const raw = config.sqs.enabled && config.sqs.forward === 'events' && config.sqs.format !== 'kit';
  const attempts = config.defaultRules.auditTampering;
  return [
    'AUDIT',
    'CONTEXT',
    ...(attempts || raw ? ['ERROR', 'STATEMENT'] : []),
    ...(attempts ? ['FATAL'] : []),
  ];
}

function defaultFilterPattern(config: AccessAuditConfig): logs.IFilterPattern {
  return logs.FilterPattern.anyTerm(...subscriptionFilterTerms(config));
}

function parseConfig(
  config: AccessAuditConfigInput | AccessAuditConfig | undefined,
): AccessAuditConfig {
  const parsed = accessAuditSchema.safeParse(config ?? {});
  if (!parsed.success) {
    const issues = parsed.error.issues.map(
      (issue) => `accessAudit.${issue.path.join('.')}: ${issue.message}`,
    );
    throw new Error(`AccessAuditMonitor: invalid config:\n${issues.join('\n')}`);
  }
  return parsed.data;
}

function resolveLogGroup(scope: Construct, props: AccessAuditMonitorProps): logs.ILogGroup {
  if (props.logGroup) return props.logGroup;
  if (props.clusterIdentifier) {
    return logs.LogGroup.fromLogGroupName(
      scope,
      'PostgresLog',
      `/aws/rds/cluster/${props.clusterIdentifier}/postgresql`,
    );
  }
  throw new Error('AccessAuditMonitor: give logGroup or clusterIdentifier');
}

import { Duration, Fn } from 'aws-cdk-lib';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as actions from 'aws-cdk-lib/aws-cloudwatch-actions';
import * as dms from 'aws-cdk-lib/aws-dms';
import type * as sns from 'aws-cdk-lib/aws-sns';
import { Construct } from 'constructs';
import type { AlertTopic } from './alert-topic';

/** Props of {@link ReplicationAlarms}. */
export interface ReplicationAlarmsProps {
  /** `task` (replication instance) or `serverless`. */
  readonly kind: 'task' | 'serverless';
  /** The task (or replication config) identifier. */
  readonly replicationIdentifier: string;
  /** The task (or replication config) ARN. */
  readonly replicationArn: string;
  /** The replication instance identifier (kind `task`). */
  readonly instanceIdentifier?: string;
  /** Alarm when CDC latency stays above this many seconds for 15 minutes. @default 300 */
  readonly cdcLatencySeconds?: number;
  /** The shared alert topic the alarms and DMS events notify. */
  readonly alertTopic: AlertTopic;
}

/**
 * Tells people when the change history stops flowing, through the shared alert topic:
 * CloudWatch alarms on the task's source and target CDC latency, and a DMS
 * event subscription for task failures and state changes (a failed task publishes no
 * latency, so the latency alarms alone would stay silent).
 */
export class ReplicationAlarms extends Construct {
  readonly topic: sns.Topic;
  readonly latencyAlarms: cloudwatch.Alarm[];
  /** DMS event subscription (kind `task`; DMS events name tasks and instances only). */
  readonly failureSubscription?: dms.CfnEventSubscription;

  constructor(scope: Construct, id: string, props: ReplicationAlarmsProps) {
    super(scope, id);
    this.topic = props.alertTopic.topic;

    const dimensionsMap: Record<string, string> =
      props.kind === 'task'
        ? {
            ReplicationInstanceIdentifier: props.instanceIdentifier ?? '',
            // CloudWatch names a task by the resource id at the end of its ARN.
            ReplicationTaskIdentifier: Fn.select(6, Fn.split(':', props.replicationArn)),
          }
        : { ReplicationConfigIdentifier: props.replicationIdentifier };
    const threshold = props.cdcLatencySeconds ?? 300;
    this.latencyAlarms = (['Source', 'Target'] as const).map((side) => {
      const alarm = new cloudwatch.Alarm(this, `CdcLatency${side}`, {
        alarmDescription: `audit-trail: DMS CDC ${side.toLowerCase()} latency above ${threshold} s for 15 minutes`,
        metric: new cloudwatch.Metric({
          namespace: 'AWS/DMS',
          metricName: `CDCLatency${side}`,
          dimensionsMap,
          statistic: 'Maximum',
          period: Duration.minutes(5),
        }),
        threshold,
        evaluationPeriods: 3,
        comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
        // No data means a stopped or failed task: the event subscription reports that.
        treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
      });
      alarm.addAlarmAction(new actions.SnsAction(this.topic));
      alarm.addOkAction(new actions.SnsAction(this.topic));
      return alarm;
    });

    if (props.kind !== 'task') return;
    this.failureSubscription = new dms.CfnEventSubscription(this, 'TaskEvents', {
      snsTopicArn: this.topic.topicArn,
      sourceType: 'replication-task',
      sourceIds: [props.replicationIdentifier],
      eventCategories: ['failure', 'state change'],
      enabled: true,
    });
  }
}

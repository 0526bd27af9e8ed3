import { Duration } from 'aws-cdk-lib';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as cloudwatchActions from 'aws-cdk-lib/aws-cloudwatch-actions';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as events from 'aws-cdk-lib/aws-events';
import * as targets from 'aws-cdk-lib/aws-events-targets';
import type * as nodejs from 'aws-cdk-lib/aws-lambda-nodejs';
import type * as logs from 'aws-cdk-lib/aws-logs';
import type * as secretsmanager from 'aws-cdk-lib/aws-secretsmanager';
import type * as sns from 'aws-cdk-lib/aws-sns';
import { Construct } from 'constructs';
import type { AccessAuditConfig } from '../../src/config/access-audit';
import { CANARY_ENV } from '../../src/lambda/access-canary/handler';
import { bundledFunction } from '../constructs/bundled-function';

/** Where the canary logs in: the source database, as the canary role. */
export interface CanaryConnection {
  /**
   * Secret with the canary role's `username` and `password` (and `host`/`port` when not
   * given here). The username must be `accessAudit.canary.role`; the Lambda refuses any
   * other login.
   */
  readonly secret: secretsmanager.ISecret;
  /** A database of the source where `audit-trail pgaudit setup` ran. */
  readonly databaseName: string;
  /** Host name. @default read from the secret */
  readonly host?: string;
  /** Port. @default read from the secret, else 5432 */
  readonly port?: number;
  /** The VPC the source is reachable in. */
  readonly vpc: ec2.IVpc;
  /** Subnets for the Lambda. @default private subnets with egress */
  readonly vpcSubnets?: ec2.SubnetSelection;
  /**
   * Add an HTTPS egress rule to the VPC's CIDR, for a Secrets Manager interface endpoint in
   * the VPC. Set false when you open the way to Secrets Manager yourself (as `buildApp`
   * does through the kit's network), or when the VPC was imported without its CIDR.
   * @default true
   */
  readonly secretsManagerEgress?: boolean;
  /**
   * The source database (cluster or instance): the canary's security group is allowed
   * to reach it on `port`, and it to accept the canary.
   * @default none: allow the canary's security group yourself
   */
  readonly database?: ec2.IConnectable;
}

/** Props of {@link AccessAuditCanary}. */
export interface AccessAuditCanaryProps {
  /** `accessAudit.canary`: role, interval, missed periods before the alarm. */
  readonly settings: AccessAuditConfig['canary'];
  readonly connection: CanaryConnection;
  /** The `CanarySeen` metric the alert Lambda publishes (sum; its period is replaced). */
  readonly canarySeen: cloudwatch.Metric;
  /** Alarm and OK notifications go here. */
  readonly topic: sns.ITopic;
  /** Retention of the canary Lambda's log group. @default RetentionDays.ONE_MONTH */
  readonly logRetention?: logs.RetentionDays;
}

/**
 * The access audit's liveness canary: an EventBridge schedule runs a Lambda inside the
 * VPC that logs in as the canary role and runs one audited statement with a nonce; the
 * alert Lambda recognises the record and publishes `CanarySeen`. The alarm fires when
 * no canary was seen for `missedPeriodsToAlarm` intervals, missing data counting as not
 * seen, so a silent pgAudit (extension gone, role settings changed, log export off,
 * subscription or Lambda broken) pages instead of looking like a quiet database.
 */
export class AccessAuditCanary extends Construct {
  readonly function: nodejs.NodejsFunction;
  readonly securityGroup: ec2.SecurityGroup;
  readonly schedule: events.Rule;
  /** Fires when the canary's record did not reach the alert Lambda in time. */
  readonly alarm: cloudwatch.Alarm;

  constructor(scope: Construct, id: string, props: AccessAuditCanaryProps) {
    super(scope, id);
    const { connection, settings } = props;
    const port = connection.port ?? 5432;
    this.securityGroup = new ec2.SecurityGroup(this, 'SecurityGroup', {
      vpc: connection.vpc,
      description: 'audit-trail access-audit canary Lambda',
      allowAllOutbound: false,
    });
    // Secrets Manager through the VPC's interface endpoint: HTTPS inside the VPC only.
    if (connection.secretsManagerEgress ?? true)
      this.securityGroup.addEgressRule(
        ec2.Peer.ipv4(connection.vpc.vpcCidrBlock),
        ec2.Port.tcp(443),
        'Secrets Manager VPC endpoint',
      );
    if (connection.database)
      this.securityGroup.connections.allowTo(
        connection.database,
        ec2.Port.tcp(port),
        'canary login',
      );
    this.function = bundledFunction(this, 'Function', {
      entry: 'src/lambda/access-canary/index.ts',
      description: 'Access audit canary: runs one audited statement as the canary role',
      timeout: Duration.seconds(30),
      memorySize: 256,
      vpc: connection.vpc,
      ...(connection.vpcSubnets && { vpcSubnets: connection.vpcSubnets }),
      securityGroups: [this.securityGroup],
      ...(props.logRetention && { logRetention: props.logRetention }),
    });
    this.function.addEnvironment(CANARY_ENV.secretArn, connection.secret.secretArn);
    this.function.addEnvironment(CANARY_ENV.database, connection.databaseName);
    this.function.addEnvironment(CANARY_ENV.role, settings.role);
    if (connection.host !== undefined)
      this.function.addEnvironment(CANARY_ENV.host, connection.host);
    if (connection.port !== undefined)
      this.function.addEnvironment(CANARY_ENV.port, String(connection.port));
    connection.secret.grantRead(this.function);

    const interval = Duration.minutes(settings.intervalMinutes);
    this.schedule = new events.Rule(this, 'Schedule', {
      description: 'Access audit canary',
      schedule: events.Schedule.rate(interval),
      // A missed run is not retried: the next one comes within the interval.
      targets: [new targets.LambdaFunction(this.function, { retryAttempts: 0 })],
    });

    this.alarm = new cloudwatch.Alarm(this, 'Alarm', {
      alarmDescription: `The access-audit canary (role ${settings.role}) was not seen for ${settings.missedPeriodsToAlarm} × ${settings.intervalMinutes} min: pgAudit, the log export, the subscription or the alert Lambda is not working, so access goes unaudited. See README "Canary".`,
      metric: props.canarySeen.with({ period: interval, statistic: cloudwatch.Stats.SUM }),
      threshold: 1,
      comparisonOperator: cloudwatch.ComparisonOperator.LESS_THAN_THRESHOLD,
      evaluationPeriods: settings.missedPeriodsToAlarm,
      datapointsToAlarm: settings.missedPeriodsToAlarm,
      // No data is exactly what a silent pipeline looks like.
      treatMissingData: cloudwatch.TreatMissingData.BREACHING,
    });
    this.alarm.addAlarmAction(new cloudwatchActions.SnsAction(props.topic));
    this.alarm.addOkAction(new cloudwatchActions.SnsAction(props.topic));
  }
}

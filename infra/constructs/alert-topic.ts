import { RemovalPolicy, Stack } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as sns from 'aws-cdk-lib/aws-sns';
import * as subscriptions from 'aws-cdk-lib/aws-sns-subscriptions';
import { Construct } from 'constructs';

/** Props of {@link AlertTopic}. */
export interface AlertTopicProps {
  /** Display name of the topic (the sender name of e-mails). @default "audit-trail alerts" */
  readonly displayName?: string;
  /** What the key is for, in its description. @default "audit-trail alert topic" */
  readonly keyDescription?: string;
  /** E-mail addresses subscribed to the topic. @default [] */
  readonly emails?: readonly string[];
  /** HTTPS endpoints subscribed to the topic. @default [] */
  readonly httpsEndpoints?: readonly string[];
  /** Removal policy of the key. @default RemovalPolicy.RETAIN */
  readonly removalPolicy?: RemovalPolicy;
}

/**
 * The one alert topic construct both halves of the kit publish to: a customer-managed
 * KMS key (rotated) and an SNS topic encrypted with it, TLS-only. Besides the account
 * itself, exactly two services may use them, and only on behalf of this account:
 * CloudWatch (alarms of this account and region) and DMS (event subscriptions of this
 * account and region). Lambdas that publish get IAM grants with {@link grantPublish}.
 */
export class AlertTopic extends Construct {
  readonly key: kms.Key;
  readonly topic: sns.Topic;

  constructor(scope: Construct, id: string, props: AlertTopicProps = {}) {
    super(scope, id);
    const { account, region, partition } = Stack.of(this);
    this.key = new kms.Key(this, 'Key', {
      description: props.keyDescription ?? 'audit-trail alert topic',
      enableKeyRotation: true,
      removalPolicy: props.removalPolicy ?? RemovalPolicy.RETAIN,
    });
    this.topic = new sns.Topic(this, 'Topic', {
      displayName: props.displayName ?? 'audit-trail alerts',
      masterKey: this.key,
      enforceSSL: true,
    });
    const publishers = [
      {
        sid: 'CloudWatchAlarmsOfThisAccount',
        service: 'cloudwatch.amazonaws.com',
        sourceArn: `arn:${partition}:cloudwatch:${region}:${account}:alarm:*`,
      },
      {
        sid: 'DmsEventSubscriptionsOfThisAccount',
        service: 'dms.amazonaws.com',
        sourceArn: `arn:${partition}:dms:${region}:${account}:*`,
      },
    ];
    for (const publisher of publishers) {
      const conditions = {
        StringEquals: { 'aws:SourceAccount': account },
        ArnLike: { 'aws:SourceArn': publisher.sourceArn },
      };
      const principals = [new iam.ServicePrincipal(publisher.service)];
      this.topic.addToResourcePolicy(
        new iam.PolicyStatement({
          sid: publisher.sid,
          principals,
          actions: ['sns:Publish'],
          resources: [this.topic.topicArn],
          conditions,
        }),
      );
      // Publishing to an encrypted topic makes SNS ask KMS for a data key on the publisher's behalf.
      this.key.addToResourcePolicy(
        new iam.PolicyStatement({
          sid: publisher.sid,
          principals,
          actions: ['kms:Decrypt', 'kms:GenerateDataKey*'],
          resources: ['*'],
          conditions,
        }),
      );
    }
    this.subscribe(props);
  }

  /** Subscribes e-mail addresses and HTTPS endpoints (each confirms once). */
  subscribe(targets: Pick<AlertTopicProps, 'emails' | 'httpsEndpoints'>): void {
    for (const email of targets.emails ?? [])
      this.topic.addSubscription(new subscriptions.EmailSubscription(email));
    for (const url of targets.httpsEndpoints ?? []) {
      this.topic.addSubscription(
        new subscriptions.UrlSubscription(url, { protocol: sns.SubscriptionProtocol.HTTPS }),
      );
    }
  }

  /** Lets `grantee` publish: sns:Publish on the topic and the key use that needs. */
  grantPublish(grantee: iam.IGrantable): iam.Grant {
    return this.topic.grantPublish(grantee);
  }
}

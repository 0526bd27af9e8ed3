import * as iam from 'aws-cdk-lib/aws-iam';
import type * as secretsmanager from 'aws-cdk-lib/aws-secretsmanager';
import { Construct } from 'constructs';

/**
 * The Data API calls an auditor needs to read history (`history`) and check the chain
 * (`verify --integrity`, which reads in one transaction). `BatchExecuteStatement` is
 * left out: it exists for bulk writes.
 */
export const AUDITOR_DATA_API_ACTIONS = [
  'rds-data:ExecuteStatement',
  'rds-data:BeginTransaction',
  'rds-data:CommitTransaction',
  'rds-data:RollbackTransaction',
] as const;

/** Props of {@link AuditorAccess}. */
export interface AuditorAccessProps {
  /** ARN of the target Aurora cluster, its Data API enabled. */
  readonly clusterArn: string;
  /** The auditors' login secret (reader role); the Data API reads it as the caller. */
  readonly secret: secretsmanager.ISecret;
}

/**
 * A managed policy for auditors: the Data API on the target cluster, as the auditor
 * login, and nothing else. Attach it to the role or group auditors use, then run
 * `audit-trail history ... --target-arn <TargetClusterArn> --secret-arn <AuditorSecretArn>`.
 * The Data API checks `secretsmanager:GetSecretValue` against the caller, so the
 * policy's one secret decides which database login auditors run as: the reader role.
 */
export class AuditorAccess extends Construct {
  readonly policy: iam.ManagedPolicy;

  constructor(scope: Construct, id: string, props: AuditorAccessProps) {
    super(scope, id);
    this.policy = new iam.ManagedPolicy(this, 'Policy', {
      description:
        'audit-trail auditors: read-only history over the RDS Data API on the target, as the auditor login',
      statements: [
        new iam.PolicyStatement({
          sid: 'DataApiOnTheTarget',
          actions: [...AUDITOR_DATA_API_ACTIONS],
          resources: [props.clusterArn],
        }),
        new iam.PolicyStatement({
          sid: 'AuditorLoginSecret',
          actions: ['secretsmanager:GetSecretValue'],
          resources: [props.secret.secretArn],
        }),
      ],
    });
  }
}

import type * as ec2 from 'aws-cdk-lib/aws-ec2';
import type * as logs from 'aws-cdk-lib/aws-logs';
import type { Construct } from 'constructs';
import type { TargetConfig } from '../../src/config/deployment';
import { TLS_PARAMETERS } from './database-defaults';
import { PostgresDatabase } from './postgres-database';

/** Props of {@link TargetDatabase}. */
export interface TargetDatabaseProps {
  readonly vpc: ec2.IVpc;
  readonly subnets: ec2.SubnetSelection;
  /** The validated `deployment.target` section. */
  readonly target: TargetConfig;
  /** Deletion protection and RETAIN (otherwise SNAPSHOT on delete). @default false */
  readonly production?: boolean;
  /** Retention of the exported PostgreSQL log. @default RetentionDays.ONE_MONTH */
  readonly logRetention?: logs.RetentionDays;
  /**
   * More parameters of a new target's parameter group (cluster or instance), merged over
   * the kit's (`rds.force_ssl = 1`).
   * @default {}
   */
  readonly parameters?: Record<string, string>;
  /**
   * Enable the RDS Data API on a new Aurora target, for auditors' queries
   * (`audit-trail history --target-arn`). @default false
   */
  readonly dataApi?: boolean;
}

/**
 * The target: a separate database that holds the staging tables, the audit triggers and
 * the audit log. A new Aurora Serverless v2 cluster by default, or a new RDS for
 * PostgreSQL instance, or an existing one of either imported. Kept apart from the source
 * so application users and admins of the source have no write path to the audit log.
 */
export class TargetDatabase extends PostgresDatabase {
  constructor(scope: Construct, id: string, props: TargetDatabaseProps) {
    const target = props.target;
    super(scope, id, {
      vpc: props.vpc,
      subnets: props.subnets,
      spec: target,
      databaseName: target.databaseName,
      purpose: 'target: staging tables and the audit log',
      ...(target.mode === 'new' && { backupRetentionDays: target.backupRetentionDays }),
      parameters: { ...TLS_PARAMETERS, ...props.parameters },
      ...(props.production !== undefined && { production: props.production }),
      ...(props.logRetention !== undefined && { logRetention: props.logRetention }),
      ...(props.dataApi !== undefined && { dataApi: props.dataApi }),
    });
  }
}

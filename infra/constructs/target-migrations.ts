import { CustomResource, Duration } from 'aws-cdk-lib';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import type * as logs from 'aws-cdk-lib/aws-logs';
import type * as secretsmanager from 'aws-cdk-lib/aws-secretsmanager';
import * as cr from 'aws-cdk-lib/custom-resources';
import { Construct } from 'constructs';
import type { AuditTrailConfig } from '../../src/config';
import type { MigrationsProperties } from '../../src/lambda/migrate-target/handler';
import { currentKitVersion } from '../../src/migrate/kit-version';
import { acknowledgeProviderFramework, bundledFunction } from './bundled-function';

/** One database the migrations connect to. */
export interface MigrationDatabase {
  readonly secret: secretsmanager.ISecret;
  /** Host name; read from the secret when omitted. */
  readonly host?: string;
  readonly port?: number;
  readonly databaseName: string;
}

/** Props of {@link TargetMigrations}. */
export interface TargetMigrationsProps {
  readonly vpc: ec2.IVpc;
  readonly subnets: ec2.SubnetSelection;
  /** The config; its change-history part (audit schema, tables) is passed to the Lambda. */
  readonly config: AuditTrailConfig;
  /** Introspected for columns, types and primary keys. */
  readonly source: MigrationDatabase;
  /** Receives the audit schema, staging tables and triggers. */
  readonly target: MigrationDatabase;
  /** @default RetentionDays.ONE_MONTH */
  readonly logRetention?: logs.RetentionDays;
}

/**
 * Runs the kit's target migrations (`migrateTarget`, the same code as
 * `audit-trail migrate`) from a Lambda inside the VPC at deploy time, as a custom
 * resource. It runs on create, whenever the audited tables change and after every kit
 * upgrade (the kit version is a property of the resource); deleting the stack
 * never drops anything. Make the DMS task depend on it, so staging tables and triggers
 * exist before DMS writes.
 */
export class TargetMigrations extends Construct {
  readonly securityGroup: ec2.SecurityGroup;
  readonly resource: CustomResource;

  constructor(scope: Construct, id: string, props: TargetMigrationsProps) {
    super(scope, id);
    this.securityGroup = new ec2.SecurityGroup(this, 'SecurityGroup', {
      vpc: props.vpc,
      description: 'audit-trail migrations Lambda',
      // Egress only to the two databases and Secrets Manager, added where those are wired.
      allowAllOutbound: false,
    });
    const fn = bundledFunction(this, 'Function', {
      entry: 'src/lambda/migrate-target/handler.ts',
      description: 'audit-trail: target migrations (staging tables, audit log, triggers)',
      timeout: Duration.minutes(10),
      vpc: props.vpc,
      vpcSubnets: props.subnets,
      securityGroups: [this.securityGroup],
      copyFolders: ['triggers'],
      ...(props.logRetention && { logRetention: props.logRetention }),
    });
    props.source.secret.grantRead(fn);
    props.target.secret.grantRead(fn);
    const provider = new cr.Provider(this, 'Provider', { onEventHandler: fn });
    acknowledgeProviderFramework(provider, fn);

    const { auditSchema, tables } = props.config;
    const properties: MigrationsProperties = {
      Config: JSON.stringify({ auditSchema, tables }),
      KitVersion: currentKitVersion(),
      Source: location(props.source),
      Target: location(props.target),
    };
    this.resource = new CustomResource(this, 'Resource', {
      serviceToken: provider.serviceToken,
      resourceType: 'Custom::AuditTrailMigrations',
      properties,
    });
  }
}

function location(database: MigrationDatabase): MigrationsProperties['Source'] {
  return {
    SecretArn: database.secret.secretArn,
    DatabaseName: database.databaseName,
    ...(database.host !== undefined && { Host: database.host }),
    ...(database.port !== undefined && { Port: String(database.port) }),
  };
}

import { CustomResource, Duration } from 'aws-cdk-lib';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import type * as logs from 'aws-cdk-lib/aws-logs';
import * as secretsmanager from 'aws-cdk-lib/aws-secretsmanager';
import * as cr from 'aws-cdk-lib/custom-resources';
import { Construct } from 'constructs';
import type { AuditTrailConfig } from '../../src/config';
import type { LoginsProperties } from '../../src/lambda/database-logins/handler';
import type { DatabaseLocation } from '../../src/lambda/shared/database-url';
import { kitLogins } from '../../src/trust/logins';
import { acknowledgeProviderFramework, bundledFunction } from './bundled-function';
import { PASSWORD_EXCLUDED_CHARACTERS } from './database-defaults';
import type { PostgresDatabase } from './postgres-database';

/** Props of {@link DatabaseLogins}. */
export interface DatabaseLoginsProps {
  readonly vpc: ec2.IVpc;
  readonly subnets: ec2.SubnetSelection;
  /** The config: audit schema, kit role names, audited tables. */
  readonly config: AuditTrailConfig;
  /** Its secret is the administrator (the master user, or for an existing target a login with CREATEROLE). */
  readonly target: PostgresDatabase;
  /**
   * The source, when the kit creates it: DMS then gets a replication login made with its
   * master secret. Leave out for an existing source, whose secret is already a
   * replication user (`rds_replication` and SELECT on the audited tables).
   * @default undefined (DMS and the migrations use the source's own secret)
   */
  readonly source?: PostgresDatabase;
  /**
   * The kit created the target with pgaudit preloaded (see `targetPgauditParameters`):
   * also create the extension and keep the DMS login's writes out of the audit log.
   * @default false
   */
  readonly targetPgaudit?: boolean;
  /** Also create the chain anchor's read-only login (reader role). @default false */
  readonly anchor?: boolean;
  /** Also create the auditors' Data API login (reader role). @default false */
  readonly auditor?: boolean;
  /** @default RetentionDays.ONE_MONTH */
  readonly logRetention?: logs.RetentionDays;
}

/**
 * The logins the deployment's services use instead of the master users, each in its own
 * secret: DMS's target login (the kit's writer role), the migrations' login (owner and
 * capture), and for a kit-created source DMS's replication login. A Lambda in the VPC
 * creates them at deploy time, as custom resource `Custom::AuditTrailLogins`, reading the
 * master secrets; nothing else in the stack reads those. It runs again when the audited
 * tables change (the replication login is granted SELECT on each).
 */
export class DatabaseLogins extends Construct {
  readonly securityGroup: ec2.SecurityGroup;
  readonly resource: CustomResource;
  /** DMS's target login: writer role, its own control schema. */
  readonly dmsSecret: secretsmanager.ISecret;
  /** The migrations' target login: owner and capture roles, CREATE on the database. */
  readonly migratorSecret: secretsmanager.ISecret;
  /** DMS's source login (kit-created source only). */
  readonly replicationSecret?: secretsmanager.ISecret;
  /** The chain anchor's target login (with `anchor`). */
  readonly anchorSecret?: secretsmanager.ISecret;
  /** The auditors' target login for the Data API (with `auditor`). */
  readonly auditorSecret?: secretsmanager.ISecret;

  constructor(scope: Construct, id: string, props: DatabaseLoginsProps) {
    super(scope, id);
    const logins = kitLogins(props.config);
    this.dmsSecret = loginSecret(this, 'DmsSecret', logins.dms, props.target);
    this.migratorSecret = loginSecret(this, 'MigratorSecret', logins.migrator, props.target);
    if (props.source) {
      this.replicationSecret = loginSecret(
        this,
        'ReplicationSecret',
        logins.replication,
        props.source,
      );
    }

    if (props.anchor) {
      this.anchorSecret = loginSecret(this, 'AnchorSecret', logins.anchor, props.target);
    }
    if (props.auditor) {
      this.auditorSecret = loginSecret(this, 'AuditorSecret', logins.auditor, props.target);
    }

    this.securityGroup = new ec2.SecurityGroup(this, 'SecurityGroup', {
      vpc: props.vpc,
      description: 'audit-trail logins Lambda',
      // Egress only to the databases and Secrets Manager, added where those are wired.
      allowAllOutbound: false,
    });
    const fn = bundledFunction(this, 'Function', {
      entry: 'src/lambda/database-logins/handler.ts',
      description: 'audit-trail: creates the DMS and migrations logins (least privilege)',
      timeout: Duration.minutes(5),
      memorySize: 256,
      vpc: props.vpc,
      vpcSubnets: props.subnets,
      securityGroups: [this.securityGroup],
      ...(props.logRetention && { logRetention: props.logRetention }),
    });
    props.target.secret.grantRead(fn);
    this.dmsSecret.grantRead(fn);
    this.migratorSecret.grantRead(fn);
    props.source?.secret.grantRead(fn);
    this.replicationSecret?.grantRead(fn);
    this.anchorSecret?.grantRead(fn);
    this.auditorSecret?.grantRead(fn);
    props.target.allowFrom(this.securityGroup, 'audit-trail logins');
    props.source?.allowFrom(this.securityGroup, 'audit-trail logins');
    const provider = new cr.Provider(this, 'Provider', { onEventHandler: fn });
    acknowledgeProviderFramework(provider, fn);

    const { auditSchema, auditRoles, tables } = props.config;
    const properties: LoginsProperties = {
      Config: JSON.stringify({ auditSchema, auditRoles, tables }),
      TargetAdmin: adminLocation(props.target),
      DmsSecretArn: this.dmsSecret.secretArn,
      MigratorSecretArn: this.migratorSecret.secretArn,
      ...(props.targetPgaudit && { TargetPgaudit: 'true' }),
      ...(this.anchorSecret && { AnchorSecretArn: this.anchorSecret.secretArn }),
      ...(this.auditorSecret && { AuditorSecretArn: this.auditorSecret.secretArn }),
      ...(props.source &&
        this.replicationSecret && {
          SourceAdmin: adminLocation(props.source),
          ReplicationSecretArn: this.replicationSecret.secretArn,
        }),
    };
    this.resource = new CustomResource(this, 'Resource', {
      serviceToken: provider.serviceToken,
      resourceType: 'Custom::AuditTrailLogins',
      properties,
    });
    for (const database of [props.target.resource, props.source?.resource]) {
      if (database) this.resource.node.addDependency(database);
    }
  }
}

function adminLocation(database: PostgresDatabase): DatabaseLocation {
  return {
    SecretArn: database.secret.secretArn,
    Host: database.host,
    Port: String(database.port),
    DatabaseName: database.databaseName,
  };
}

/**
 * A generated secret for one login, in the shape DMS endpoints and the RDS rotation
 * functions read: `engine`, `host`, `port`, `dbname`, `username`, `password` (without
 * the characters DMS rejects).
 */
function loginSecret(
  scope: Construct,
  id: string,
  username: string,
  database: PostgresDatabase,
): secretsmanager.Secret {
  return new secretsmanager.Secret(scope, id, {
    description: `audit-trail login ${username} (${database.databaseName})`,
    generateSecretString: {
      secretStringTemplate: JSON.stringify({
        engine: 'postgres',
        host: database.host,
        port: database.port,
        dbname: database.databaseName,
        username,
      }),
      generateStringKey: 'password',
      excludeCharacters: PASSWORD_EXCLUDED_CHARACTERS,
      passwordLength: 32,
    },
  });
}

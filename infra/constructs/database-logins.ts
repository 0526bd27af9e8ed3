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
import { kitRoles } from '../../src/trust/roles';
import { acknowledgeProviderFramework, bundledFunction } from './bundled-function';
import { PASSWORD_EXCLUDED_CHARACTERS } from './database-defaults';
import type { PostgresDatabase } from './postgres-database';

/** Props of {@link DatabaseLogins}. */
export interface DatabaseLoginsProps {
  readonly vpc: ec2.IVpc;
  readonly subnets: ec2.SubnetSelection;
  /** The config: audit schema, kit role names, audited tables. */
  readonly config: AuditTrailConfig;
  /**
   * The change-history target; its secret is the administrator (the master user, or for
   * an existing target a login with CREATEROLE). Leave out for an access-audit-only
   * config (no tables): then only the source's logins are made.
   * @default undefined (no target logins)
   */
  readonly target?: PostgresDatabase;
  /**
   * The source, when the kit creates it: with a `target`, DMS gets a replication login
   * made with its master secret; with `canaryRole`, the access audit's canary gets its
   * login. Leave out for an existing source, whose secret is already a replication user
   * (`rds_replication` and SELECT on the audited tables) and whose canary login is the
   * operator's (`deployment.source.canarySecretArn`).
   * @default undefined (DMS and the migrations use the source's own secret)
   */
  readonly source?: PostgresDatabase;
  /**
   * `accessAudit.canary.role`: create that login on the `source` (LOGIN only, see
   * `setUpCanaryLogin`) with its own secret, for the access audit's canary.
   * @default undefined (no canary login)
   */
  readonly canaryRole?: string;
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
 * capture), and for a kit-created source DMS's replication login and the access audit's
 * canary login (an access-audit-only config gets only the canary's). A Lambda in the VPC
 * creates them at deploy time, as custom resource `Custom::AuditTrailLogins`, reading the
 * master secrets; nothing else in the stack reads those. It runs again when the audited
 * tables change (the replication login is granted SELECT on each).
 */
export class DatabaseLogins extends Construct {
  readonly securityGroup: ec2.SecurityGroup;
  readonly resource: CustomResource;
  /** DMS's target login: writer role, its own control schema (with a `target`). */
  readonly dmsSecret?: secretsmanager.ISecret;
  /** The migrations' target login: owner and capture roles, CREATE on the database (with a `target`). */
  readonly migratorSecret?: secretsmanager.ISecret;
  /** DMS's source login (kit-created source only). */
  readonly replicationSecret?: secretsmanager.ISecret;
  /** The chain anchor's target login (with `anchor`). */
  readonly anchorSecret?: secretsmanager.ISecret;
  /** The auditors' target login for the Data API (with `auditor`). */
  readonly auditorSecret?: secretsmanager.ISecret;
  /** The access audit's canary login on the source (with `source` and `canaryRole`). */
  readonly canarySecret?: secretsmanager.ISecret;

  constructor(scope: Construct, id: string, props: DatabaseLoginsProps) {
    super(scope, id);
    const logins = kitLogins(props.config);
    const { target, source } = props;
    if (target) {
      this.dmsSecret = loginSecret(this, 'DmsSecret', logins.dms, target);
      this.migratorSecret = loginSecret(this, 'MigratorSecret', logins.migrator, target);
      if (source) {
        this.replicationSecret = loginSecret(this, 'ReplicationSecret', logins.replication, source);
      }
      if (props.anchor)
        this.anchorSecret = loginSecret(this, 'AnchorSecret', logins.anchor, target);
      if (props.auditor) {
        this.auditorSecret = loginSecret(this, 'AuditorSecret', logins.auditor, target);
      }
    }
    if (source && props.canaryRole !== undefined) {
      this.canarySecret = loginSecret(this, 'CanarySecret', props.canaryRole, source);
    }
    const sourceLogins = this.replicationSecret ?? this.canarySecret;

    this.securityGroup = new ec2.SecurityGroup(this, 'SecurityGroup', {
      vpc: props.vpc,
      description: 'audit-trail logins Lambda',
      // Egress only to the databases and Secrets Manager, added where those are wired.
      allowAllOutbound: false,
    });
    const fn = bundledFunction(this, 'Function', {
      entry: 'src/lambda/database-logins/handler.ts',
      description:
        'audit-trail: creates the DMS and migrations logins and the canary login (least privilege)',
      timeout: Duration.minutes(5),
      memorySize: 256,
      vpc: props.vpc,
      vpcSubnets: props.subnets,
      securityGroups: [this.securityGroup],
      ...(props.logRetention && { logRetention: props.logRetention }),
    });
    for (const secret of [
      target?.secret,
      this.dmsSecret,
      this.migratorSecret,
      sourceLogins && source?.secret,
      this.replicationSecret,
      this.anchorSecret,
      this.auditorSecret,
      this.canarySecret,
    ])
      secret?.grantRead(fn);
    target?.allowFrom(this.securityGroup, 'audit-trail logins');
    if (sourceLogins) source?.allowFrom(this.securityGroup, 'audit-trail logins');
    const provider = new cr.Provider(this, 'Provider', { onEventHandler: fn });
    acknowledgeProviderFramework(provider, fn);

    const { auditSchema, auditRoles, tables } = props.config;
    const properties: LoginsProperties = {
      Config: JSON.stringify({
        auditSchema,
        auditRoles,
        tables,
        ...(props.canaryRole !== undefined && {
          accessAudit: { canary: { role: props.canaryRole } },
        }),
      }),
      ...(target && { KitRoles: JSON.stringify(kitRoles(props.config)) }),
      ...(target &&
        this.dmsSecret &&
        this.migratorSecret && {
          TargetAdmin: adminLocation(target),
          DmsSecretArn: this.dmsSecret.secretArn,
          MigratorSecretArn: this.migratorSecret.secretArn,
        }),
      ...(props.targetPgaudit && { TargetPgaudit: 'true' }),
      ...(this.anchorSecret && { AnchorSecretArn: this.anchorSecret.secretArn }),
      ...(this.auditorSecret && { AuditorSecretArn: this.auditorSecret.secretArn }),
      ...(source && sourceLogins && { SourceAdmin: adminLocation(source) }),
      ...(this.replicationSecret && { ReplicationSecretArn: this.replicationSecret.secretArn }),
      ...(this.canarySecret && { CanarySecretArn: this.canarySecret.secretArn }),
    };
    this.resource = new CustomResource(this, 'Resource', {
      serviceToken: provider.serviceToken,
      resourceType: 'Custom::AuditTrailLogins',
      properties,
    });
    for (const database of [target?.resource, sourceLogins && source?.resource]) {
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

import { GetSecretValueCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import type { Kysely } from 'kysely';
import { parseConfig, type AuditTrailConfig } from '../../config';
import { createKysely } from '../../postgres/connect';
import {
  kitLogins,
  setUpCanaryLogin,
  setUpDdlCapture,
  setUpReplicationLogin,
  setUpTargetLogins,
  setUpTargetPgaudit,
} from '../../trust/logins';
import type { CustomResourceEvent } from '../shared/custom-resource';
import { databaseUrl, type DatabaseLocation } from '../shared/database-url';

/**
 * Properties of the `Custom::AuditTrailLogins` resource. The administrator secrets (the
 * master users of kit-created databases) are read by this function only; every other
 * part of the deployment connects with the logins it creates.
 */
export interface LoginsProperties {
  /**
   * The config JSON (audit schema, roles, tables, `accessAudit.canary.role`): a change
   * re-runs the set-up.
   */
  readonly Config: string;
  /**
   * The kit's role names (`kitRoles` of the config, JSON), read by nothing: a kit version
   * that adds a role (the engine role, migration 0027) changes it, so the
   * upgrade's deploy runs this set-up again, which creates the role before the
   * migrations run (their login may not create roles).
   */
  readonly KitRoles?: string;
  /**
   * The change-history target as its administrator; absent for an access-audit-only
   * config (no tables), together with the two secrets below.
   */
  readonly TargetAdmin?: DatabaseLocation;
  /** Secret of DMS's target login (`<auditSchema>_dms`), with `TargetAdmin`. */
  readonly DmsSecretArn?: string;
  /** Secret of the migrations' target login (`<auditSchema>_migrator`), with `TargetAdmin`. */
  readonly MigratorSecretArn?: string;
  /** The source as its administrator; absent when the source is not the kit's to change. */
  readonly SourceAdmin?: DatabaseLocation;
  /** Secret of DMS's source login (`<auditSchema>_replication`), with `SourceAdmin`. */
  readonly ReplicationSecretArn?: string;
  /**
   * `"true"` when the kit created the target with pgaudit preloaded: the extension and
   * the DMS login's `pgaudit.log = ddl,role` are then set up too.
   */
  readonly TargetPgaudit?: string;
  /** Secret of the chain anchor's target login (`<auditSchema>_anchor`, reader role). */
  readonly AnchorSecretArn?: string;
  /** Secret of the auditors' Data API login (`<auditSchema>_auditor`, reader role). */
  readonly AuditorSecretArn?: string;
  /**
   * Secret of the access audit's canary login (`accessAudit.canary.role`), created on the
   * source (with `SourceAdmin`, in its database) with pgAudit's extension.
   */
  readonly CanarySecretArn?: string;
}

/** The event the CDK custom-resource provider framework passes to onEvent. */
export type LoginsEvent = CustomResourceEvent<LoginsProperties>;

/** Dependencies, replaced in tests. */
export interface LoginsDependencies {
  readonly secrets: SecretsManagerClient;
  /** Opens a connection for a URL. @default createKysely with one connection */
  readonly connect?: (url: string) => Kysely<unknown>;
  readonly log?: (message: string) => void;
}

/** Reads a login secret's password, checking it is for the login the kit expects. */
async function loginPassword(
  secrets: SecretsManagerClient,
  secretArn: string,
  expectedUser: string,
): Promise<string> {
  const response = await secrets.send(new GetSecretValueCommand({ SecretId: secretArn }));
  const value = JSON.parse(response.SecretString ?? '{}') as {
    username?: string;
    password?: string;
  };
  if (value.username !== expectedUser || !value.password) {
    throw new Error(
      `secret ${secretArn} must hold username "${expectedUser}" and a password (found username ${JSON.stringify(value.username)})`,
    );
  }
  return value.password;
}

/**
 * {@link loginPassword} for a login the stack may not have made: undefined when there
 * is no secret for it, or (as for the canary without `accessAudit.canary`) no login name.
 */
async function optionalLoginPassword(
  secrets: SecretsManagerClient,
  secretArn: string | undefined,
  expectedUser: string | undefined,
): Promise<string | undefined> {
  if (secretArn === undefined || expectedUser === undefined) return undefined;
  return loginPassword(secrets, secretArn, expectedUser);
}

async function withDatabase<T>(
  url: string,
  deps: LoginsDependencies,
  work: (db: Kysely<unknown>) => Promise<T>,
): Promise<T> {
  const db = (deps.connect ?? ((u) => createKysely<unknown>(u, { max: 1, label: 'admin' })))(url);
  try {
    return await work(db);
  } finally {
    await db.destroy();
  }
}

/** What setting up either side reads: the resource's properties, the config, clients, the log. */
interface LoginsRun {
  readonly props: LoginsProperties;
  readonly config: AuditTrailConfig;
  readonly deps: LoginsDependencies;
  readonly log: (message: string) => void;
}

/** Handles one custom-resource event; exported for tests, wrapped by {@link handler}. */
export async function setUpLogins(
  event: LoginsEvent,
  deps: LoginsDependencies,
): Promise<{ PhysicalResourceId: string }> {
  const physicalId = event.PhysicalResourceId ?? 'audit-trail-logins';
  // Dropping a login on delete could strand objects DMS created; the databases (and
  // their logins) are retained or snapshotted with the stack anyway.
  if (event.RequestType === 'Delete') return { PhysicalResourceId: physicalId };
  const props = event.ResourceProperties;
  const config: AuditTrailConfig = parseConfig(
    JSON.parse(props.Config) as unknown,
    'Config property',
  );
  const run: LoginsRun = { props, config, deps, log: deps.log ?? console.log };
  if (props.TargetAdmin) await setUpTarget(run, props.TargetAdmin);
  if (props.SourceAdmin) await setUpSource(run, props.SourceAdmin);
  return { PhysicalResourceId: physicalId };
}

/** The target's logins: DMS, the migrations, the chain anchor, the auditors; pgAudit on a kit target. */
async function setUpTarget(
  { props, config, deps, log }: LoginsRun,
  admin: DatabaseLocation,
): Promise<void> {
  if (props.DmsSecretArn === undefined || props.MigratorSecretArn === undefined)
    throw new Error('TargetAdmin needs DmsSecretArn and MigratorSecretArn');
  const logins = kitLogins(config);
  const [dms, migrator, anchor, auditor] = await Promise.all([
    loginPassword(deps.secrets, props.DmsSecretArn, logins.dms),
    loginPassword(deps.secrets, props.MigratorSecretArn, logins.migrator),
    optionalLoginPassword(deps.secrets, props.AnchorSecretArn, logins.anchor),
    optionalLoginPassword(deps.secrets, props.AuditorSecretArn, logins.auditor),
  ]);
  const targetUrl = await databaseUrl(deps.secrets, admin);
  (
    await withDatabase(targetUrl, deps, (db) =>
      setUpTargetLogins(db, config, {
        dms,
        migrator,
        ...(anchor !== undefined && { anchor }),
        ...(auditor !== undefined && { auditor }),
      }),
    )
  ).forEach((line) => log(`target: ${line}`));
  if (props.TargetPgaudit === 'true') {
    (await withDatabase(targetUrl, deps, (db) => setUpTargetPgaudit(db, logins.dms))).forEach(
      (line) => log(`target: ${line}`),
    );
  }
}

/** A kit-created source's logins: DMS's replication login (with DDL capture), the canary. */
async function setUpSource(
  { props, config, deps, log }: LoginsRun,
  admin: DatabaseLocation,
): Promise<void> {
  const logins = kitLogins(config);
  const canaryRole = config.accessAudit?.canary.role;
  if (props.CanarySecretArn !== undefined && canaryRole === undefined)
    throw new Error('CanarySecretArn needs accessAudit.canary in the Config property');
  const [replication, canary] = await Promise.all([
    optionalLoginPassword(deps.secrets, props.ReplicationSecretArn, logins.replication),
    optionalLoginPassword(deps.secrets, props.CanarySecretArn, canaryRole),
  ]);
  if (replication === undefined && canary === undefined) return;
  const sourceUrl = await databaseUrl(deps.secrets, admin);
  (
    await withDatabase(sourceUrl, deps, async (db) => [
      ...(replication === undefined
        ? []
        : [
            ...(await setUpReplicationLogin(db, config, replication)),
            // DMS captures DDL by default; a login that is not the master cannot make the
            // artifacts itself (DdlArtifactsSchema on the source endpoint names this schema).
            ...(await setUpDdlCapture(db, config)),
          ]),
      ...(canary === undefined || canaryRole === undefined
        ? []
        : await setUpCanaryLogin(db, canaryRole, canary)),
    ])
  ).forEach((line) => log(`source: ${line}`));
}

let secrets: SecretsManagerClient | undefined;

/** Lambda entry point (onEvent of a CDK custom-resource provider). */
export async function handler(event: LoginsEvent) {
  secrets ??= new SecretsManagerClient({});
  return setUpLogins(event, { secrets });
}

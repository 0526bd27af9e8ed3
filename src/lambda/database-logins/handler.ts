import { GetSecretValueCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import type { Kysely } from 'kysely';
import { parseConfig, type AuditTrailConfig } from '../../config';
import { createKysely } from '../../postgres/connect';
import {
  kitLogins,
  setUpDdlCapture,
  setUpReplicationLogin,
  setUpTargetLogins,
  setUpTargetPgaudit,
} from '../../trust/logins';
import { databaseUrl, type DatabaseLocation } from '../shared/database-url';

/**
 * Properties of the `Custom::AuditTrailLogins` resource. The administrator secrets (the
 * master users of kit-created databases) are read by this function only; every other
 * part of the deployment connects with the logins it creates.
 */
export interface LoginsProperties {
  /** The config JSON (audit schema, roles, tables): a change re-runs the set-up. */
  readonly Config: string;
  /** The target as its administrator. */
  readonly TargetAdmin: DatabaseLocation;
  /** Secret of DMS's target login (`<auditSchema>_dms`). */
  readonly DmsSecretArn: string;
  /** Secret of the migrations' target login (`<auditSchema>_migrator`). */
  readonly MigratorSecretArn: string;
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
}

/** The event the CDK custom-resource provider framework passes to onEvent. */
export interface LoginsEvent {
  readonly RequestType: 'Create' | 'Update' | 'Delete';
  readonly ResourceProperties: LoginsProperties & { readonly ServiceToken?: string };
  readonly PhysicalResourceId?: string;
}

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
  const logins = kitLogins(config);
  const log = deps.log ?? console.log;

  const [dms, migrator, anchor, auditor] = await Promise.all([
    loginPassword(deps.secrets, props.DmsSecretArn, logins.dms),
    loginPassword(deps.secrets, props.MigratorSecretArn, logins.migrator),
    props.AnchorSecretArn === undefined
      ? undefined
      : loginPassword(deps.secrets, props.AnchorSecretArn, logins.anchor),
    props.AuditorSecretArn === undefined
      ? undefined
      : loginPassword(deps.secrets, props.AuditorSecretArn, logins.auditor),
  ]);
  const targetUrl = await databaseUrl(deps.secrets, props.TargetAdmin);
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

  if (props.SourceAdmin && props.ReplicationSecretArn) {
    const replication = await loginPassword(
      deps.secrets,
      props.ReplicationSecretArn,
      logins.replication,
    );
    const sourceUrl = await databaseUrl(deps.secrets, props.SourceAdmin);
    (
      await withDatabase(sourceUrl, deps, async (db) => [
        ...(await setUpReplicationLogin(db, config, replication)),
        // DMS captures DDL by default; a login that is not the master cannot make the
        // artifacts itself (DdlArtifactsSchema on the source endpoint names this schema).
        ...(await setUpDdlCapture(db, config)),
      ])
    ).forEach((line) => log(`source: ${line}`));
  }
  return { PhysicalResourceId: physicalId };
}

let secrets: SecretsManagerClient | undefined;

/** Lambda entry point (onEvent of a CDK custom-resource provider). */
export async function handler(event: LoginsEvent) {
  secrets ??= new SecretsManagerClient({});
  return setUpLogins(event, { secrets });
}

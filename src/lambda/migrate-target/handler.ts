import { GetSecretValueCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { parseConfig } from '../../config';
import { migrateTarget, type MigrateReport } from '../../migrate/migrate-target';

/** Where one database is and which secret holds its credentials. */
export interface DatabaseLocation {
  /** Secret with `username` and `password` (and `host`/`port` when those are left out here). */
  readonly SecretArn: string;
  /** Host name; read from the secret when omitted. */
  readonly Host?: string;
  /** Port; read from the secret when omitted. */
  readonly Port?: string;
  readonly DatabaseName: string;
  /**
   * libpq-style `sslmode` as node-postgres reads it. `no-verify`: TLS without certificate
   * verification (the Lambda does not carry the RDS CA bundle; the connection never leaves
   * the VPC). `disable` only for a database without TLS.
   * @default "no-verify"
   */
  readonly SslMode?: 'no-verify' | 'require' | 'disable';
}

/**
 * Properties of the `Custom::AuditTrailMigrations` resource. `Config` is the config
 * JSON (change-history part), so the resource is updated, and the migrations re-run,
 * exactly when the audited tables change.
 */
export interface MigrationsProperties {
  readonly Config: string;
  /**
   * The kit version that synthesized the stack (`currentKitVersion()`): not read by the
   * handler; it changes with every kit upgrade so that `cdk deploy` re-runs the migrations.
   */
  readonly KitVersion?: string;
  readonly Source: DatabaseLocation;
  readonly Target: DatabaseLocation;
}

/** The event the CDK custom-resource provider framework passes to onEvent. */
export interface MigrationsEvent {
  readonly RequestType: 'Create' | 'Update' | 'Delete';
  readonly ResourceProperties: MigrationsProperties & { readonly ServiceToken?: string };
  readonly PhysicalResourceId?: string;
}

/** Dependencies, replaced in tests. */
export interface MigrationsDependencies {
  readonly secrets: SecretsManagerClient;
  readonly migrate?: typeof migrateTarget;
  readonly log?: (message: string) => void;
}

interface SecretValue {
  readonly username?: string;
  readonly password?: string;
  readonly host?: string;
  readonly port?: number | string;
}

/**
 * A postgres:// URL for a database whose credentials are in Secrets Manager.
 * TLS is required; the certificate is not verified because the Lambda does not carry the
 * RDS CA bundle (the connection never leaves the VPC).
 */
export async function databaseUrl(
  secrets: SecretsManagerClient,
  location: DatabaseLocation,
): Promise<string> {
  const response = await secrets.send(new GetSecretValueCommand({ SecretId: location.SecretArn }));
  const value = JSON.parse(response.SecretString ?? '{}') as SecretValue;
  const host = location.Host ?? value.host;
  const port = location.Port ?? value.port;
  if (!value.username || !value.password || !host) {
    throw new Error(
      `secret ${location.SecretArn} needs username and password${location.Host ? '' : ' and host'}`,
    );
  }
  const url = new URL('postgres://localhost');
  url.hostname = host;
  url.port = String(port ?? 5432);
  url.username = encodeURIComponent(value.username);
  url.password = encodeURIComponent(value.password);
  url.pathname = `/${encodeURIComponent(location.DatabaseName)}`;
  url.searchParams.set('sslmode', location.SslMode ?? 'no-verify');
  return url.toString();
}

/** Handles one custom-resource event; exported for tests, wrapped by {@link handler}. */
export async function runMigrations(
  event: MigrationsEvent,
  deps: MigrationsDependencies,
): Promise<{ PhysicalResourceId: string; Data?: Record<string, string> }> {
  const physicalId = event.PhysicalResourceId ?? 'audit-trail-migrations';
  // Deleting the stack must never drop the audit log: migrations only ever add.
  if (event.RequestType === 'Delete') return { PhysicalResourceId: physicalId };
  const props = event.ResourceProperties;
  const config = parseConfig(JSON.parse(props.Config) as unknown, 'Config property');
  const [sourceUrl, targetUrl] = await Promise.all([
    databaseUrl(deps.secrets, props.Source),
    databaseUrl(deps.secrets, props.Target),
  ]);
  const report: MigrateReport = await (deps.migrate ?? migrateTarget)({
    config,
    sourceUrl,
    targetUrl,
    log: deps.log ?? console.log,
  });
  return {
    PhysicalResourceId: physicalId,
    Data: { Applied: report.applied.join(','), Tables: String(report.tables.length) },
  };
}

let secrets: SecretsManagerClient | undefined;

/** Lambda entry point (onEvent of a CDK custom-resource provider). */
export async function handler(event: MigrationsEvent) {
  secrets ??= new SecretsManagerClient({});
  return runMigrations(event, { secrets });
}

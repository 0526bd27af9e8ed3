import { GetSecretValueCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { parseConfig } from '../../config';
import { migrateTarget, type MigrateReport } from '../../migrate/migrate-target';
import { writeRdsCaBundle } from '../../postgres/tls';

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
   * libpq-style `sslmode` as node-postgres reads it. `verify-full`: TLS, the server
   * certificate checked against the RDS CA bundle the Lambda carries and its name against
   * the host. `disable` exists only for tests against a local database without TLS; the
   * kit's constructs never set it.
   * @default "verify-full"
   */
  readonly SslMode?: 'verify-full' | 'disable';
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
 * A postgres:// URL for a database whose credentials are in Secrets Manager, with
 * `sslmode=verify-full` and the RDS CA bundle (bundled with the Lambda) as `sslrootcert`.
 */
export async function databaseUrl(
  secrets: SecretsManagerClient,
  location: DatabaseLocation,
  caFile: string = rdsCaFile(),
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
  const sslmode = location.SslMode ?? 'verify-full';
  url.searchParams.set('sslmode', sslmode);
  if (sslmode !== 'disable') url.searchParams.set('sslrootcert', caFile);
  return url.toString();
}

let writtenCaFile: string | undefined;

/** The RDS CA bundle, written to /tmp once per Lambda container. */
function rdsCaFile(): string {
  writtenCaFile ??= writeRdsCaBundle();
  return writtenCaFile;
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

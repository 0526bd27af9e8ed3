import { GetSecretValueCommand, type SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { writeRdsCaBundle } from '../../postgres/tls';

// Shared by every Lambda that connects to a kit database (migrations, logins, canary,
// chain anchor): a small module, so a function's bundle carries only what it uses.

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

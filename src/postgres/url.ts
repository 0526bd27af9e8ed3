// URL checks and connection defaults without the drivers: the CLI reads them to
// describe its options, before (or without) opening any connection.
import { AuditTrailError } from '../errors';

/** Thrown for a connection string that is not a PostgreSQL URL. */
export class ConnectionUrlError extends AuditTrailError {
  override readonly name = 'ConnectionUrlError';
  constructor(message: string) {
    super(message, { code: 'CONNECTION_URL_INVALID', kind: 'usage' });
  }
}

/**
 * Checks that `url` is a `postgres://` or `postgresql://` URL and returns it.
 * @param label the option the URL came from, named in the error (`--target-url`).
 */
export function assertPostgresUrl(url: string, label: string): string {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new ConnectionUrlError(
      `${label} is not a URL: expected postgres://user:password@host:port/database`,
    );
  }
  if (parsed.protocol !== 'postgres:' && parsed.protocol !== 'postgresql:') {
    throw new ConnectionUrlError(
      `${label} must start with postgres:// or postgresql://, got ${parsed.protocol}//`,
    );
  }
  return url;
}

/** How long a connection attempt may take when nothing says otherwise: 10 seconds. */
export const DEFAULT_CONNECT_TIMEOUT_SECONDS = 10;

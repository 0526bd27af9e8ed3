import { readFileSync } from 'node:fs';
import path from 'node:path';
import { packageRoot } from './package-root';

/**
 * The kit's version, read from its package.json, so `audit-trail --version`, the
 * library and the published package always agree.
 *
 * @example
 * ```ts
 * packageVersion(); // '0.2.0'
 * ```
 */
export function packageVersion(): string {
  const manifest = JSON.parse(readFileSync(path.join(packageRoot(), 'package.json'), 'utf8')) as {
    version?: unknown;
  };
  if (typeof manifest.version !== 'string')
    throw new Error('the audit-trail package.json has no version');
  return manifest.version;
}

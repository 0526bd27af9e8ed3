import { existsSync } from 'node:fs';
import path from 'node:path';

let cached: string | undefined;

/**
 * The kit's own folder (where its package.json is), whether running from `src/` under
 * a TypeScript runner or from the compiled `dist/src/`. SQL files under `triggers/`
 * are read from here.
 */
export function packageRoot(): string {
  if (cached !== undefined) return cached;
  let dir = __dirname;
  while (!existsSync(path.join(dir, 'package.json')) || path.basename(dir) === 'dist') {
    const parent = path.dirname(dir);
    if (parent === dir)
      throw new Error(`cannot find the audit-trail package root above ${__dirname}`);
    dir = parent;
  }
  cached = dir;
  return dir;
}

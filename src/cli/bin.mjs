#!/usr/bin/env node
// The `audit-trail` bin (package.json "bin"). An installed package runs the compiled CLI,
// which `npm pack` builds ("prepack"). The build is not an install script: it was
// `prepare`, which npm lists as an install script of a package installed from a tarball
// ("not yet covered by allowScripts"). So a fresh checkout has no dist/ after `npm ci`:
// there this file runs the TypeScript sources through tsx (a dev dependency of the
// checkout), which keeps the README's `npm ci && npx audit-trail demo` true.
import { existsSync } from 'node:fs';
import process from 'node:process';
import { URL } from 'node:url';

const built = new URL('../../dist/src/cli/main.js', import.meta.url);
if (existsSync(built)) {
  await import(built.href);
} else {
  try {
    // The same loader `node --import tsx` registers: TypeScript for require and import().
    await import('tsx');
  } catch {
    process.stderr.write(
      'audit-trail: error [USAGE]: the CLI is not built (no dist/) and tsx is not installed\n' +
        '  hint: run "npm run build" in the kit checkout\n',
    );
    process.exit(2);
  }
  await import(new URL('main.ts', import.meta.url).href);
}

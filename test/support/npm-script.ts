import { readFileSync } from 'node:fs';
import path from 'node:path';

const ROOT = path.resolve(__dirname, '../..');

/**
 * The command an npm script of package.json runs, split into the binary to spawn
 * (`node` is this Node; any other word a package binary) and its arguments, so tests
 * start what `npm run <name>` starts. Only plain word lists are supported: a script
 * with shell syntax fails here by name.
 *
 * @example npmScriptCommand('example') // { binary: '/usr/bin/node', args: ['--import', 'tsx', 'examples/local/run.ts'] }
 */
export function npmScriptCommand(name: string): { binary: string; args: string[] } {
  const manifest = JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8'));
  const script = (manifest.scripts as Record<string, string>)[name];
  if (!script || /[|&;<>$`"'()]/.test(script))
    throw new Error(`npm script "${name}" is missing or not a plain command: ${script}`);
  const [command, ...args] = script.split(/\s+/);
  const binary =
    command === 'node' ? process.execPath : path.join(ROOT, 'node_modules/.bin', command!);
  return { binary, args };
}

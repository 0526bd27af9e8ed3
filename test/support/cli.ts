import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';

/** What a CLI run printed and how it exited. */
export interface CliResult {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

const ROOT = path.resolve(__dirname, '../..');

/** Runs `audit-trail ARGS...` from the TypeScript sources (no build needed). */
export function runCli(
  args: readonly string[],
  env: Record<string, string> = {},
): Promise<CliResult> {
  return run(['--import', 'tsx', path.join(ROOT, 'src/cli/main.ts'), ...args], env);
}

/** The binary `npm ci` builds (package.json `bin`), as `npx audit-trail` runs it. */
export const BUILT_CLI = path.join(ROOT, 'dist/src/cli/main.js');

/**
 * Runs the built `audit-trail ARGS...` (dist/, which `npm ci` and `npm run build`
 * write): what a user runs, without tsx in between.
 */
export function runBuiltCli(
  args: readonly string[],
  env: Record<string, string> = {},
): Promise<CliResult> {
  if (!existsSync(BUILT_CLI))
    throw new Error(`${BUILT_CLI} is missing: run "npm run build" (npm ci does) first`);
  return run([BUILT_CLI, ...args], env);
}

function run(nodeArgs: readonly string[], env: Record<string, string>): Promise<CliResult> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      nodeArgs,
      { cwd: ROOT, env: { ...process.env, ...env }, maxBuffer: 64 * 1024 * 1024 },
      (error, stdout, stderr) => {
        const code = error ? (typeof error.code === 'number' ? error.code : 1) : 0;
        resolve({ code, stdout, stderr });
      },
    );
  });
}

/**
 * Runs the built `audit-trail ARGS...` on a pseudo-terminal (util-linux `script`), as a
 * person at a terminal runs it: stdout and stderr are both the terminal, so `output`
 * holds both, with the terminal's control sequences.
 */
export function runBuiltCliOnTerminal(
  args: readonly string[],
  env: Record<string, string> = {},
): Promise<{ readonly code: number; readonly output: string }> {
  if (!existsSync(BUILT_CLI))
    throw new Error(`${BUILT_CLI} is missing: run "npm run build" (npm ci does) first`);
  // A wide terminal: cli-progress cuts a line at the terminal's width.
  const line = `stty cols 200 rows 50; exec ${[process.execPath, BUILT_CLI, ...args].map(shellQuote).join(' ')}`;
  return new Promise((resolve) => {
    execFile(
      'script',
      // -q: no banner, -e: the command's exit code, -f: flush as written; no typescript file.
      ['-qefc', line, '/dev/null'],
      {
        cwd: ROOT,
        env: { ...process.env, TERM: 'xterm', ...env },
        maxBuffer: 64 * 1024 * 1024,
      },
      (error, stdout) => {
        const code = error ? (typeof error.code === 'number' ? error.code : 1) : 0;
        resolve({ code, output: stdout });
      },
    );
  });
}

/** One word for `sh -c`: single-quoted, embedded quotes closed and escaped. */
function shellQuote(word: string): string {
  return `'${word.replaceAll("'", `'\\''`)}'`;
}

import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import type { AuditTrailConfigInput } from '../../src/config';

/** What a CLI run printed and how it ended. */
export interface CliResult {
  /** The exit code; null when a signal ended the run. */
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly stdout: string;
  readonly stderr: string;
}

const ROOT = path.resolve(__dirname, '../..');
const MAIN = path.join(ROOT, 'src/cli/main.ts');

/** The binary `npm run build` writes (package.json `bin` runs it), as `npx audit-trail` runs it. */
export const BUILT_CLI = path.join(ROOT, 'dist/src/cli/main.js');

/**
 * Starts the built `audit-trail ARGS...` (dist/, which `npm test` builds first) as one
 * child node process, so kill -9 hits the command itself; for tests that watch or
 * signal a running command. What a user runs, without tsx compiling the sources
 * before each run (about a second of CPU each).
 */
export function spawnCli(
  args: readonly string[],
  env: Record<string, string> = {},
  options: { ownProcessGroup?: boolean } = {},
): ChildProcessWithoutNullStreams {
  return spawnNode([requireBuiltCli(), ...args], env, options);
}

/** Runs the built `audit-trail ARGS...` to its end (see {@link spawnCli}). */
export function runCli(
  args: readonly string[],
  env: Record<string, string> = {},
): Promise<CliResult> {
  return collect(spawnCli(args, env));
}

/**
 * Runs `audit-trail ARGS...` from the TypeScript sources (tsx loader, no build), for a
 * test whose measure includes the process itself (a heap cap set for the tsx run).
 */
export function runSourceCli(
  args: readonly string[],
  env: Record<string, string> = {},
): Promise<CliResult> {
  return collect(spawnNode(['--import', 'tsx', MAIN, ...args], env));
}

/**
 * Runs the built `audit-trail ARGS...` on a pseudo-terminal (util-linux `script`), as a
 * person at a terminal runs it: stdout and stderr are both the terminal, so `output`
 * holds both, with the terminal's control sequences.
 */
export async function runBuiltCliOnTerminal(
  args: readonly string[],
  env: Record<string, string> = {},
): Promise<{ readonly code: number | null; readonly output: string }> {
  // A wide terminal: cli-progress cuts a line at the terminal's width.
  const line = `stty cols 200 rows 50; exec ${[process.execPath, requireBuiltCli(), ...args].map(shellQuote).join(' ')}`;
  // -q: no banner, -e: the command's exit code, -f: flush as written; no typescript file.
  const child = spawn('script', ['-qefc', line, '/dev/null'], {
    cwd: ROOT,
    env: { ...process.env, TERM: 'xterm', ...env },
  });
  const { code, stdout } = await collect(child);
  return { code, output: stdout };
}

/** What an in-process run printed, and the error it ended with (none when it succeeded). */
export interface InProcessRun {
  readonly stdout: string;
  readonly stderr: string;
  readonly error?: Error;
}

/**
 * Runs `audit-trail ARGS...` inside the test process, for tests whose mocks must reach
 * the command (aws-sdk-client-mock, the Data API emulator), or that check what needs no
 * process of its own: commander throws instead of exiting (the error carries the exit
 * code the CLI would end with), stdout and stderr are captured, `stdin` feeds the
 * command's standard input, `env` is set for the run (and the environment restored
 * after it, with what the global options write there). Everything else runs a real
 * process ({@link runCli}).
 *
 * @example
 * ```ts
 * const { stdout, error } = await runCliInProcess(['status', '--task-arn', TASK_ARN]);
 * ```
 */
export async function runCliInProcess(
  args: readonly string[],
  stdin?: string,
  env: Record<string, string> = {},
): Promise<InProcessRun> {
  const { buildProgram } = await import('../../src/cli/program');
  const captured = { stdout: '', stderr: '' };
  const capture = (stream: 'stdout' | 'stderr') =>
    vi.spyOn(process[stream], 'write').mockImplementation((chunk: string | Uint8Array) => {
      captured[stream] += typeof chunk === 'string' ? chunk : Buffer.from(chunk).toString();
      return true;
    });
  const spies = [capture('stdout'), capture('stderr')];
  const originalEnv = { ...process.env };
  Object.assign(process.env, env);
  const originalStdin = Object.getOwnPropertyDescriptor(process, 'stdin');
  if (stdin !== undefined)
    Object.defineProperty(process, 'stdin', { value: Readable.from([stdin]), configurable: true });
  try {
    await buildProgram()
      .exitOverride()
      .parseAsync(['node', 'audit-trail', ...args]);
    return { ...captured };
  } catch (error) {
    return { ...captured, error: error as Error };
  } finally {
    for (const spy of spies) spy.mockRestore();
    if (originalStdin) Object.defineProperty(process, 'stdin', originalStdin);
    for (const name of Object.keys(process.env))
      if (!(name in originalEnv)) delete process.env[name];
    Object.assign(process.env, originalEnv);
  }
}

/** Where a command reads and writes: its config file, the source, the target, its slot. */
export interface Endpoints {
  readonly configFile?: string;
  readonly sourceUrl?: string;
  readonly targetUrl?: string;
  readonly slotName?: string;
}

/**
 * The options naming a command's config and databases (`--config`, `--source-url`,
 * `--target-url`, `--slot`), each only when given.
 *
 * @example
 * ```ts
 * await runCli(['migrate', ...connectionArgs({ configFile, sourceUrl, targetUrl })]);
 * ```
 */
export function connectionArgs(endpoints: Endpoints): string[] {
  const { configFile, sourceUrl, targetUrl, slotName } = endpoints;
  return [
    ...(configFile === undefined ? [] : ['--config', configFile]),
    ...(sourceUrl === undefined ? [] : ['--source-url', sourceUrl]),
    ...(targetUrl === undefined ? [] : ['--target-url', targetUrl]),
    ...(slotName === undefined ? [] : ['--slot', slotName]),
  ];
}

/** Where `replicate` reads and writes: the source, the target, and optionally its own slot. */
export type ReplicateEndpoints = Required<Pick<Endpoints, 'sourceUrl' | 'targetUrl'>> &
  Pick<Endpoints, 'slotName'>;

/** The arguments of `audit-trail replicate` for a config file and a pipeline's databases. */
export function replicateArgs(
  configFile: string,
  endpoints: ReplicateEndpoints,
  ...extra: string[]
): string[] {
  return ['replicate', ...connectionArgs({ configFile, ...endpoints }), ...extra];
}

/** Writes a config file to a temp path and returns it. */
export async function writeConfig(config: AuditTrailConfigInput): Promise<string> {
  const file = path.join(os.tmpdir(), `audit-trail-${randomBytes(6).toString('hex')}.json`);
  await writeFile(file, JSON.stringify(config));
  return file;
}

/** The folders tsconfig.json compiles into dist/. */
const COMPILED_FOLDERS = ['src', 'migrations', 'mappings', 'infra'];

let checkedBuild: string | undefined;

/**
 * The built CLI, once it is known to be built from the sources as they are: a source
 * file changed after the build would otherwise be tested as it was before.
 */
function requireBuiltCli(): string {
  if (checkedBuild !== undefined) return checkedBuild;
  if (!existsSync(BUILT_CLI))
    throw new Error(`${BUILT_CLI} is missing: run "npm run build" (npm test does) first`);
  const built = statSync(BUILT_CLI).mtimeMs;
  const newer = COMPILED_FOLDERS.flatMap((folder) =>
    readdirSync(path.join(ROOT, folder), { recursive: true, encoding: 'utf8' })
      .map((file) => path.join(folder, file))
      .filter((file) => file.endsWith('.ts') && statSync(path.join(ROOT, file)).mtimeMs > built),
  );
  if (newer.length > 0)
    throw new Error(
      `${BUILT_CLI} is older than ${newer.slice(0, 3).join(', ')}${newer.length > 3 ? ', ...' : ''}: run "npm run build" (npm test does) first`,
    );
  checkedBuild = BUILT_CLI;
  return BUILT_CLI;
}

/**
 * `ownProcessGroup`: the child leads a process group of its own, so a test can signal it
 * and everything it started at once (`process.kill(-child.pid, ...)`), as a terminal's
 * Ctrl-C does.
 */
function spawnNode(
  nodeArgs: readonly string[],
  env: Record<string, string>,
  options: { ownProcessGroup?: boolean } = {},
): ChildProcessWithoutNullStreams {
  return spawn(process.execPath, nodeArgs, {
    cwd: ROOT,
    env: { ...process.env, ...env },
    detached: options.ownProcessGroup ?? false,
  });
}

/** Everything a child writes, and how it ended. */
function collect(child: ChildProcessWithoutNullStreams): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    let stdout = '';
    let stderr = '';
    // Decoded as a stream: a character split across two chunks stays whole.
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
    child.on('error', reject);
    child.on('close', (code, signal) => resolve({ code, signal, stdout, stderr }));
  });
}

/** One word for `sh -c`: single-quoted, embedded quotes closed and escaped. */
function shellQuote(word: string): string {
  return `'${word.replaceAll("'", `'\\''`)}'`;
}

import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import type { AuditTrailConfigInput } from '../../src/config';

const ROOT = path.resolve(__dirname, '../..');
const MAIN = path.join(ROOT, 'src/cli/main.ts');

/** How a CLI run ended. */
export interface CliRun {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly stdout: string;
  readonly stderr: string;
}

/**
 * Starts `audit-trail <args>` as one child node process (tsx loader, no build needed),
 * so kill -9 hits the engine itself; for tests that watch or signal a running command.
 */
export function spawnCli(
  args: readonly string[],
  env: Record<string, string> = {},
): ChildProcessWithoutNullStreams {
  return spawn(process.execPath, ['--import', 'tsx', MAIN, ...args], {
    cwd: ROOT,
    env: { ...process.env, ...env },
  });
}

/** Where `replicate` reads and writes: the source, the target, and optionally its own slot. */
export interface ReplicateEndpoints {
  readonly sourceUrl: string;
  readonly targetUrl: string;
  readonly slotName?: string;
}

/** The arguments of `audit-trail replicate` for a config file and a pipeline's databases. */
export function replicateArgs(
  configFile: string,
  endpoints: ReplicateEndpoints,
  ...extra: string[]
): string[] {
  return [
    'replicate',
    '--config',
    configFile,
    '--source-url',
    endpoints.sourceUrl,
    '--target-url',
    endpoints.targetUrl,
    ...(endpoints.slotName === undefined ? [] : ['--slot', endpoints.slotName]),
    ...extra,
  ];
}

/** Runs `audit-trail <args>` to its end (see {@link spawnCli}). */
export function runCli(args: readonly string[], env: Record<string, string> = {}): Promise<CliRun> {
  return new Promise((resolve, reject) => {
    const child = spawnCli(args, env);
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    child.on('error', reject);
    child.on('close', (code, signal) => resolve({ code, signal, stdout, stderr }));
  });
}

/** Writes a config file to a temp path and returns it. */
export async function writeConfig(config: AuditTrailConfigInput): Promise<string> {
  const file = path.join(os.tmpdir(), `audit-trail-${randomBytes(6).toString('hex')}.json`);
  await writeFile(file, JSON.stringify(config));
  return file;
}

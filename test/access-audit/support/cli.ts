import { Readable } from 'node:stream';
import { buildProgram } from '../../../src/cli/program';

/** Output of one in-process CLI run. */
export interface CliRun {
  stdout: string;
  stderr: string;
  error?: Error;
}

/** Runs `audit-trail …args` in-process, capturing stdout/stderr; `stdin` feeds the command's standard input. */
export async function runCli(args: readonly string[], stdin?: string): Promise<CliRun> {
  const out: string[] = [];
  const err: string[] = [];
  const stdout = vi.spyOn(process.stdout, 'write').mockImplementation((chunk) => {
    out.push(String(chunk));
    return true;
  });
  const stderr = vi.spyOn(process.stderr, 'write').mockImplementation((chunk) => {
    err.push(String(chunk));
    return true;
  });
  const originalStdin = Object.getOwnPropertyDescriptor(process, 'stdin');
  if (stdin !== undefined)
    Object.defineProperty(process, 'stdin', { value: Readable.from([stdin]), configurable: true });
  try {
    await buildProgram()
      .exitOverride()
      .parseAsync(['node', 'audit-trail', ...args]);
    return { stdout: out.join(''), stderr: err.join('') };
  } catch (error) {
    return { stdout: out.join(''), stderr: err.join(''), error: error as Error };
  } finally {
    stdout.mockRestore();
    stderr.mockRestore();
    if (originalStdin) Object.defineProperty(process, 'stdin', originalStdin);
  }
}

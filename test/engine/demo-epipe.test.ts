import { spawn } from 'node:child_process';
import { chmod, mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { BUILT_CLI } from '../support/cli';

/** Command lines of the running processes that mention `text` (read from /proc). */
async function processesMentioning(text: string): Promise<string[]> {
  const found: string[] = [];
  for (const pid of await readdir('/proc')) {
    if (!/^\d+$/.test(pid)) continue;
    const cmdline = await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '');
    if (cmdline.includes(text)) found.push(`${pid}: ${cmdline.replaceAll('\0', ' ')}`);
  }
  return found;
}

// `npx audit-trail demo | head -3`: head exits, the demo's next write fails with EPIPE.
// The demo must then stop its servers and remove their folders as it does on Ctrl-C,
// not crash and leave two PostgreSQL servers running.
describe('audit-trail demo whose output pipe closes', () => {
  it(
    'stops both servers and leaves nothing in the temp directory (built binary)',
    { timeout: 180_000 },
    async () => {
      const tmp = await mkdtemp(path.join(os.tmpdir(), 'demo-epipe-'));
      await chmod(tmp, 0o755); // as root the servers run as the postgres OS user
      try {
        const child = spawn(process.execPath, [BUILT_CLI, 'demo'], {
          env: { ...process.env, TMPDIR: tmp },
        });
        let stdout = '';
        let stderr = '';
        child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
        const exited = new Promise<number | null>((resolve) => child.on('close', resolve));
        // Like head: read until both servers run and the engine replicates, then close.
        await new Promise<void>((resolve) => {
          child.stdout.on('data', (chunk: Buffer) => {
            stdout += chunk.toString();
            if (stdout.includes('Engine: replicating')) resolve();
          });
          child.on('close', () => resolve());
        });
        expect(stdout, stderr).toContain('Engine: replicating');
        const serverFolders = async () =>
          (await readdir(tmp)).filter((entry) => entry.startsWith('audit-trail-pg-'));
        expect(await serverFolders()).toHaveLength(2);
        child.stdout.destroy();
        const code = await exited;
        expect(await processesMentioning(tmp)).toEqual([]);
        expect(await serverFolders()).toEqual([]);
        // Quiet, like a Unix tool killed by SIGPIPE: no stack trace, exit 141.
        expect(stderr).not.toMatch(/EPIPE|at .*\.js:\d+/);
        expect(code).toBe(141);
      } finally {
        // A failed run must not leave its servers behind either (they run under tmp).
        for (const line of await processesMentioning(tmp))
          process.kill(Number(line.split(':')[0]), 'SIGKILL');
        await rm(tmp, { recursive: true, force: true });
      }
    },
  );
});

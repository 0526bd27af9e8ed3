import { chmod, mkdtemp, readdir, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { spawnCli } from '../support/cli';

// A user who presses Ctrl-C during `audit-trail demo` gets their terminal back, no stack
// trace and nothing left behind: no server data folders in the temp directory. A
// terminal sends SIGINT to the whole foreground process group, the embedded servers
// included, so they end the demo's connections (57P01) while it stops: the test
// signals the group the same way.

describe('audit-trail demo, interrupted', () => {
  it(
    'leaves nothing in the temp directory and prints no stack trace after Ctrl-C (SIGINT)',
    { timeout: 180_000 },
    async () => {
      const tmp = await mkdtemp(path.join(os.tmpdir(), 'demo-interrupt-'));
      await chmod(tmp, 0o755); // as root the servers run as the postgres OS user
      try {
        const child = spawnCli(['demo'], { TMPDIR: tmp }, { ownProcessGroup: true });
        let stdout = '';
        child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
        let stderr = '';
        child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
        const exited = new Promise<number | null>((resolve) =>
          child.on('close', (code) => resolve(code)),
        );
        // Interrupt once both servers run and the engine is replicating.
        const deadline = Date.now() + 150_000;
        while (!stdout.includes('Engine: replicating') && Date.now() < deadline)
          await new Promise((resolve) => setTimeout(resolve, 100));
        expect(stdout, stderr).toContain('Engine: replicating');
        const serverFolders = async () =>
          (await readdir(tmp)).filter((entry) => entry.startsWith('audit-trail-pg-'));
        expect(await serverFolders()).toHaveLength(2); // source and target
        process.kill(-child.pid!, 'SIGINT');
        expect(await exited, stderr).toBe(130); // 128 + SIGINT, as shells report it
        expect(stderr).not.toMatch(/^\s+at /m);
        expect(stderr).not.toMatch(/Unhandled|terminating connection|Connection terminated/i);
        expect(await serverFolders()).toEqual([]);
      } finally {
        await rm(tmp, { recursive: true, force: true });
      }
    },
  );
});

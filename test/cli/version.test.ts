import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { runCli } from '../support/cli';

const ROOT = path.resolve(__dirname, '../..');
const manifest = JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as {
  version: string;
  bin: Record<string, string>;
};

describe('audit-trail --version', () => {
  it('prints the version from package.json and exits 0', async () => {
    for (const flag of ['--version', '-V']) {
      const result = await runCli([flag]);
      expect(result.code).toBe(0);
      expect(result.stdout.trim()).toBe(manifest.version);
    }
  });
});

describe('AWS commands on the supported Node version', () => {
  it('print no AWS SDK Node-version banner', async () => {
    const result = await runCli(
      ['status', '--task-arn', 'arn:aws:dms:eu-west-1:123456789012:task:ABC'],
      {
        AWS_ACCESS_KEY_ID: 'AKIDEXAMPLE',
        AWS_SECRET_ACCESS_KEY: 'example',
        // Nothing listens there: the call fails at once, after the SDK client started.
        AWS_ENDPOINT_URL_DATABASE_MIGRATION_SERVICE: 'http://127.0.0.1:9',
        AWS_ENDPOINT_URL_CLOUDWATCH: 'http://127.0.0.1:9',
        AWS_MAX_ATTEMPTS: '1',
      },
    );
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/^audit-trail: error \[AWS_REQUEST_FAILED\]: status: /);
    expect(result.stderr).not.toContain('NodeVersionSupportWarning');
  });
});

/** Runs a file directly, as npx runs a bin: its exit code and stdout. */
function runFile(
  file: string,
  args: readonly string[],
  cwd: string,
  nodeOptions = '',
): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) =>
    execFile(
      file,
      args,
      { cwd, env: { ...process.env, NODE_OPTIONS: nodeOptions } },
      (error, stdout, stderr) =>
        resolve({
          code: error ? (typeof error.code === 'number' ? error.code : 1) : 0,
          stdout,
          stderr,
        }),
    ),
  );
}

describe('the README quick start (`npm ci && npx audit-trail demo`)', () => {
  // npm ci does not link the checkout's own bin, so npx runs the bin file itself: it must
  // be executable in git ("Permission denied" before the build set the mode).
  it('the bin is executable and runs', async () => {
    const bin = path.join(ROOT, manifest.bin['audit-trail'] ?? 'no bin in package.json');
    expect(statSync(bin).mode & 0o111).toBe(0o111);
    const result = await runFile(bin, ['--version'], ROOT);
    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout.trim()).toBe(manifest.version);
  });

  // The build runs at `npm pack` (prepack), not at `npm ci`: a fresh clone has no dist/,
  // and the bin runs the sources through tsx there.
  it('runs from the sources in a checkout that was never built', async () => {
    const checkout = mkdtempSync(path.join(tmpdir(), 'audit-trail-unbuilt-'));
    try {
      for (const entry of ['src', 'node_modules', 'package.json', 'tsconfig.json'])
        symlinkSync(path.join(ROOT, entry), path.join(checkout, entry));
      const bin = path.join(checkout, manifest.bin['audit-trail'] ?? 'no bin');
      // Keep the symlinked path, so the bin looks for dist/ in the unbuilt checkout.
      const result = await runFile(
        bin,
        ['--version'],
        checkout,
        '--preserve-symlinks --preserve-symlinks-main',
      );
      expect(result.code, result.stderr).toBe(0);
      expect(result.stdout.trim()).toBe(manifest.version);
    } finally {
      rmSync(checkout, { recursive: true, force: true });
    }
  });
});

import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
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

describe('the README quick start (`npm ci && npx audit-trail demo`)', () => {
  // npm ci builds (prepare) but does not link the checkout's own bin, so npx may run the
  // built file itself: the build must leave it executable ("Permission denied" before).
  it('leaves the built binary executable, and it runs', async () => {
    const bin = path.join(ROOT, manifest.bin['audit-trail'] ?? 'no bin in package.json');
    const result = await new Promise<{ code: number | null; stdout: string }>((resolve) =>
      execFile(bin, ['--version'], { cwd: ROOT }, (error, stdout) =>
        resolve({ code: error ? (typeof error.code === 'number' ? error.code : 1) : 0, stdout }),
      ),
    );
    expect(result.code, `${bin} (run "npm run build" first)`).toBe(0);
    expect(result.stdout.trim()).toBe(manifest.version);
  });
});

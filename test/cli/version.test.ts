import { readFileSync } from 'node:fs';
import path from 'node:path';
import { runCli } from '../support/cli';

const manifest = JSON.parse(
  readFileSync(path.resolve(__dirname, '../../package.json'), 'utf8'),
) as { version: string };

describe('audit-trail --version', () => {
  it('prints the version from package.json and exits 0', async () => {
    for (const flag of ['--version', '-V']) {
      const result = await runCli([flag]);
      expect(result.code).toBe(0);
      expect(result.stdout.trim()).toBe(manifest.version);
    }
  });
});

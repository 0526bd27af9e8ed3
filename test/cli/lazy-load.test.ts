import { execFile } from 'node:child_process';
import path from 'node:path';

const ROOT = path.resolve(__dirname, '../..');
const RECORDER = path.join(__dirname, 'support/record-packages.mjs');

/** The npm packages the kit's own modules required while `audit-trail ARGS` ran. */
function packagesLoadedBy(
  args: readonly string[],
): Promise<{ packages: string[]; stdout: string }> {
  return new Promise((resolve, reject) => {
    execFile(
      process.execPath,
      ['--import', RECORDER, '--import', 'tsx', path.join(ROOT, 'src/cli/main.ts'), ...args],
      { cwd: ROOT },
      (error, stdout, stderr) => {
        const line = /^KIT_PACKAGES (.*)$/m.exec(stderr);
        if (error || !line) return reject(error ?? new Error(`no package list in: ${stderr}`));
        resolve({ packages: JSON.parse(line[1] ?? '[]') as string[], stdout });
      },
    );
  });
}

// Every command's implementation (AWS SDK, kysely, pg, zod, the CDC engine...) is
// imported when that command runs: printing the version or the help loads commander only.
// The kit imports it as @commander-js/extra-typings (typed options), whose run-time
// module is commander itself.
describe('CLI start-up', () => {
  it.each(['--version', '--help', 'migrate --help', 'history changes --help'])(
    '`audit-trail %s` loads no package but commander',
    async (line) => {
      const { packages } = await packagesLoadedBy(line.split(' '));
      expect(packages).toEqual(['@commander-js/extra-typings']);
    },
  );

  it('@commander-js/extra-typings adds no code of its own: it re-exports commander', async () => {
    const typed = await import('@commander-js/extra-typings');
    const commander = await import('commander');
    expect(typed.Command).toBe(commander.Command);
    expect(typed.Option).toBe(commander.Option);
    expect(typed.CommanderError).toBe(commander.CommanderError);
  });

  it('--help still lists every command', async () => {
    const { stdout } = await packagesLoadedBy(['--help']);
    for (const command of [
      'migrate',
      'history',
      'mappings',
      'status',
      'task',
      'replicate',
      'verify',
      'anchor',
      'grant',
      'demo',
      'pgaudit',
      'das',
      'export',
      'doctor',
      'slot',
      'init',
      'config-schema',
      'reload',
    ])
      expect(stdout).toMatch(new RegExp(`^  ${command}\\b`, 'm'));
  });
});

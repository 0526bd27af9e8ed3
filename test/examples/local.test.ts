import { spawn } from 'node:child_process';
import { chmod, mkdtemp, readdir, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { npmScriptCommand } from '../support/npm-script';

// examples/local/run.ts is what README "Using the kit in your own project" tells a user
// to run from a clone (`npm run example`): it must run end to end on embedded PostgreSQL
// and print what the README says it shows, and leave nothing behind, also on Ctrl-C.

const ROOT = path.resolve(__dirname, '../..');
const TIMESTAMP = '(\\d{4}-\\d\\d-\\d\\dT\\d\\d:\\d\\d:\\d\\d\\.\\d{6}Z)';

/** A private TMPDIR (the servers' data folders go there) readable by the postgres OS user. */
async function privateTmp(): Promise<string> {
  const tmp = await mkdtemp(path.join(os.tmpdir(), 'example-local-'));
  await chmod(tmp, 0o755); // as root the servers run as the postgres OS user
  return tmp;
}

const serverFolders = async (tmp: string) =>
  (await readdir(tmp)).filter((entry) => entry.startsWith('audit-trail-pg-'));

/** `npm run example`'s command, in its own process group (a terminal's Ctrl-C reaches all of it). */
function startExample(tmp: string) {
  const { binary, args } = npmScriptCommand('example');
  const child = spawn(binary, args, {
    cwd: ROOT,
    env: { ...process.env, TMPDIR: tmp },
    detached: true,
  });
  const output = { stdout: '', stderr: '' };
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => (output.stdout += chunk));
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => (output.stderr += chunk));
  const exited = new Promise<number | null>((resolve) => child.on('close', resolve));
  return { child, output, exited };
}

describe('examples/local/run.ts', () => {
  it(
    'records, answers and verifies the history it says, and removes its servers',
    { timeout: 240_000 },
    async () => {
      const tmp = await privateTmp();
      try {
        const { output, exited } = startExample(tmp);
        const code = await exited;
        const { stdout, stderr } = output;
        expect({ code, stderr }).toEqual({ code: 0, stderr: '' });

        // Item 1: its load, then alice's and bob's price changes with who and why.
        const item1 = new RegExp(
          [
            'history.history: item 1, oldest first',
            `  ${TIMESTAMP}  SNAPSHOT  \\{"id":1,"name":"fountain pen","price":"9.99"\\}`,
            `  ${TIMESTAMP}  UPDATE    price 9.99 -> 12.50  by alice@example.com: price review TICKET-42`,
            `  ${TIMESTAMP}  UPDATE    price 12.50 -> 11.00  by bob@example.com: clearance TICKET-43`,
          ].join('\n'),
        ).exec(stdout);
        expect(item1, stdout).not.toBeNull();
        const [loaded, byAlice, byBob] = item1!.slice(1);
        expect([loaded, byAlice, byBob]).toEqual([loaded, byAlice, byBob].sort());
        // Touching only an ignored column records nothing.
        expect(stdout).toContain('history.history: item 2 has 1 version(s): SNAPSHOT\n');

        // asOf at an instant read on the source between the two changes: alice's price.
        const asOf = new RegExp(
          `history.asOf: item 1 at ${TIMESTAMP} \\(between the two price changes\\)\\n` +
            '  \\{"id":1,"name":"fountain pen","price":"12.50"\\}\\n',
        ).exec(stdout);
        expect(asOf, stdout).not.toBeNull();
        expect(byAlice! < asOf![1]! && asOf![1]! < byBob!).toBe(true);

        // Bob's transaction: both rows and the context row, across tables.
        expect(stdout).toMatch(
          new RegExp(
            'history.transaction: source transaction (\\d+), every table\\n' +
              '  INSERT  audit_context.transaction_context  \\{"transaction_id":"\\1"\\}\\n' +
              '  UPDATE  public.items  \\{"id":1\\}\\n' +
              '  DELETE  public.items  \\{"id":3\\}\\n',
          ),
        );
        expect(stdout).toContain('history.changesBy: alice@example.com made 1 change(s)\n');
        expect(stdout).toContain(
          '  OK   public.items: 2 source rows, 2 live audit rows, 0 mismatches\n' +
            '  OK   audit_context.transaction_context: 2 source rows, 2 live audit rows, 0 mismatches\n',
        );
        expect(stdout.trimEnd().split('\n').at(-1)).toBe(
          'Stopped both servers and removed their data folders.',
        );
        expect(await serverFolders(tmp)).toEqual([]);
      } finally {
        await rm(tmp, { recursive: true, force: true });
      }
    },
  );

  it('leaves nothing in the temp directory after Ctrl-C', { timeout: 240_000 }, async () => {
    const tmp = await privateTmp();
    try {
      const { child, output, exited } = startExample(tmp);
      const deadline = Date.now() + 200_000;
      while (!output.stdout.includes('Source: public.items') && Date.now() < deadline)
        await new Promise((resolve) => setTimeout(resolve, 100));
      expect(output.stdout, output.stderr).toContain('Source: public.items');
      expect(await serverFolders(tmp)).toHaveLength(2); // source and target
      process.kill(-child.pid!, 'SIGINT'); // the whole group, as a terminal's Ctrl-C
      await exited;
      expect(await serverFolders(tmp)).toEqual([]);
    } finally {
      await rm(tmp, { recursive: true, force: true });
    }
  });
});

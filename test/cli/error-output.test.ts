import { mkdtemp, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { createTestDatabase } from '../support/databases';
import { connectionArgs, runCli } from '../support/cli';

/**
 * What a user sees when a command fails, through the built binary: one line
 * `audit-trail: error [CODE]: message` a script can match on the code, the hint on the
 * next line, and the exit code the error's class defines (2 usage and connection, 1
 * findings and failures).
 */
describe('CLI errors: code, message, hint, exit code', () => {
  let configFile: string;
  beforeAll(async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'audit-trail-errors-'));
    configFile = path.join(dir, 'audit-trail.config.json');
    await writeFile(configFile, JSON.stringify({ tables: [{ schema: 'public', table: 'items' }] }));
  });

  it('a missing config: CONFIG_INVALID, how to get one, exit 2', async () => {
    const run = await runCli(['migrate', '--config', '/nonexistent/audit-trail.config.json']);
    expect(run.stdout).toBe('');
    expect(run.stderr).toMatch(
      /^audit-trail: error \[CONFIG_INVALID\]: cannot read config \/nonexistent\/audit-trail\.config\.json: ENOENT[^\n]*\n {2}hint: give the file with -c\/--config, or write a starter one with audit-trail init\n$/,
    );
    expect(run.code).toBe(2);
  });

  it('a wrong argument: USAGE, exit 2', async () => {
    const run = await runCli(['grant', 'admin', 'bob', '--config', configFile]);
    expect(run.stderr).toBe(
      'audit-trail: error [USAGE]: grant: kind must be reader, writer or engine, got "admin"\n',
    );
    expect(run.code).toBe(2);
  });

  it('a refused connection: CONNECTION_FAILED, the side, a hint, exit 2', async () => {
    const run = await runCli([
      'pgaudit',
      'check',
      ...connectionArgs({ configFile, sourceUrl: 'postgres://nobody:secret@127.0.0.1:1/app' }),
    ]);
    expect(run.stderr).toMatch(
      /^audit-trail: error \[CONNECTION_FAILED\]: source: cannot connect to 127\.0\.0\.1:1\/app: [^\n]+\n {2}hint: check the URL, the network path and the credentials\n$/,
    );
    expect(run.stderr).not.toContain('secret');
    expect(run.code).toBe(2);
  });

  it("keeps the library error's code and hint (pgaudit setup on a server without pgAudit): exit 1", async () => {
    const sourceUrl = await createTestDatabase('errcli');
    const run = await runCli(['pgaudit', 'setup', ...connectionArgs({ configFile, sourceUrl })]);
    expect(run.stderr).toMatch(/^audit-trail: error \[PGAUDIT_SETUP\]: pgaudit is not preloaded: /);
    expect(run.code).toBe(1);
  });

  it('an AWS failure behind a command: its code, what to check, exit 1', async () => {
    const run = await runCli(
      ['task', 'start', '--no-wait', '--task-arn', 'arn:aws:dms:eu-west-1:123456789012:task:ABC'],
      {
        AWS_ACCESS_KEY_ID: 'AKIDEXAMPLE',
        AWS_SECRET_ACCESS_KEY: 'example',
        // Nothing listens there: the call fails at once.
        AWS_ENDPOINT_URL_DATABASE_MIGRATION_SERVICE: 'http://127.0.0.1:9',
        AWS_MAX_ATTEMPTS: '1',
      },
    );
    expect(run.stderr).toMatch(
      /^audit-trail: error \[AWS_REQUEST_FAILED\]: task start: [^\n]+\n {2}hint: check the task ARN, the region and your AWS credentials\n$/,
    );
    expect(run.code).toBe(1);
  });
});

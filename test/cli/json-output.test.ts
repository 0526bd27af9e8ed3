import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { createTestDatabase, withClient } from '../support/databases';
import { type CliResult, connectionArgs, runCli } from '../support/cli';

/** stdout as the one JSON document `--json` promises (a second document fails JSON.parse). */
function document(run: CliResult): unknown {
  expect(run.stdout.endsWith('\n')).toBe(true);
  expect(run.stdout.trim().split('\n')).toHaveLength(1);
  return JSON.parse(run.stdout);
}

/**
 * A stand-in for the DMS API on loopback (JSON 1.1 protocol, as the SDK speaks it):
 * one task, running; every call is recorded.
 */
async function fakeDms(taskArn: string) {
  const calls: string[] = [];
  const server = http.createServer((request, response) => {
    request.resume();
    request.on('end', () => {
      const target = String(request.headers['x-amz-target'] ?? '');
      calls.push(target.split('.').pop() ?? target);
      response.setHeader('content-type', 'application/x-amz-json-1.1');
      response.end(
        JSON.stringify({
          ReplicationTasks: [{ ReplicationTaskArn: taskArn, Status: 'running' }],
        }),
      );
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    endpoint: `http://127.0.0.1:${port}`,
    calls,
    close: () => new Promise((resolve) => server.close(resolve)),
  };
}

// `--json` on the commands that print results: exactly one JSON document on stdout, the
// error (if any) on stderr and the exit code unchanged. Through the built binary.
describe('--json on every command that prints results', () => {
  let dir: string;
  let configFile: string;
  let sourceUrl: string;
  let targetUrl: string;

  beforeAll(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'audit-trail-json-'));
    configFile = path.join(dir, 'audit-trail.config.json');
    await writeFile(configFile, JSON.stringify({ tables: [{ schema: 'public', table: 'items' }] }));
    [sourceUrl, targetUrl] = await Promise.all([
      createTestDatabase('jsrc'),
      createTestDatabase('jtgt'),
    ]);
    await withClient(sourceUrl, (client) =>
      client.query('CREATE TABLE items (id int PRIMARY KEY, name text)'),
    );
  });

  const urls = () => connectionArgs({ configFile, sourceUrl, targetUrl });

  it('migrate: what changed, then up to date; progress lines stay off stdout', async () => {
    const first = await runCli(['migrate', ...urls(), '--json']);
    expect(first.code).toBe(0);
    const report = document(first) as Record<string, unknown>;
    expect(report).toMatchObject({
      upToDate: false,
      tables: ['public.items'],
      createdStagingTables: ['public.items'],
    });
    expect((report.applied as string[]).length).toBeGreaterThan(0);

    const again = await runCli(['migrate', ...urls(), '--json']);
    expect(document(again)).toMatchObject({
      upToDate: true,
      tables: ['public.items'],
      applied: [],
      createdStagingTables: [],
    });
  });

  it('grant: the statement, and whether it ran', async () => {
    await withClient(targetUrl, (client) => client.query('CREATE ROLE json_reader'));
    const dry = await runCli([
      'grant',
      'reader',
      'json_reader',
      '--config',
      configFile,
      '--dry-run',
      '--json',
    ]);
    expect(dry.code).toBe(0);
    expect(document(dry)).toEqual({
      statement: 'GRANT "audit_reader" TO "json_reader"',
      role: 'json_reader',
      kitRole: 'audit_reader',
      kitRoles: ['audit_reader'],
      executed: false,
    });
    const real = await runCli([
      'grant',
      'reader',
      'json_reader',
      ...connectionArgs({ configFile, targetUrl }),
      '--json',
    ]);
    expect(real.code).toBe(0);
    expect(document(real)).toMatchObject({ executed: true });
  });

  it('anchor: the anchor it appended', async () => {
    const file = path.join(dir, 'anchors.jsonl');
    const run = await runCli([
      'anchor',
      ...connectionArgs({ configFile, targetUrl }),
      '--append',
      file,
      '--json',
    ]);
    expect(run.stderr).toBe('');
    expect(run.code).toBe(0);
    const { anchor } = document(run) as { anchor: unknown };
    expect(anchor).toEqual(JSON.parse(await readFile(file, 'utf8')));
  });

  it('init: the file and its tables', async () => {
    const output = path.join(dir, 'init.json');
    const run = await runCli(['init', '--source-url', sourceUrl, '--output', output, '--json']);
    expect(run.code).toBe(0);
    expect(document(run)).toEqual({
      file: output,
      tables: [{ schema: 'public', table: 'items' }],
      skipped: [],
    });
  });

  it('slot drop: what it dropped', async () => {
    await withClient(sourceUrl, (client) =>
      client.query(`SELECT pg_create_logical_replication_slot('json_slot', 'pgoutput')`),
    );
    const run = await runCli([
      'slot',
      'drop',
      'json_slot',
      ...connectionArgs({ configFile, sourceUrl }),
      '--yes',
      '--json',
    ]);
    expect(run.code).toBe(0);
    expect(document(run)).toMatchObject({
      droppedSlot: 'json_slot',
      droppedPublication: 'json_slot',
    });
  });

  it('pgaudit check: the checks as JSON, the failure on stderr, exit 1', async () => {
    const run = await runCli([
      'pgaudit',
      'check',
      ...connectionArgs({ configFile, sourceUrl }),
      '--json',
    ]);
    const checks = document(run) as { item: string; ok: boolean }[];
    expect(checks.length).toBeGreaterThan(1);
    expect(checks.find((check) => /preload/i.test(check.item))?.ok).toBe(false);
    expect(run.stderr).toMatch(
      /^audit-trail: error \[CHECKS_FAILED\]: \d+ of \d+ pgAudit checks failed\n/,
    );
    expect(run.code).toBe(1);
  });

  it('pgaudit setup: a refusal stays on stderr with its exit code, stdout empty', async () => {
    const run = await runCli([
      'pgaudit',
      'setup',
      ...connectionArgs({ configFile, sourceUrl }),
      '--json',
    ]);
    expect(run.stdout).toBe('');
    expect(run.stderr).toMatch(/^audit-trail: error \[PGAUDIT_SETUP\]/);
    expect(run.code).toBe(1);
  });

  it('task start: the task, the action and its status', async () => {
    const taskArn = 'arn:aws:dms:eu-west-1:123456789012:task:JSONTASK';
    const dms = await fakeDms(taskArn);
    try {
      const run = await runCli(['task', 'start', '--task-arn', taskArn, '--no-wait', '--json'], {
        AWS_ACCESS_KEY_ID: 'AKIDEXAMPLE',
        AWS_SECRET_ACCESS_KEY: 'example',
        AWS_ENDPOINT_URL_DATABASE_MIGRATION_SERVICE: dms.endpoint,
        AWS_MAX_ATTEMPTS: '1',
      });
      expect(run.stderr).toBe('');
      expect(run.code).toBe(0);
      expect(document(run)).toEqual({ taskArn, action: 'start', status: 'running' });
      // Already running: described, not started again.
      expect(dms.calls).toEqual(['DescribeReplicationTasks']);
    } finally {
      await dms.close();
    }
  });
});

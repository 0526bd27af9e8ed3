import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AccessAlert, AuditEvent } from '../../src/access-audit/types';
import { runCli } from './support/cli';
import { activityEvent, dasRecord, grant, HEARTBEAT, streamKeys } from './support/das';

let dir: string;
const keys = streamKeys();

beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'das-cli-'));
  await writeFile(path.join(dir, 'key.bin'), keys.dataKey);
  await writeFile(path.join(dir, 'key.b64'), `${keys.dataKey.toString('base64')}\n`);
  await writeFile(
    path.join(dir, 'config.json'),
    JSON.stringify({
      tables: [{ table: 'items', schema: 'public' }],
      accessAudit: { serviceAccounts: ['app_svc'] },
    }),
  );
});
afterAll(() => rm(dir, { recursive: true, force: true }));

async function recordsFile(name: string, records: unknown): Promise<string> {
  const file = path.join(dir, name);
  await writeFile(file, JSON.stringify(records));
  return file;
}

function lines<T>(stdout: string): T[] {
  return stdout
    .trim()
    .split('\n')
    .filter((line) => line !== '')
    .map((line) => JSON.parse(line) as T);
}

describe('audit-trail das decode', () => {
  it('prints the events of every record as NDJSON with one data key file, from `aws kinesis get-records` output', async () => {
    const first = await dasRecord(keys, [activityEvent({ dbUserName: 'alice' }), HEARTBEAT]);
    const second = await dasRecord(keys, [
      activityEvent({ dbUserName: 'bob', class: 'WRITE', command: 'DELETE' }),
    ]);
    const file = await recordsFile('get-records.json', {
      Records: [first, second].map((text) => ({
        SequenceNumber: '1',
        PartitionKey: 'p',
        Data: Buffer.from(text).toString('base64'),
      })),
    });
    for (const keyFile of ['key.bin', 'key.b64']) {
      const run = await runCli(['das', 'decode', '--data-key-file', path.join(dir, keyFile), file]);
      expect(run.error).toBeUndefined();
      const events = lines<AuditEvent>(run.stdout);
      expect(events.map((event) => [event.user, event.auditClass, event.command])).toEqual([
        ['alice', 'READ', 'SELECT'],
        ['bob', 'WRITE', 'DELETE'],
      ]);
      expect(run.stderr).toContain('dropped 1 heartbeat and 0 rdsadmin events');
    }
  });

  it('prints the readable records, names the unreadable one on stderr and fails', async () => {
    const good = await dasRecord(keys, [activityEvent({ dbUserName: 'alice' })]);
    const foreign = await dasRecord(streamKeys(), [activityEvent({ dbUserName: 'mallory' })]);
    const file = await recordsFile('mixed.json', [JSON.parse(foreign), JSON.parse(good)]);
    const run = await runCli(['das', 'decode', '--data-key-file', path.join(dir, 'key.bin'), file]);
    expect(lines<AuditEvent>(run.stdout).map((event) => event.user)).toEqual(['alice']);
    expect(run.stderr).toMatch(/unreadable DAS record 0: decrypt: /);
    expect(run.error?.message).toMatch(/1 DAS records or events could not be read/);
  });

  it('refuses a data key that is not 32 bytes', async () => {
    const keyFile = path.join(dir, 'short.bin');
    await writeFile(keyFile, Buffer.alloc(16));
    const file = await recordsFile('one.json', [
      JSON.parse(await dasRecord(keys, [activityEvent()])),
    ]);
    const run = await runCli(['das', 'decode', '--data-key-file', keyFile, file]);
    expect(run.error?.message).toMatch(/--data-key-file .*32 bytes/);
    expect(run.stdout).toBe('');
  });
});

describe('audit-trail das scan', () => {
  it('prints the alerts the shared rules raise, from a Lambda Kinesis event', async () => {
    const record = await dasRecord(keys, [
      activityEvent({ dbUserName: 'app_svc', class: 'WRITE', command: 'UPDATE' }),
      grant(),
      activityEvent({ class: 'MISC', command: 'SET', objectType: '', objectName: '' }),
    ]);
    const file = await recordsFile('lambda-event.json', {
      Records: [
        { eventSource: 'aws:kinesis', kinesis: { data: Buffer.from(record).toString('base64') } },
      ],
    });
    const run = await runCli([
      'das',
      'scan',
      '--config',
      path.join(dir, 'config.json'),
      '--data-key-file',
      path.join(dir, 'key.bin'),
      file,
    ]);
    expect(run.error).toBeUndefined();
    const alerts = lines<AccessAlert>(run.stdout);
    expect(alerts.map((alert) => [alert.rule, alert.severity, alert.event.command])).toEqual([
      ['privilege-change', 'critical', 'GRANT'],
    ]);
    expect(alerts[0]!.summary).toBe('alice@appdb from 10.0.3.195: GRANT (ROLE)');
  });
});

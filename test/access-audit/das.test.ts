import { KMSClient, DecryptCommand } from '@aws-sdk/client-kms';
import { describe, expect, it, onTestFinished } from 'vitest';
import { decodeDasRecords } from '../../src/access-audit/das/decode';
import { kmsDataKeySource, staticDataKeySource } from '../../src/access-audit/das/keys';
import { dasTimeToIso, normalizeDasEvent } from '../../src/access-audit/das/normalize';
import { AccessRuleEngine } from '../../src/access-audit/rules';
import { parseAccessAuditConfig } from '../../src/config/access-audit';
import {
  activityEvent,
  CLUSTER_RESOURCE_ID,
  dasRecord,
  HEARTBEAT,
  mockKms,
  streamKeys,
} from './support/das';

function kmsSource(keys = streamKeys(), resourceId = CLUSTER_RESOURCE_ID) {
  const kms = mockKms(keys);
  onTestFinished(() => kms.restore());
  return {
    kms,
    source: kmsDataKeySource(new KMSClient({ region: 'eu-west-1' }), resourceId),
    keys,
  };
}

describe('Database Activity Streams decoding', () => {
  it('round trip: KMS with the cluster context, Encryption SDK, gunzip, normalised events', async () => {
    const { kms, source, keys } = kmsSource();
    const record = await dasRecord(keys, [
      activityEvent(),
      activityEvent({
        class: 'WRITE',
        command: 'UPDATE',
        commandText: 'UPDATE public.items SET price = $1 WHERE id = $2',
        paramList: ['9.99', 42],
        statementId: 8,
        rowCount: 1,
      }),
    ]);

    const result = await decodeDasRecords([record], source);

    expect(result.failures).toEqual([]);
    expect(result.events.map(({ event }) => event)).toEqual([
      {
        severity: 'LOG',
        auditType: 'SESSION',
        statementId: 7,
        substatementId: 1,
        auditClass: 'READ',
        command: 'SELECT',
        objectType: 'TABLE',
        objectName: 'public.items',
        statement: 'SELECT * FROM public.items',
        parameterStatus: 'none',
        parameters: [],
        user: 'alice',
        timestamp: '2026-11-30 22:39:49.940668+00',
        time: '2026-11-30T22:39:49.940668+00:00',
        database: 'appdb',
        remoteHost: '10.0.3.195',
        remotePort: 34534,
        pid: 18251,
        applicationName: 'psql',
        sessionId: '5ce5f7f0.474b',
        rows: 3,
        exitCode: 0,
      },
      expect.objectContaining({
        auditClass: 'WRITE',
        command: 'UPDATE',
        parameterStatus: 'logged',
        parameters: ['9.99', '42'],
        statementId: 8,
        rows: 1,
      }),
    ]);
    const calls = kms.commandCalls(DecryptCommand);
    expect(calls).toHaveLength(1);
    expect(calls[0]!.args[0].input.EncryptionContext).toEqual({
      'aws:rds:dbc-id': CLUSTER_RESOURCE_ID,
    });
    expect(Buffer.from(calls[0]!.args[0].input.CiphertextBlob!)).toEqual(keys.encryptedKey);
  });

  it('drops heartbeats and rdsadmin activity, and counts them', async () => {
    const { source, keys } = kmsSource();
    const record = await dasRecord(keys, [
      HEARTBEAT,
      activityEvent({ dbUserName: 'rdsadmin', commandText: 'SELECT 1' }),
      activityEvent({ dbUserName: 'bob' }),
      HEARTBEAT,
    ]);
    const result = await decodeDasRecords([record], source);
    expect(result.events.map(({ event }) => event.user)).toEqual(['bob']);
    expect(result.dropped).toEqual({ heartbeat: 2, rdsadmin: 1 });
    expect(result.failures).toEqual([]);
  });

  it('counts a corrupt record as a failure and still decodes the rest of the batch', async () => {
    const { source, keys } = kmsSource();
    const good = await dasRecord(keys, [activityEvent({ dbUserName: 'carol' })]);
    const tampered = JSON.parse(good) as { databaseActivityEvents: string };
    const bytes = Buffer.from(tampered.databaseActivityEvents, 'base64');
    bytes[bytes.length - 20]! ^= 0xff;
    const corrupt = JSON.stringify({
      ...tampered,
      databaseActivityEvents: bytes.toString('base64'),
    });

    const result = await decodeDasRecords(['not json', '{"type":"x"}', corrupt, good], source);

    expect(result.events.map(({ record, event }) => [record, event.user])).toEqual([[3, 'carol']]);
    expect(result.failures.map(({ record }) => record)).toEqual([0, 1, 2]);
    expect(result.failures[0]!.error).toMatch(/^record is not JSON/);
    expect(result.failures[1]!.error).toMatch(/^not a DAS record: .*databaseActivityEvents/);
    expect(result.failures[2]!.error).toMatch(/^decrypt: /);
  });

  it('reports an event without class, command or user instead of guessing', async () => {
    const { source, keys } = kmsSource();
    const record = await dasRecord(keys, [activityEvent({ class: null }), activityEvent()]);
    const result = await decodeDasRecords([record], source);
    expect(result.events).toHaveLength(1);
    expect(result.failures).toEqual([
      { record: 0, event: 0, error: expect.stringMatching(/class/) as unknown },
    ]);
  });

  it('refuses a record whose key KMS will not open under this cluster context', async () => {
    const keys = streamKeys();
    const { source } = kmsSource(keys, 'cluster-OTHERCLUSTER');
    const record = await dasRecord(keys, [activityEvent()]);
    const result = await decodeDasRecords([record], source);
    expect(result.events).toEqual([]);
    expect(result.failures).toEqual([
      { record: 0, error: expect.stringMatching(/^data key: .*context/) as unknown },
    ]);
  });

  it('refuses a record encrypted under another data key', async () => {
    const record = await dasRecord(streamKeys(), [activityEvent()]);
    const result = await decodeDasRecords([record], staticDataKeySource(streamKeys().dataKey));
    expect(result.events).toEqual([]);
    expect(result.failures).toEqual([
      { record: 0, error: expect.stringMatching(/^decrypt: /) as unknown },
    ]);
  });

  it('keeps failed statements as events with their exit code and error', () => {
    const normalized = normalizeDasEvent(
      activityEvent({ exitCode: '42501', errorMessage: 'permission denied for table cards' }),
    );
    expect(normalized).toMatchObject({
      kind: 'event',
      event: { exitCode: 42501, errorMessage: 'permission denied for table cards' },
    });
  });

  it('converts DAS start times to ISO 8601 keeping microseconds, and nothing else', () => {
    expect(dasTimeToIso('2026-11-30 22:39:49.940668+00')).toBe('2026-11-30T22:39:49.940668+00:00');
    expect(dasTimeToIso('2026-11-30 22:39:49+05:30')).toBe('2026-11-30T22:39:49+05:30');
    expect(dasTimeToIso('30/11/2026 22:39')).toBeUndefined();
  });
});

describe('DAS events through the shared access-audit rules', () => {
  const engine = new AccessRuleEngine(parseAccessAuditConfig({ serviceAccounts: ['app_svc'] }));

  async function verdicts(events: unknown[]) {
    const keys = streamKeys();
    const record = await dasRecord(keys, events);
    const { events: decoded } = await decodeDasRecords([record], staticDataKeySource(keys.dataKey));
    return decoded.map(({ event }) => engine.evaluate(event));
  }

  it.each([
    ['GRANT', 'GRANT SELECT ON public.items TO mallory'],
    ['REVOKE', 'REVOKE SELECT ON public.items FROM bob'],
    ['CREATE ROLE', 'CREATE ROLE mallory LOGIN'],
    ['ALTER ROLE', 'ALTER ROLE mallory SUPERUSER'],
    ['DROP ROLE', 'DROP ROLE bob'],
  ])(
    'a ROLE-class %s alerts as a privilege change, from a service account too',
    async (command, text) => {
      const [human, service] = await verdicts([
        activityEvent({
          class: 'ROLE',
          command,
          commandText: text,
          objectType: '',
          objectName: '',
        }),
        activityEvent({
          class: 'ROLE',
          command,
          commandText: text,
          objectType: '',
          objectName: '',
          dbUserName: 'app_svc',
        }),
      ]);
      for (const verdict of [human, service]) {
        expect(verdict).toMatchObject({
          kind: 'alert',
          alert: { rule: 'privilege-change', severity: 'critical' },
        });
      }
    },
  );

  it('applies the same noise filters and service-account exclusions as pgAudit events', async () => {
    const result = await verdicts([
      activityEvent({
        class: 'MISC',
        command: 'SET',
        commandText: 'SET extra_float_digits = 3',
        objectType: '',
        objectName: '',
      }),
      activityEvent({
        objectName: 'pg_catalog.pg_class',
        commandText: 'SELECT * FROM pg_catalog.pg_class',
      }),
      activityEvent({ dbUserName: 'app_svc', class: 'WRITE', command: 'UPDATE' }),
      activityEvent({ class: 'WRITE', command: 'UPDATE' }),
    ]);
    expect(result).toEqual([
      { kind: 'noise', reason: 'session-command' },
      { kind: 'noise', reason: 'catalog-read' },
      { kind: 'excluded', reason: 'service-account' },
      expect.objectContaining({
        kind: 'alert',
        alert: expect.objectContaining({ rule: 'human-dml' }) as unknown,
      }),
    ]);
  });

  it('alerts on audit tampering seen in the stream', async () => {
    const [verdict] = await verdicts([
      activityEvent({
        class: 'ROLE',
        command: 'ALTER ROLE',
        commandText: "ALTER ROLE alice SET pgaudit.log = 'none'",
        objectType: '',
        objectName: '',
      }),
    ]);
    expect(verdict).toMatchObject({ kind: 'alert', alert: { rule: 'audit-tampering' } });
  });
});

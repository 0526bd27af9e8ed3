import { FirehoseClient, PutRecordBatchCommand } from '@aws-sdk/client-firehose';
import { PublishCommand, SNSClient } from '@aws-sdk/client-sns';
import { mockClient } from 'aws-sdk-client-mock';
import { describe, expect, it, onTestFinished } from 'vitest';
import {
  ARCHIVE_COLUMNS,
  archiveLine,
  MAX_ARCHIVE_LINE_BYTES,
} from '../../src/access-audit/das/archive';
import { normalizeDasEvent } from '../../src/access-audit/das/normalize';
import { parseAccessAuditConfig } from '../../src/config/access-audit';
import { firehoseArchive } from '../../src/lambda/das-decrypt/archive';
import { loadDasSettings } from '../../src/lambda/das-decrypt/handler';
import {
  activityEvent,
  CLUSTER_RESOURCE_ID,
  dasRecord,
  grant,
  HEARTBEAT,
  kinesisEvent,
  streamKeys,
  TOPIC_ARN,
} from './support/das';
import { testDasProcessor } from './support/das-processor';

const ARCHIVE = 'audit-trail-das-archive';
const keys = streamKeys();

function setup() {
  const sns = mockClient(SNSClient);
  const firehose = mockClient(FirehoseClient);
  onTestFinished(() => {
    sns.restore();
    firehose.restore();
  });
  sns.on(PublishCommand).resolves({ MessageId: 'm' });
  const tested = testDasProcessor(keys, {
    settings: {
      topicArn: TOPIC_ARN,
      config: parseAccessAuditConfig({ serviceAccounts: ['app_svc'] }),
    },
    archive: {
      writer: firehoseArchive(new FirehoseClient({ region: 'eu-west-1' }), ARCHIVE, {
        baseDelayMs: 0,
      }),
      clusterResourceId: CLUSTER_RESOURCE_ID,
    },
  });
  return { sns, firehose, ...tested };
}

/** The archive lines of a PutRecordBatch call (each Firehose record holds whole lines), parsed. */
function sentLines(call: { args: [PutRecordBatchCommand] }): Record<string, unknown>[] {
  return (call.args[0].input.Records ?? []).flatMap((record) => {
    const text = Buffer.from(record.Data!).toString('utf8');
    expect(text.endsWith('\n')).toBe(true);
    return text
      .slice(0, -1)
      .split('\n')
      .map((line) => JSON.parse(line) as Record<string, unknown>);
  });
}

/** An event whose archive line (about 600 kB) shares no Firehose record with another. */
const sizable = (statementId: number) =>
  activityEvent({ statementId, commandText: `SELECT '${'x'.repeat(600_000)}'` });

/** A response accepting every record of a call. */
const accepted = (input: PutRecordBatchCommand['input']) => ({
  FailedPutCount: 0,
  Encrypted: true,
  RequestResponses: (input.Records ?? []).map((_, index) => ({ RecordId: `r${index}` })),
});

describe('DAS archive: the decrypt Lambda writes every decoded event to Firehose', () => {
  it('puts one NDJSON line per event (heartbeats and rdsadmin dropped), with the verdict, in PutRecordBatch', async () => {
    const { firehose, process, metrics } = setup();
    firehose.on(PutRecordBatchCommand).callsFake(accepted);
    const event = kinesisEvent([
      await dasRecord(keys, [
        HEARTBEAT,
        activityEvent({ dbUserName: 'rdsadmin' }),
        activityEvent({ dbUserName: 'app_svc' }),
        grant(),
      ]),
    ]);
    await expect(process(event)).resolves.toEqual({ batchItemFailures: [] });
    const calls = firehose.commandCalls(PutRecordBatchCommand);
    expect(calls).toHaveLength(1);
    expect(calls[0]!.args[0].input.DeliveryStreamName).toBe(ARCHIVE);
    const lines = sentLines(calls[0]!);
    expect(lines).toHaveLength(2);
    // Every line carries exactly the Glue table's columns.
    for (const line of lines)
      expect(Object.keys(line)).toEqual(ARCHIVE_COLUMNS.map((column) => column.name));
    const eventId = event.Records[0]!.eventID!;
    expect(lines[0]).toMatchObject({
      event_id: `${eventId}/2`,
      cluster_resource_id: CLUSTER_RESOURCE_ID,
      instance_id: 'db-EXAMPLE',
      event_time: '2026-11-30T22:39:49.940668+00:00',
      db_user: 'app_svc',
      class: 'READ',
      command: 'SELECT',
      object_name: 'public.items',
      row_count: 3,
      exit_code: 0,
      verdict: 'excluded',
      rule: 'service-account',
      truncated: false,
    });
    expect(lines[1]).toMatchObject({
      event_id: `${eventId}/3`,
      db_user: 'alice',
      class: 'ROLE',
      command: 'GRANT',
      statement: 'GRANT SELECT ON public.items TO mallory',
      verdict: 'alert',
      rule: 'privilege-change',
    });
    expect(metrics).toMatchObject({ ArchivedEvents: 2, MonitorErrors: 0 });
  });

  it('sends again only the entries a partial failure refused (FailedPutCount > 0), then succeeds', async () => {
    const { firehose, process, metrics } = setup();
    firehose
      .on(PutRecordBatchCommand)
      .callsFakeOnce((input: PutRecordBatchCommand['input']) => ({
        FailedPutCount: 1,
        Encrypted: true,
        RequestResponses: (input.Records ?? []).map((_, index) =>
          index === 1
            ? { ErrorCode: 'ServiceUnavailableException', ErrorMessage: 'Slow down.' }
            : { RecordId: `r${index}` },
        ),
      }))
      .callsFake(accepted);
    const event = kinesisEvent([
      await dasRecord(keys, [sizable(1), sizable(2)]),
      await dasRecord(keys, [sizable(3)]),
    ]);
    await expect(process(event)).resolves.toEqual({ batchItemFailures: [] });
    const calls = firehose.commandCalls(PutRecordBatchCommand);
    expect(calls).toHaveLength(2);
    expect(sentLines(calls[0]!).map((line) => line.statement_id)).toEqual([1, 2, 3]);
    expect(sentLines(calls[1]!).map((line) => line.statement_id)).toEqual([2]);
    expect(metrics).toMatchObject({ ArchivedEvents: 3, MonitorErrors: 0 });
  });

  it('retries a call that threw', async () => {
    const { firehose, process } = setup();
    const throttled = Object.assign(new Error('Rate exceeded'), {
      name: 'ServiceUnavailableException',
    });
    firehose.on(PutRecordBatchCommand).rejectsOnce(throttled).callsFake(accepted);
    const event = kinesisEvent([await dasRecord(keys, [activityEvent()])]);
    await expect(process(event)).resolves.toEqual({ batchItemFailures: [] });
    expect(firehose.commandCalls(PutRecordBatchCommand)).toHaveLength(2);
  });

  it('reports the first record with a line Firehose keeps refusing, alerts only before it, counts and logs it', async () => {
    const { firehose, sns, process, metrics, errors } = setup();
    // Firehose refuses the record holding the second Kinesis record's lines (about 600 kB
    // and 1 kB, packed together), whatever the attempt.
    firehose.on(PutRecordBatchCommand).callsFake((input: PutRecordBatchCommand['input']) => {
      const responses = (input.Records ?? []).map((record, index) =>
        Buffer.from(record.Data!).toString().includes('"statement_id":2,')
          ? { ErrorCode: 'InternalFailure', ErrorMessage: 'Internal failure.' }
          : { RecordId: `r${index}` },
      );
      return {
        FailedPutCount: responses.filter((response) => 'ErrorCode' in response).length,
        Encrypted: true,
        RequestResponses: responses,
      };
    });
    const event = kinesisEvent([
      await dasRecord(keys, [
        grant({ commandText: `GRANT SELECT ON t TO a -- ${'x'.repeat(600_000)}` }),
      ]),
      await dasRecord(keys, [sizable(2), grant({ statementId: 4 })]),
      await dasRecord(keys, [
        grant({ commandText: `GRANT SELECT ON t TO b -- ${'x'.repeat(600_000)}` }),
      ]),
    ]);
    await expect(process(event)).resolves.toEqual({
      batchItemFailures: [{ itemIdentifier: event.Records[1]!.kinesis.sequenceNumber }],
    });
    // Four attempts for the refused record's two lines; the first record's alert only.
    expect(firehose.commandCalls(PutRecordBatchCommand)).toHaveLength(4);
    expect(sns.commandCalls(PublishCommand)).toHaveLength(1);
    expect(metrics).toMatchObject({ MonitorErrors: 2, ArchivedEvents: 2 });
    expect(errors).toContainEqual(
      expect.objectContaining({
        failed: 2,
        errors: ['InternalFailure: Internal failure.'],
        retryFrom: event.Records[1]!.kinesis.sequenceNumber,
      }),
    );
  });

  it('archives before it alerts: an archive failure of the first record sends no alert', async () => {
    const { firehose, sns, process } = setup();
    firehose.on(PutRecordBatchCommand).rejects(new Error('AccessDeniedException'));
    const event = kinesisEvent([await dasRecord(keys, [grant()])]);
    await expect(process(event)).resolves.toEqual({
      batchItemFailures: [{ itemIdentifier: event.Records[0]!.kinesis.sequenceNumber }],
    });
    expect(sns.commandCalls(PublishCommand)).toHaveLength(0);
  });

  it('archives the records before an undecryptable one and reports that one', async () => {
    const { firehose, process } = setup();
    firehose.on(PutRecordBatchCommand).callsFake(accepted);
    const event = kinesisEvent([
      await dasRecord(keys, [activityEvent({ statementId: 1 })]),
      'garbage',
      await dasRecord(keys, [activityEvent({ statementId: 3 })]),
    ]);
    await expect(process(event)).resolves.toEqual({
      batchItemFailures: [{ itemIdentifier: event.Records[1]!.kinesis.sequenceNumber }],
    });
    const calls = firehose.commandCalls(PutRecordBatchCommand);
    expect(calls.flatMap((call) => sentLines(call).map((line) => line.statement_id))).toEqual([1]);
  });

  it('keeps each call within 500 records and 4 MiB', async () => {
    const { firehose, process, metrics } = setup();
    firehose.on(PutRecordBatchCommand).callsFake(accepted);
    const many = Array.from({ length: 1200 }, (_, index) =>
      activityEvent({ statementId: index + 1 }),
    );
    const large = Array.from({ length: 9 }, (_, index) =>
      activityEvent({ statementId: 5000 + index, commandText: `SELECT '${'x'.repeat(900_000)}'` }),
    );
    const event = kinesisEvent([await dasRecord(keys, many), await dasRecord(keys, large)]);
    await expect(process(event)).resolves.toEqual({ batchItemFailures: [] });
    const calls = firehose.commandCalls(PutRecordBatchCommand);
    for (const call of calls) {
      const records = call.args[0].input.Records ?? [];
      expect(records.length).toBeLessThanOrEqual(500);
      const bytes = records.reduce((sum, record) => sum + record.Data!.length, 0);
      expect(bytes).toBeLessThanOrEqual(4 * 1024 * 1024);
    }
    const ids = calls.flatMap((call) => sentLines(call).map((line) => line.statement_id));
    expect(ids).toEqual([...many, ...large].map((fields) => fields.statementId));
    expect(metrics).toMatchObject({ ArchivedEvents: 1209 });
  });

  it('packs consecutive lines into Firehose records of up to 1,000 KiB (Firehose bills each record rounded up to 5 KB)', async () => {
    const { firehose, process, metrics } = setup();
    firehose.on(PutRecordBatchCommand).callsFake(accepted);
    const small = (from: number, count: number) =>
      Array.from({ length: count }, (_, index) => activityEvent({ statementId: from + index }));
    const event = kinesisEvent([
      await dasRecord(keys, small(1, 1000)),
      await dasRecord(keys, small(1001, 1)),
      await dasRecord(keys, [sizable(1002)]),
      await dasRecord(keys, small(1003, 2)),
    ]);
    await expect(process(event)).resolves.toEqual({ batchItemFailures: [] });
    const records = firehose
      .commandCalls(PutRecordBatchCommand)
      .flatMap((call) => call.args[0].input.Records ?? []);
    const sizes = records.map((record) => record.Data!.length);
    // About 1 kB a line: 1,004 lines in 2 records, not 1,004 (records cross Kinesis records).
    expect(sizes.length).toBe(2);
    for (const size of sizes) expect(size).toBeLessThanOrEqual(1000 * 1024);
    const lines = firehose
      .commandCalls(PutRecordBatchCommand)
      .flatMap((call) => sentLines(call).map((line) => line.statement_id));
    expect(lines).toEqual(Array.from({ length: 1004 }, (_, index) => index + 1));
    expect(metrics).toMatchObject({ ArchivedEvents: 1004 });
  });

  it('sends every line byte for byte, whole, in order, multi-byte characters across records included', async () => {
    const { firehose, process, metrics } = setup();
    firehose.on(PutRecordBatchCommand).callsFake(accepted);
    // A 700 kB ASCII line, then lines of 200,000 UTF-16 units and 400 kB of UTF-8 (é: 2
    // bytes, 😀: 4): the second fits the first one's record by its length, not its bytes.
    const wide = (statementId: number, unit: string, count: number) =>
      activityEvent({ statementId, commandText: `SELECT '${unit.repeat(count)}'` });
    const events = [
      activityEvent({ statementId: 1, commandText: "SELECT '\"\\\u0001\ud800'" }),
      wide(2, 'x', 700_000),
      wide(3, 'é', 200_000),
      wide(4, '😀', 100_000),
      activityEvent({ statementId: 5 }),
      wide(6, '"', 200_000),
      activityEvent({ statementId: 7, commandText: "SELECT '\u2028'" }),
    ];
    await expect(process(kinesisEvent([await dasRecord(keys, events)]))).resolves.toEqual({
      batchItemFailures: [],
    });
    const records = firehose
      .commandCalls(PutRecordBatchCommand)
      .flatMap((call) => call.args[0].input.Records ?? []);
    for (const record of records) expect(record.Data!.length).toBeLessThanOrEqual(1000 * 1024);
    const text = Buffer.concat(records.map((record) => Buffer.from(record.Data!))).toString('utf8');
    const lines = text.slice(0, -1).split('\n');
    expect(
      lines.map((line) => (JSON.parse(line) as { statement_id: number }).statement_id),
    ).toEqual([1, 2, 3, 4, 5, 6, 7]);
    // Each line is exactly what JSON.stringify writes for its values.
    for (const line of lines) expect(line).toBe(JSON.stringify(JSON.parse(line)));
    expect(metrics).toMatchObject({ ArchivedEvents: 7 });
  });

  it('does not call Firehose for a batch of heartbeats only', async () => {
    const { firehose, process } = setup();
    await process(kinesisEvent([await dasRecord(keys, [HEARTBEAT])]));
    expect(firehose.commandCalls(PutRecordBatchCommand)).toHaveLength(0);
  });
});

describe('DAS archive line', () => {
  const origin = { kinesisEventId: 'shardId-0:1', position: 0, clusterResourceId: 'cluster-X' };
  const event = (fields: Record<string, unknown>) => {
    const normalized = normalizeDasEvent(activityEvent(fields));
    if (normalized.kind !== 'event') throw new Error(normalized.kind);
    return normalized.event;
  };

  it('cuts a statement too long for one Firehose record to fit, and says so', () => {
    const text = `SELECT '${'é"'.repeat(700_000)}'`;
    const line = archiveLine(
      event({ commandText: text, paramList: ['a', 'b'] }),
      { kind: 'pass' },
      origin,
    );
    expect(Buffer.byteLength(line)).toBeLessThanOrEqual(MAX_ARCHIVE_LINE_BYTES + 1);
    const parsed = JSON.parse(line) as Record<string, unknown>;
    expect(parsed.truncated).toBe(true);
    expect(parsed.parameters).toEqual([]);
    expect(text.startsWith(parsed.statement as string)).toBe(true);
    expect((parsed.statement as string).length).toBeGreaterThan(100_000);
    expect(parsed).toMatchObject({ db_user: 'alice', object_name: 'public.items' });
  });

  it('keeps an event that fits whole', () => {
    const parsed = JSON.parse(
      archiveLine(event({ paramList: ['42'] }), { kind: 'pass' }, origin),
    ) as Record<string, unknown>;
    expect(parsed).toMatchObject({
      truncated: false,
      parameters: ['42'],
      event_id: 'shardId-0:1/0',
    });
  });
});

describe('DAS decrypt Lambda settings: archive stream', () => {
  const env = {
    ALERT_TOPIC_ARN: TOPIC_ARN,
    ACCESS_AUDIT_CONFIG: '{}',
    DAS_CLUSTER_RESOURCE_ID: CLUSTER_RESOURCE_ID,
  };

  it('reads the delivery stream name, and none means no archive', () => {
    expect(loadDasSettings({ ...env, DAS_ARCHIVE_STREAM: ARCHIVE }).archiveStream).toBe(ARCHIVE);
    expect(loadDasSettings(env).archiveStream).toBeUndefined();
  });

  it('names a malformed stream name', () => {
    expect(() => loadDasSettings({ ...env, DAS_ARCHIVE_STREAM: 'arn:aws:firehose:x' })).toThrow(
      /DAS_ARCHIVE_STREAM: must be a Firehose delivery stream name/,
    );
  });
});

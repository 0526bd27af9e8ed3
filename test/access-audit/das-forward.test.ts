import { PublishCommand, SNSClient } from '@aws-sdk/client-sns';
import {
  SendMessageBatchCommand,
  SQSClient,
  type SendMessageBatchRequestEntry,
} from '@aws-sdk/client-sqs';
import { mockClient } from 'aws-sdk-client-mock';
import { beforeEach, describe, expect, it } from 'vitest';
import { parseAccessAuditConfig } from '../../src/config/access-audit';
import { loadDasSettings } from '../../src/lambda/das-decrypt/handler';
import {
  activityEvent,
  dasRecord,
  HEARTBEAT,
  kinesisEvent,
  STREAM_ARN,
  streamKeys,
  TOPIC_ARN,
  CLUSTER_RESOURCE_ID,
} from './support/das';
import { DAS_HANDLER_ENV, testDasHandler, testDasProcessor } from './support/das-processor';

const QUEUE_URL = 'https://sqs.eu-west-1.amazonaws.com/111122223333/access-events';
const keys = streamKeys();

const sns = mockClient(SNSClient);
const sqs = mockClient(SQSClient);
beforeEach(() => {
  sns.reset();
  sqs.reset();
  sns.on(PublishCommand).resolves({ MessageId: 'm' });
  sqs
    .on(SendMessageBatchCommand)
    .callsFake((input: { Entries: SendMessageBatchRequestEntry[] }) => ({
      Successful: input.Entries.map(({ Id }) => ({ Id, MessageId: `sqs-${Id}` })),
      Failed: [],
    }));
});

function processor(
  sqsSettings: Record<string, unknown>,
  fifo = false,
  config: Record<string, unknown> = {},
) {
  return testDasProcessor(keys, {
    settings: {
      topicArn: TOPIC_ARN,
      queueUrl: fifo ? `${QUEUE_URL}.fifo` : QUEUE_URL,
      fifo,
      config: parseAccessAuditConfig({
        serviceAccounts: ['app_svc'],
        ...config,
        sqs: { enabled: true, fifo, ...sqsSettings },
      }),
    },
    sqs: new SQSClient({ region: 'eu-west-1' }),
  });
}

function sent(): SendMessageBatchRequestEntry[] {
  return sqs.commandCalls(SendMessageBatchCommand).flatMap((call) => {
    expect(call.args[0].input.QueueUrl).toMatch(/^https:\/\/sqs\.eu-west-1\.amazonaws\.com\//);
    return call.args[0].input.Entries ?? [];
  });
}

const body = (entry: SendMessageBatchRequestEntry) =>
  JSON.parse(entry.MessageBody!) as Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any -- parsed JSON
const format = (entry: SendMessageBatchRequestEntry) =>
  entry.MessageAttributes?.['format']?.StringValue;

const GRANT = activityEvent({
  class: 'ROLE',
  command: 'GRANT',
  commandText: 'GRANT SELECT ON public.items TO mallory',
  objectType: '',
  objectName: '',
  statementId: 9,
});
const ALICE_SELECT = activityEvent({ statementId: 8 });
const SERVICE = activityEvent({ dbUserName: 'app_svc', statementId: 3 });
const RDSADMIN = activityEvent({ dbUserName: 'rdsadmin', statementId: 1 });
const FAILED = activityEvent({
  dbUserName: 'erin',
  class: 'WRITE',
  command: 'UPDATE',
  commandText: 'UPDATE items SET note = $1 WHERE id = 7',
  exitCode: 1,
  errorMessage: 'permission denied for table items',
  statementId: 4,
});

describe('DAS events to the SQS queue (sqs.forward / sqs.format)', () => {
  it('forward alerts: the alert document the pgAudit path sends, once per alert', async () => {
    const { process, metrics } = processor({ forward: 'alerts' });
    const response = await process(
      kinesisEvent([await dasRecord(keys, [HEARTBEAT, SERVICE, ALICE_SELECT, GRANT])]),
    );
    expect(response).toEqual({ batchItemFailures: [] });
    const entries = sent();
    // alice's SELECT alerts as human-read (built-in rule), the GRANT as a privilege change.
    expect(entries.map((entry) => body(entry).rule)).toEqual(['human-read', 'privilege-change']);
    expect(body(entries[1]!)).toMatchObject({
      version: 1,
      kind: 'alert',
      rule: 'privilege-change',
      event: { user: 'alice', auditClass: 'ROLE', command: 'GRANT' },
      source: { logGroup: STREAM_ARN, logStream: 'db-EXAMPLE' },
    });
    expect(entries.map(format)).toEqual([undefined, undefined]);
    expect(metrics).toMatchObject({ Alerts: 2, MonitorErrors: 0 });
  });

  it('forward events, kit: every alert and pass (not noise, service accounts, heartbeats or rdsadmin), in stream order', async () => {
    // With human reads not alerting, alice's SELECT passes: forwarded without a rule.
    const { process } = processor({ forward: 'events', format: 'kit' }, false, {
      defaultRules: { humanReads: false },
    });
    await process(
      kinesisEvent([
        await dasRecord(keys, [HEARTBEAT, SERVICE, RDSADMIN, ALICE_SELECT]),
        await dasRecord(keys, [FAILED, GRANT]),
      ]),
    );
    const bodies = sent().map(body);
    expect(bodies.map((b) => [b.kind, b.event.user, b.event.statementId, b.rule])).toEqual([
      ['event', 'alice', 8, undefined],
      ['event', 'erin', 4, expect.any(String)],
      ['event', 'alice', 9, 'privilege-change'],
    ]);
    // A failed statement is an event with its exit code and error.
    expect(bodies[1]!.event).toMatchObject({
      exitCode: 1,
      errorMessage: 'permission denied for table items',
    });
  });

  it('raw: the activity event exactly as RDS wrote it, with its cluster, instance and stream position', async () => {
    const { process } = processor({ forward: 'events', format: 'raw' });
    const event = kinesisEvent([
      await dasRecord(keys, [HEARTBEAT, SERVICE, ALICE_SELECT, GRANT, RDSADMIN]),
    ]);
    await process(event);
    const entries = sent();
    expect(entries.map(format)).toEqual(['raw', 'raw']);
    expect(entries.map(body)).toEqual([
      {
        id: `${event.Records[0]!.eventID}/2`,
        streamArn: STREAM_ARN,
        sequenceNumber: event.Records[0]!.kinesis.sequenceNumber,
        position: 2,
        clusterId: CLUSTER_RESOURCE_ID,
        instanceId: 'db-EXAMPLE',
        activityEvent: ALICE_SELECT,
        truncated: false,
      },
      {
        id: `${event.Records[0]!.eventID}/3`,
        streamArn: STREAM_ARN,
        sequenceNumber: event.Records[0]!.kinesis.sequenceNumber,
        position: 3,
        clusterId: CLUSTER_RESOURCE_ID,
        instanceId: 'db-EXAMPLE',
        activityEvent: GRANT,
        truncated: false,
      },
    ]);
  });

  it('raw: the queue ignore lists apply as to kit messages', async () => {
    const { process } = processor({
      forward: 'events',
      format: 'raw',
      ignoreUsers: ['erin'],
      ignoreDatabases: ['reporting'],
    });
    await process(
      kinesisEvent([
        await dasRecord(keys, [
          FAILED,
          activityEvent({ databaseName: 'reporting', statementId: 5 }),
          ALICE_SELECT,
        ]),
      ]),
    );
    expect(sent().map((entry) => body(entry).activityEvent)).toEqual([ALICE_SELECT]);
  });

  it('both on a FIFO queue: each event as kit and raw, grouped by instance, deduplicated by stream position', async () => {
    const { process } = processor({ forward: 'events', format: 'both' }, true);
    const event = kinesisEvent([await dasRecord(keys, [ALICE_SELECT, GRANT])]);
    await process(event);
    const first = sent();
    expect(first.map(format)).toEqual(['kit', 'kit', 'raw', 'raw']);
    const id = event.Records[0]!.eventID;
    expect(first.map((entry) => entry.MessageDeduplicationId)).toEqual([
      `${id}/0`,
      `${id}/1`,
      `raw-${id}/0`,
      `raw-${id}/1`,
    ]);
    expect(new Set(first.map((entry) => entry.MessageGroupId))).toEqual(new Set(['db-EXAMPLE']));
    // Kinesis redelivers the same record after a failure: the same ids, so SQS drops the copies.
    sqs.resetHistory();
    await process(event);
    expect(sent().map((entry) => entry.MessageDeduplicationId)).toEqual(
      first.map((entry) => entry.MessageDeduplicationId),
    );
  });

  it('a raw event too large for SQS is cut and flagged, never dropped', async () => {
    const { process } = processor({ forward: 'events', format: 'raw' });
    const huge = activityEvent({
      commandText: `SELECT '${'x'.repeat(400_000)}'`,
      paramList: ['y'.repeat(100_000)],
    });
    await process(kinesisEvent([await dasRecord(keys, [huge])]));
    const entries = sent();
    expect(entries).toHaveLength(1);
    expect(Buffer.byteLength(entries[0]!.MessageBody!)).toBeLessThan(256 * 1024);
    const sentBody = body(entries[0]!);
    expect(sentBody.truncated).toBe(true);
    expect(sentBody.activityEvent.paramList).toEqual([]);
    expect(sentBody.activityEvent.commandText).toMatch(/^SELECT 'xxx/);
    expect({ ...sentBody.activityEvent, commandText: '', paramList: [] }).toEqual({
      ...huge,
      commandText: '',
      paramList: [],
    });
  });

  it('stops at a record the queue refused, before its alerts, so Lambda retries it', async () => {
    const { process, metrics } = processor({ forward: 'events', format: 'kit' });
    sqs.on(SendMessageBatchCommand).callsFake((input: { Entries: { Id: string }[] }) => {
      const calls = sqs.commandCalls(SendMessageBatchCommand).length;
      if (calls === 1) return { Successful: input.Entries.map(({ Id }) => ({ Id })), Failed: [] };
      return {
        Successful: [],
        Failed: input.Entries.map(({ Id }) => ({
          Id,
          Code: 'ServiceUnavailable',
          SenderFault: false,
        })),
      };
    });
    const event = kinesisEvent([
      await dasRecord(keys, [GRANT]),
      await dasRecord(keys, [GRANT]),
      await dasRecord(keys, [GRANT]),
    ]);
    const response = await process(event);
    expect(response).toEqual({
      batchItemFailures: [{ itemIdentifier: event.Records[1]!.kinesis.sequenceNumber }],
    });
    // Record 0 forwarded and alerted; record 1 refused by the queue: no alert for it yet.
    expect(sns.commandCalls(PublishCommand)).toHaveLength(1);
    expect(metrics).toMatchObject({ MonitorErrors: 1 });
  });

  it('sends nothing to SQS without a queue', async () => {
    const { process } = testDasProcessor(keys);
    await process(kinesisEvent([await dasRecord(keys, [GRANT])]));
    expect(sqs.commandCalls(SendMessageBatchCommand)).toHaveLength(0);
    expect(sns.commandCalls(PublishCommand)).toHaveLength(1);
  });
});

describe('DAS decrypt Lambda settings: the forward queue', () => {
  it('reads FORWARD_QUEUE_URL like the alert Lambda (FIFO when it ends in .fifo)', () => {
    const settings = loadDasSettings({
      ...DAS_HANDLER_ENV,
      FORWARD_QUEUE_URL: `${QUEUE_URL}.fifo`,
    });
    expect(settings).toMatchObject({ queueUrl: `${QUEUE_URL}.fifo`, fifo: true });
  });
});

describe('DAS decrypt handler forwarding', () => {
  it('gives the processor an SQS client when FORWARD_QUEUE_URL is set, so events reach the queue', async () => {
    const handler = testDasHandler(keys, {
      ACCESS_AUDIT_CONFIG: JSON.stringify({ sqs: { enabled: true, forward: 'events' } }),
      FORWARD_QUEUE_URL: QUEUE_URL,
    });
    const event = kinesisEvent([await dasRecord(keys, [activityEvent()])]);
    await expect(handler(event)).resolves.toEqual({ batchItemFailures: [] });
    expect(sqs.commandCalls(SendMessageBatchCommand)).toHaveLength(1);
    expect(sqs.commandCalls(SendMessageBatchCommand)[0]!.args[0].input.QueueUrl).toBe(QUEUE_URL);
  });
});

import { DecryptCommand } from '@aws-sdk/client-kms';
import { PublishCommand, SNSClient } from '@aws-sdk/client-sns';
import { SendMessageCommand, SQSClient } from '@aws-sdk/client-sqs';
import { gzipSync } from 'node:zlib';
import { mockClient } from 'aws-sdk-client-mock';
import { describe, expect, it, onTestFinished } from 'vitest';
import { loadDasSettings } from '../../src/lambda/das-decrypt/handler';
import { parseAccessAuditConfig } from '../../src/config/access-audit';
import { UNREADABLE_RECORD_KIND } from '../../src/lambda/das-decrypt/processor';
import {
  dasRecord,
  dasRecordOf,
  grant,
  kinesisEvent,
  STREAM_ARN,
  streamKeys,
  TOPIC_ARN,
} from './support/das';
import { DAS_HANDLER_ENV, testDasHandler, testDasProcessor } from './support/das-processor';

const keys = streamKeys();
const FAILURE_QUEUE_URL = 'https://sqs.eu-west-1.amazonaws.com/111122223333/das-failures';

/** The alert topic and the failure queue, mocked, both accepting. */
function topicAndQueue() {
  const sns = mockClient(SNSClient);
  const sqs = mockClient(SQSClient);
  onTestFinished(() => {
    sns.restore();
    sqs.restore();
  });
  sns.on(PublishCommand).resolves({ MessageId: 'm' });
  sqs.on(SendMessageCommand).resolves({ MessageId: 'q' });
  return { sns, sqs };
}

/** The processor with the stack's failure queue (mock SQS) and alert topic (mock SNS). */
function setup() {
  const { sns, sqs } = topicAndQueue();
  const processor = testDasProcessor(keys, {
    settings: { topicArn: TOPIC_ARN, config: parseAccessAuditConfig({}) },
    failureQueue: { sqs: new SQSClient({ region: 'eu-west-1' }), queueUrl: FAILURE_QUEUE_URL },
  });
  return { sns, sqs, ...processor };
}

/** A real record whose ciphertext was altered: the Encryption SDK's authentication tag fails. */
async function tamperedRecord(): Promise<string> {
  const record = JSON.parse(await dasRecord(keys, [grant()])) as Record<string, string>;
  const body = Buffer.from(record.databaseActivityEvents!, 'base64');
  const at = body.length - 40;
  body[at] = body[at]! ^ 0xff;
  return JSON.stringify({ ...record, databaseActivityEvents: body.toString('base64') });
}

const poisons: [string, () => Promise<string>][] = [
  ['not JSON', () => Promise.resolve('not a DAS record')],
  ['a wrong shape', () => Promise.resolve('{"type":"DatabaseActivityMonitoringRecords"}')],
  ['a data key KMS refuses (InvalidCiphertextException)', () => dasRecord(streamKeys(), [grant()])],
  ['a tampered ciphertext', tamperedRecord],
  // Decrypted and authenticated, but not what RDS writes: the decode steps after decrypt.
  ['plaintext that is not gzip', () => dasRecordOf(keys, Buffer.from('{"not":"gzipped"}'))],
  ['gzip that is not JSON', () => dasRecordOf(keys, gzipSync('not json {'))],
  [
    'JSON that is not an activity payload',
    () => dasRecordOf(keys, gzipSync(JSON.stringify({ type: 'x' }))),
  ],
];

describe('DAS decrypt Lambda: a record that can never be read (issue #12)', () => {
  it.each(poisons)(
    'alerts on the activity after %s, alerts on it, sends it to the failure queue and goes on',
    async (_name, poison) => {
      const { sns, sqs, process, metrics } = setup();
      const corrupt = await poison();
      const event = kinesisEvent([
        await dasRecord(keys, [grant()]),
        corrupt,
        await dasRecord(keys, [grant()]),
      ]);
      await expect(process(event)).resolves.toEqual({ batchItemFailures: [] });

      const published = sns.commandCalls(PublishCommand).map((call) => call.args[0].input);
      expect(published.map((input) => input.MessageAttributes?.kind?.StringValue)).toEqual([
        'alert',
        'unreadable-record',
        'alert',
      ]);
      expect(published[2]!.Subject).toContain('privilege-change');
      const unreadable = published[1]!;
      expect(unreadable.TopicArn).toBe(TOPIC_ARN);
      expect(unreadable.MessageAttributes?.severity?.StringValue).toBe('critical');
      expect(unreadable.Message).toContain(STREAM_ARN);
      expect(unreadable.Message).toContain(event.Records[1]!.kinesis.sequenceNumber);

      const sent = sqs.commandCalls(SendMessageCommand).map((call) => call.args[0].input);
      expect(sent).toHaveLength(1);
      expect(sent[0]!.QueueUrl).toBe(FAILURE_QUEUE_URL);
      const body = JSON.parse(sent[0]!.MessageBody!) as Record<string, unknown>;
      expect(body).toMatchObject({
        kind: UNREADABLE_RECORD_KIND,
        streamArn: STREAM_ARN,
        eventId: event.Records[1]!.eventID,
        sequenceNumber: event.Records[1]!.kinesis.sequenceNumber,
        partitionKey: 'db-EXAMPLE',
        truncated: false,
      });
      // The record itself, byte for byte: what an investigator re-reads.
      expect(Buffer.from(body.data as string, 'base64').toString('utf8')).toBe(corrupt);
      expect((body.errors as string[]).length).toBeGreaterThan(0);
      expect(metrics).toMatchObject({ ParseErrors: 1, Alerts: 3, MonitorErrors: 0 });
    },
  );

  it('queues every record of a wrong cluster id (foreign data key) but sends one alert for the batch, saying how many', async () => {
    const { sns, sqs, process, metrics } = setup();
    const foreign = streamKeys();
    const texts = await Promise.all(Array.from({ length: 6 }, () => dasRecord(foreign, [grant()])));
    const event = kinesisEvent(texts);
    await expect(process(event)).resolves.toEqual({ batchItemFailures: [] });
    expect(sqs.commandCalls(SendMessageCommand)).toHaveLength(6);
    const published = sns.commandCalls(PublishCommand).map((call) => call.args[0].input);
    expect(published).toHaveLength(1);
    expect(published[0]!.Subject).toContain('6 unreadable');
    expect(published[0]!.Message).toContain('6 Database Activity Stream records could not be read');
    expect(published[0]!.Message).toContain(event.Records[0]!.kinesis.sequenceNumber);
    expect(published[0]!.Message).toContain(event.Records[5]!.kinesis.sequenceNumber);
    expect(metrics).toMatchObject({ ParseErrors: 6, MonitorErrors: 0 });
  });

  it('alerts on unreadable records before the next alert of the batch, one message for each run of them', async () => {
    const { sns, process } = setup();
    const event = kinesisEvent([
      'not a DAS record',
      'not one either',
      await dasRecord(keys, [grant()]),
      'a third',
    ]);
    await expect(process(event)).resolves.toEqual({ batchItemFailures: [] });
    const published = sns.commandCalls(PublishCommand).map((call) => call.args[0].input);
    expect(published.map((input) => input.MessageAttributes?.kind?.StringValue)).toEqual([
      'unreadable-record',
      'alert',
      'unreadable-record',
    ]);
    expect(published[0]!.Subject).toContain('2 unreadable');
    expect(published[2]!.Message).toContain(event.Records[3]!.kinesis.sequenceNumber);
  });

  it('retries from the first unreadable record of a run when its alert cannot be sent, and alerts on nothing after it', async () => {
    const { sns, sqs, process, metrics } = setup();
    sns.on(PublishCommand).rejects(new Error('SNS down'));
    const event = kinesisEvent([
      'not a DAS record',
      'not one either',
      await dasRecord(keys, [grant()]),
    ]);
    await expect(process(event)).resolves.toEqual({
      batchItemFailures: [{ itemIdentifier: event.Records[0]!.kinesis.sequenceNumber }],
    });
    // The queue has both (at least once: the retry sends them again); one publish tried.
    expect(sqs.commandCalls(SendMessageCommand)).toHaveLength(2);
    expect(sns.commandCalls(PublishCommand)).toHaveLength(1);
    expect(metrics).toMatchObject({ MonitorErrors: 1 });
  });

  it('sends the record to the queue before alerting on it, and retries it when the queue refuses it', async () => {
    const { sns, sqs, process, metrics } = setup();
    sqs.on(SendMessageCommand).rejects(new Error('AccessDenied'));
    const event = kinesisEvent([
      await dasRecord(keys, [grant()]),
      'not a DAS record',
      await dasRecord(keys, [grant()]),
    ]);
    await expect(process(event)).resolves.toEqual({
      batchItemFailures: [{ itemIdentifier: event.Records[1]!.kinesis.sequenceNumber }],
    });
    // Only the record before it was alerted on: the retry alerts on the rest once.
    expect(sns.commandCalls(PublishCommand)).toHaveLength(1);
    expect(metrics).toMatchObject({ ParseErrors: 1, MonitorErrors: 1 });
  });

  it('cuts a record too large for an SQS message and says so', async () => {
    const { sqs, process } = setup();
    const huge = 'x'.repeat(600 * 1024);
    const event = kinesisEvent([huge]);
    await expect(process(event)).resolves.toEqual({ batchItemFailures: [] });
    const body = JSON.parse(
      sqs.commandCalls(SendMessageCommand)[0]!.args[0].input.MessageBody!,
    ) as Record<string, unknown>;
    expect(body.truncated).toBe(true);
    expect(body.dataLength).toBe(event.Records[0]!.kinesis.data.length);
    expect(event.Records[0]!.kinesis.data.startsWith(body.data as string)).toBe(true);
    expect(
      Buffer.byteLength(sqs.commandCalls(SendMessageCommand)[0]!.args[0].input.MessageBody!),
    ).toBeLessThan(256 * 1024);
  });

  it.each(['ThrottlingException', 'KMSInternalException', 'TimeoutError'])(
    'retries a record KMS could not open now (%s): reported, not quarantined',
    async (name) => {
      const { sns, sqs, kms, process } = setup();
      const error = new Error('Rate exceeded');
      error.name = name;
      kms.on(DecryptCommand).rejects(error);
      const event = kinesisEvent([await dasRecord(keys, [grant()])]);
      await expect(process(event)).resolves.toEqual({
        batchItemFailures: [{ itemIdentifier: event.Records[0]!.kinesis.sequenceNumber }],
      });
      expect(sqs.commandCalls(SendMessageCommand)).toHaveLength(0);
      expect(sns.commandCalls(PublishCommand)).toHaveLength(0);
    },
  );

  it('is wired in the handler from DAS_FAILURE_QUEUE_URL, and refuses a value that is no URL', async () => {
    expect(() =>
      loadDasSettings({ ...DAS_HANDLER_ENV, DAS_FAILURE_QUEUE_URL: 'das-failures' }),
    ).toThrow(/DAS_FAILURE_QUEUE_URL/);
    const { sns, sqs } = topicAndQueue();
    const handler = testDasHandler(keys, { DAS_FAILURE_QUEUE_URL: FAILURE_QUEUE_URL });
    const event = kinesisEvent(['not a DAS record', await dasRecord(keys, [grant()])]);
    await expect(handler(event)).resolves.toEqual({ batchItemFailures: [] });
    expect(sqs.commandCalls(SendMessageCommand)[0]!.args[0].input.QueueUrl).toBe(FAILURE_QUEUE_URL);
    expect(sns.commandCalls(PublishCommand)).toHaveLength(2);
  });
});

import { AlgorithmSuiteIdentifier } from '@aws-crypto/client-node';
import { messageSuiteId, suiteName } from '../../src/access-audit/das/decrypt';
import { DecryptCommand, KMSClient } from '@aws-sdk/client-kms';
import { PublishCommand, SNSClient } from '@aws-sdk/client-sns';
import { Logger } from '@aws-lambda-powertools/logger';
import { Metrics } from '@aws-lambda-powertools/metrics';
import { mockClient } from 'aws-sdk-client-mock';
import type { BenchCase } from '.';
import { accessAuditSchema } from '../../src/config/access-audit';
import { createDasHandler } from '../../src/lambda/das-decrypt/handler';
import type { KinesisEvent } from '../../src/lambda/das-decrypt/processor';
import {
  activityEvent,
  CLUSTER_RESOURCE_ID,
  dasRecord,
  HEARTBEAT,
  mockKms,
  streamKeys,
} from '../../test/access-audit/support/das';
import { figure } from '../lib/figures';
import type { BenchContext } from '../lib/profile';
import { median, round, roundSpread, spread } from '../lib/stats';

/** Kinesis `data` bytes per invocation: the 1 MB batch. */
const BATCH_BYTES = 1_000_000;
/** Activity events RDS packs into one Kinesis record in this corpus. */
const EVENTS_PER_RECORD = 50;

/** A mix like a busy cluster's: application traffic (a service account), humans, a heartbeat. */
function corpusEvent(index: number): Record<string, unknown> {
  if (index % 97 === 0) return HEARTBEAT;
  const human = index % 10 === 0;
  const write = index % 3 === 0;
  return activityEvent({
    dbUserName: human ? ['alice', 'bob', 'carol'][index % 3] : 'app_svc',
    pid: 10_000 + (index % 40),
    statementId: index,
    class: write ? 'WRITE' : 'READ',
    command: write ? 'UPDATE' : 'SELECT',
    commandText: write
      ? `UPDATE public.orders SET status = 'shipped' WHERE id = ${index}`
      : `SELECT id, customer_id, total FROM public.orders WHERE id = ${index}`,
    objectName: 'public.orders',
    rowCount: 1,
    startTime: `2026-11-30 22:39:${String(index % 60).padStart(2, '0')}.${String(index % 1_000_000).padStart(6, '0')}+00`,
  });
}

/** Real DAS records (Encryption SDK, raw AES keyring BC/DataKey, gzip) until the batch holds 1 MB. */
async function buildBatch(suiteId?: AlgorithmSuiteIdentifier) {
  const keys = streamKeys();
  const records: string[] = [];
  let bytes = 0;
  let events = 0;
  while (bytes < BATCH_BYTES) {
    const list = Array.from({ length: EVENTS_PER_RECORD }, (_, i) => corpusEvent(events + i));
    events += list.length;
    const text = await dasRecord(keys, list, suiteId === undefined ? {} : { suiteId });
    records.push(text);
    bytes += text.length;
  }
  const event: KinesisEvent = {
    Records: records.map((text, index) => ({
      eventSourceARN: `arn:aws:kinesis:eu-west-1:123456789012:stream/aws-rds-das-${CLUSTER_RESOURCE_ID}`,
      kinesis: {
        data: Buffer.from(text).toString('base64'),
        sequenceNumber: String(49_590_000_000_000_000n + BigInt(index)),
        partitionKey: 'db-BENCH',
      },
    })),
  };
  // The suite the records were written with, read back from a message header like the
  // function does: the figure says which suite it measured.
  const written = messageSuiteId(
    (JSON.parse(records[0]!) as { databaseActivityEvents: string }).databaseActivityEvents,
  );
  const suite = written === undefined ? 'unknown' : suiteName(written);
  return { keys, event, records: records.length, events, bytes, suite };
}

/**
 * Case: the Database Activity Streams decrypt Lambda's handler on a 1 MB Kinesis batch
 * of real encrypted records, with real Powertools logging and metrics, and KMS and SNS
 * answered by aws-sdk-client-mock (no network: the figure is the handler's own cost:
 * data keys, Encryption SDK, gunzip, JSON, normalisation, rules, alert messages).
 */
export const dasCase: BenchCase = {
  title: 'DAS decrypt Lambda on a 1 MB Kinesis batch',
  figures: ['das_events_per_s'],
  async run(ctx) {
    // Which suite RDS writes with is not documented: the signed default (ECDSA P-384,
    // verified per message) is the figure, the unsigned suite is reported beside it.
    const signed = await measure(ctx, await buildBatch());
    const unsigned = await measure(
      ctx,
      await buildBatch(AlgorithmSuiteIdentifier.ALG_AES256_GCM_IV12_TAG16_HKDF_SHA256),
    );
    ctx.log(
      `  ${signed.records} records, ${signed.events} events: ${signed.rate.toFixed(0)} events/s signed (${signed.detail.suite}), ${unsigned.rate.toFixed(0)} unsigned (${unsigned.detail.suite})`,
    );
    const detail = { ...signed.detail, unsignedSuite: unsigned.detail };
    return {
      figures: [figure('das_events_per_s', round(signed.rate, 4), { detail })],
      detail,
    };
  },
};

type Batch = Awaited<ReturnType<typeof buildBatch>>;

/** Runs the handler on `batch`: a warm-up, then the profile's rounds. */
async function measure(ctx: BenchContext, batch: Batch) {
  const kms = mockKms(batch.keys);
  const sns = mockClient(SNSClient);
  sns.on(PublishCommand).resolves({ MessageId: 'bench' });
  const handler = createDasHandler({
    settings: {
      topicArn: 'arn:aws:sns:eu-west-1:123456789012:bench-alerts',
      fifo: false,
      clusterResourceId: CLUSTER_RESOURCE_ID,
      config: accessAuditSchema.parse({ serviceAccounts: ['app_svc'] }),
    },
    kms: new KMSClient({ region: 'eu-west-1' }),
    sns: new SNSClient({ region: 'eu-west-1' }),
    logger: new Logger({ serviceName: 'bench' }),
    metrics: new Metrics({ namespace: 'bench', serviceName: 'bench' }),
  });
  // Powertools writes logs and EMF metrics to stdout: keep them out of the table.
  const write = process.stdout.write.bind(process.stdout);
  const eventsPerS: number[] = [];
  const eventsPerCpuS: number[] = [];
  let kmsCalls = 0;
  process.stdout.write = (() => true) as typeof process.stdout.write;
  try {
    const warm = await handler(batch.event);
    if (warm.batchItemFailures.length > 0) throw new Error('the bench batch did not decode');
    for (let i = 0; i < ctx.profile.parserRounds; i++) {
      const callsBefore = kms.commandCalls(DecryptCommand).length;
      const started = process.hrtime.bigint();
      const cpu = process.cpuUsage();
      await handler(batch.event);
      const seconds = Number(process.hrtime.bigint() - started) / 1e9;
      const used = process.cpuUsage(cpu);
      kmsCalls = kms.commandCalls(DecryptCommand).length - callsBefore;
      eventsPerS.push(batch.events / seconds);
      eventsPerCpuS.push(batch.events / ((used.user + used.system) / 1e6));
    }
  } finally {
    process.stdout.write = write;
    kms.restore();
    sns.restore();
  }
  return {
    rate: median(eventsPerS),
    records: batch.records,
    events: batch.events,
    detail: {
      /** The Encryption SDK suite of every record of the batch. */
      suite: batch.suite,
      records: batch.records,
      events: batch.events,
      kinesisDataBytes: batch.bytes,
      eventsPerRecord: EVENTS_PER_RECORD,
      kmsDecryptCallsPerBatch: kmsCalls,
      perRound: roundSpread(spread(eventsPerS)),
      // Single-threaded: events per second of CPU this process got (one unshared core).
      eventsPerCpuSecond: roundSpread(spread(eventsPerCpuS)),
    },
  };
}

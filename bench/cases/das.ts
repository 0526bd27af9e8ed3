import { AlgorithmSuiteIdentifier } from '@aws-crypto/client-node';
import { messageSuiteId, suiteName } from '../../src/access-audit/das/decrypt';
import { FirehoseClient, PutRecordBatchCommand } from '@aws-sdk/client-firehose';
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
export const EVENTS_PER_RECORD = 50;

/** A mix like a busy cluster's: application traffic (a service account), humans, a heartbeat. */
export function corpusEvent(index: number): Record<string, unknown> {
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
 * of real encrypted records, with real Powertools logging and metrics, and KMS, SNS and
 * Firehose answered by aws-sdk-client-mock (no network: the figure is the handler's own
 * cost: data keys, Encryption SDK, gunzip, JSON, normalisation, rules, alert messages,
 * archive lines).
 */
export const dasCase: BenchCase = {
  title: 'DAS decrypt Lambda on a 1 MB Kinesis batch',
  figures: ['das_events_per_s', 'das_events_per_s_no_archive'],
  async run(ctx) {
    // RDS writes the signed, non-committing suite 0x0378 (ECDSA P-384, verified per
    // message): not documented by AWS, but the suite a real stream's messages carried
    // (README, "Throughput"). It is the figure; the unsigned suite is reported beside it.
    // The goal figure archives every event to Firehose, as the config deploys it;
    // the variant without the archive shows what the archive costs.
    // Interleaved round by round, so the archive's cost is not the load's drift.
    const [signed, noArchive] = await measure(ctx, await buildBatch(), [
      { archive: true },
      { archive: false },
    ]);
    const [unsigned] = await measure(
      ctx,
      await buildBatch(AlgorithmSuiteIdentifier.ALG_AES256_GCM_IV12_TAG16_HKDF_SHA256),
      [{ archive: true }],
    );
    ctx.log(
      `  ${signed.records} records, ${signed.events} events: ${signed.rate.toFixed(0)} events/s signed (${signed.detail.suite}) with the archive, ${noArchive.rate.toFixed(0)} without, ${unsigned.rate.toFixed(0)} unsigned (${unsigned.detail.suite}) with it`,
    );
    // CPU per batch with the archive over without, round by round.
    const archiveCost = signed.cpuSeconds.map((cpu, i) => cpu / noArchive.cpuSeconds[i]!);
    const detail = {
      ...signed.detail,
      archiveCpuRatio: roundSpread(spread(archiveCost)),
      unsignedSuite: unsigned.detail,
    };
    return {
      figures: [
        figure('das_events_per_s', round(signed.rate, 4), { detail }),
        figure('das_events_per_s_no_archive', round(noArchive.rate, 4), {
          detail: noArchive.detail,
        }),
      ],
      detail: { ...detail, noArchive: noArchive.detail },
    };
  },
};

type Batch = Awaited<ReturnType<typeof buildBatch>>;

/** What one variant measured: its median rate, CPU per round and the figure's detail. */
interface Measured {
  readonly rate: number;
  readonly records: number;
  readonly events: number;
  readonly cpuSeconds: readonly number[];
  readonly detail: Record<string, unknown> & { readonly suite: string };
}

/** One way of deploying the function the case measures. */
interface Variant {
  /** Whether every event is also archived to (a mocked) Firehose. */
  readonly archive: boolean;
}

/**
 * Runs a handler per variant on `batch`: a warm-up each, then the profile's rounds, the
 * variants interleaved in each round (their order alternating from round to round).
 */
async function measure<const V extends readonly Variant[]>(
  ctx: BenchContext,
  batch: Batch,
  variants: V,
): Promise<{ [K in keyof V]: Measured }> {
  const kms = mockKms(batch.keys);
  const sns = mockClient(SNSClient);
  sns.on(PublishCommand).resolves({ MessageId: 'bench' });
  const firehose = mockClient(FirehoseClient);
  // Firehose takes every line: one record id per record, in request order.
  firehose.on(PutRecordBatchCommand).callsFake((input: { Records?: unknown[] }) => ({
    FailedPutCount: 0,
    RequestResponses: (input.Records ?? []).map((_, index) => ({ RecordId: `bench-${index}` })),
  }));
  const runs = variants.map((variant) => ({
    variant,
    handler: dasHandler(variant),
    eventsPerS: [] as number[],
    eventsPerCpuS: [] as number[],
    cpuSeconds: [] as number[],
    kmsCalls: 0,
    archivedLines: 0,
  }));
  // Powertools writes logs and EMF metrics to stdout: keep them out of the table.
  const write = process.stdout.write.bind(process.stdout);
  process.stdout.write = (() => true) as typeof process.stdout.write;
  try {
    for (const run of runs) {
      const warm = await run.handler(batch.event);
      if (warm.batchItemFailures.length > 0) throw new Error('the bench batch did not decode');
    }
    for (let i = 0; i < ctx.profile.parserRounds; i++) {
      for (const run of i % 2 === 0 ? runs : [...runs].reverse()) {
        const callsBefore = kms.commandCalls(DecryptCommand).length;
        firehose.resetHistory();
        // The mocks record every call: SNS's would keep each round's alert messages
        // (about 10 MB a batch) alive, and the function's collections marking them.
        sns.resetHistory();
        const started = process.hrtime.bigint();
        const cpu = process.cpuUsage();
        await run.handler(batch.event);
        const seconds = Number(process.hrtime.bigint() - started) / 1e9;
        const used = process.cpuUsage(cpu);
        run.kmsCalls = kms.commandCalls(DecryptCommand).length - callsBefore;
        // Lines, not Firehose records: the function packs many lines into one record.
        run.archivedLines = firehose
          .commandCalls(PutRecordBatchCommand)
          .flatMap((call) => call.args[0].input.Records ?? [])
          .reduce((lines, record) => lines + newlines(record.Data!), 0);
        // A variant meant to archive that archived nothing would have measured less.
        if (run.variant.archive && run.archivedLines === 0)
          throw new Error('the bench batch archived nothing');
        const cpuSeconds = (used.user + used.system) / 1e6;
        run.eventsPerS.push(batch.events / seconds);
        run.eventsPerCpuS.push(batch.events / cpuSeconds);
        run.cpuSeconds.push(cpuSeconds);
      }
    }
  } finally {
    process.stdout.write = write;
    kms.restore();
    sns.restore();
    firehose.restore();
  }
  // One result per variant, in the variants' order.
  return runs.map((run): Measured => ({
    rate: median(run.eventsPerS),
    records: batch.records,
    events: batch.events,
    cpuSeconds: run.cpuSeconds,
    detail: {
      /** The Encryption SDK suite of every record of the batch. */
      suite: batch.suite,
      archive: run.variant.archive,
      records: batch.records,
      events: batch.events,
      kinesisDataBytes: batch.bytes,
      eventsPerRecord: EVENTS_PER_RECORD,
      kmsDecryptCallsPerBatch: run.kmsCalls,
      /** Lines sent to Firehose per batch (0 without the archive). */
      archivedLinesPerBatch: run.archivedLines,
      perRound: roundSpread(spread(run.eventsPerS)),
      // Single-threaded: events per second of CPU this process got (one unshared core).
      eventsPerCpuSecond: roundSpread(spread(run.eventsPerCpuS)),
    },
  })) as { [K in keyof V]: Measured };
}

/** The DAS decrypt handler as deployed with `variant`, its AWS clients mocked by the caller. */
function dasHandler(variant: Variant) {
  return createDasHandler({
    settings: {
      topicArn: 'arn:aws:sns:eu-west-1:123456789012:bench-alerts',
      fifo: false,
      clusterResourceId: CLUSTER_RESOURCE_ID,
      config: accessAuditSchema.parse({ serviceAccounts: ['app_svc'] }),
      ...(variant.archive && { archiveStream: 'audit-trail-das-archive' }),
    },
    kms: new KMSClient({ region: 'eu-west-1' }),
    sns: new SNSClient({ region: 'eu-west-1' }),
    firehose: new FirehoseClient({ region: 'eu-west-1' }),
    logger: new Logger({ serviceName: 'bench' }),
    metrics: new Metrics({ namespace: 'bench', serviceName: 'bench' }),
  });
}

/** Lines in a Firehose record's data (every archive line ends with a newline). */
function newlines(data: Uint8Array): number {
  let count = 0;
  for (const byte of data) if (byte === 0x0a) count++;
  return count;
}

/**
 * Instructions per DAS record of the activity-stream decrypt Lambda's handler, counted by
 * `valgrind --tool=cachegrind`: a figure the machine's load cannot move, for A/B tests of
 * `src/lambda/das-decrypt` and what it calls on a shared machine, where the wall-clock
 * `das_events_per_s` is noise (BENCHMARKS case 6).
 *
 * Usage: `npx tsx bench/tools/das-instructions.ts [--records N] [--rounds R] [--kit NAME=DIR]...`
 *
 * The records are real: N signed (ECDSA P-384, the suite RDS writes) Kinesis records of
 * case 6's corpus, 50 activity events each, built once with this checkout's test support.
 * Each variant's handler (this checkout's, and one per `--kit`: another checkout, e.g.
 * `git worktree add --detach DIR main` with node_modules linked) is bundled with esbuild
 * beside a small driver, archive on, KMS, SNS and Firehose answered by
 * aws-sdk-client-mock with their histories reset each batch, as case 6 runs it. The
 * bundle runs 2 warm-up batches, then 1, and again 2 + 9; per record = (count at 9 − count
 * at 1) / (8 × N), so start-up, module loading and the first compilations cancel out.
 * With `--rounds R` the pairs run R times, the variants interleaved; the figure is the
 * median with the range. About ±0.5 M per record between rounds is V8's optimising
 * compiler still at work in the measured batches.
 *
 * The variants, bundling, counting and printing: `kit-variants.ts`.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { corpusEvent, EVENTS_PER_RECORD } from '../cases/das';
import {
  bundleDriver,
  cachegrindTotal,
  interleaved,
  parseKitArguments,
  printMedians,
} from './kit-variants';
import { dasRecord, streamKeys } from '../../test/access-audit/support/das';

const USAGE =
  'usage: tsx bench/tools/das-instructions.ts [--records N] [--rounds R] [--kit NAME=DIR]...\n';

/** The driver each variant is bundled with; `KIT` is the checkout whose handler it runs. */
function driverSource(kit: string): string {
  const from = (module: string) => JSON.stringify(path.join(kit, module));
  return `
import { readFileSync } from 'node:fs';
import { FirehoseClient, PutRecordBatchCommand } from '@aws-sdk/client-firehose';
import { KMSClient } from '@aws-sdk/client-kms';
import { PublishCommand, SNSClient } from '@aws-sdk/client-sns';
import { Logger } from '@aws-lambda-powertools/logger';
import { Metrics } from '@aws-lambda-powertools/metrics';
import { mockClient } from 'aws-sdk-client-mock';
import { accessAuditSchema } from ${from('src/config/access-audit')};
import { createDasHandler } from ${from('src/lambda/das-decrypt/handler')};
import { mockKms, CLUSTER_RESOURCE_ID } from ${from('test/access-audit/support/das')};

const file = JSON.parse(readFileSync(process.argv[2], 'utf8'));
const batches = Number(process.argv[3]);
const event = {
  Records: file.records.map((text, index) => ({
    eventSourceARN: 'arn:aws:kinesis:eu-west-1:123456789012:stream/aws-rds-das-' + CLUSTER_RESOURCE_ID,
    kinesis: {
      data: Buffer.from(text).toString('base64'),
      sequenceNumber: String(49590000000000000n + BigInt(index)),
      partitionKey: 'db-BENCH',
    },
  })),
};
mockKms({ dataKey: Buffer.from(file.dataKey, 'base64'), encryptedKey: Buffer.from(file.encryptedKey, 'base64') });
const sns = mockClient(SNSClient);
sns.on(PublishCommand).resolves({ MessageId: 'bench' });
const firehose = mockClient(FirehoseClient);
firehose.on(PutRecordBatchCommand).callsFake((input) => ({
  FailedPutCount: 0,
  RequestResponses: (input.Records ?? []).map((_, index) => ({ RecordId: 'bench-' + index })),
}));
const handler = createDasHandler({
  settings: {
    topicArn: 'arn:aws:sns:eu-west-1:123456789012:bench-alerts',
    fifo: false,
    clusterResourceId: CLUSTER_RESOURCE_ID,
    config: accessAuditSchema.parse({ serviceAccounts: ['app_svc'] }),
    archiveStream: 'audit-trail-das-archive',
  },
  kms: new KMSClient({ region: 'eu-west-1' }),
  sns: new SNSClient({ region: 'eu-west-1' }),
  firehose: new FirehoseClient({ region: 'eu-west-1' }),
  logger: new Logger({ serviceName: 'bench' }),
  metrics: new Metrics({ namespace: 'bench', serviceName: 'bench' }),
});
process.stdout.write = () => true;
(async () => {
  for (let i = 0; i < 2 + batches; i++) {
    firehose.resetHistory();
    sns.resetHistory();
    const result = await handler(event);
    if (result.batchItemFailures.length > 0) throw new Error('records failed: ' + JSON.stringify(result));
  }
})().catch((error) => { console.error(error); process.exit(1); });
`;
}

/** Total instructions of `node bundle records batches` under cachegrind. */
async function instructions(bundled: string, records: string, batches: number): Promise<number> {
  return cachegrindTotal(`${bundled}.${batches}.cachegrind`, [bundled, records, String(batches)]);
}

async function writeRecords(file: string, count: number): Promise<void> {
  const keys = streamKeys();
  const records: string[] = [];
  for (let r = 0; r < count; r++) {
    const list = Array.from({ length: EVENTS_PER_RECORD }, (_, i) =>
      corpusEvent(r * EVENTS_PER_RECORD + i),
    );
    records.push(await dasRecord(keys, list));
  }
  await writeFile(
    file,
    JSON.stringify({
      dataKey: keys.dataKey.toString('base64'),
      encryptedKey: keys.encryptedKey.toString('base64'),
      records,
    }),
  );
}

async function main(): Promise<void> {
  const {
    count: records,
    rounds,
    kits,
  } = parseKitArguments(process.argv.slice(2), USAGE, {
    flag: '--records',
    least: 1,
    fallback: 40,
  });
  const dir = await mkdtemp(path.join(os.tmpdir(), 'audit-trail-das-instructions-'));
  try {
    const recordsFile = path.join(dir, 'records.json');
    await writeRecords(recordsFile, records);
    const bundles = await Promise.all(
      kits.map((kit) => bundleDriver(kit, dir, driverSource(kit.dir))),
    );
    const perRecord = await interleaved(kits, rounds, async (k) => {
      const one = await instructions(bundles[k]!, recordsFile, 1);
      const nine = await instructions(bundles[k]!, recordsFile, 9);
      return (nine - one) / (8 * records);
    });
    process.stdout.write(
      `instructions per signed ${EVENTS_PER_RECORD}-event record (${records} records, 9 − 1 batches, median of ${rounds} round(s))\n`,
    );
    printMedians(kits, perRecord, (value) => (value / 1e6).toFixed(2), ' M');
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

void main().catch((error: unknown) => {
  process.stderr.write(`${error instanceof Error ? error.stack : String(error)}\n`);
  process.exit(1);
});

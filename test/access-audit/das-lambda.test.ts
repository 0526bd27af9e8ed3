import { Logger } from '@aws-lambda-powertools/logger';
import { Metrics } from '@aws-lambda-powertools/metrics';
import { DecryptCommand, KMSClient } from '@aws-sdk/client-kms';
import { PublishCommand, SNSClient } from '@aws-sdk/client-sns';
import { mockClient } from 'aws-sdk-client-mock';
import { describe, expect, it, onTestFinished, vi } from 'vitest';
import { createDasHandler, loadDasSettings } from '../../src/lambda/das-decrypt/handler';
import { parseAccessAuditConfig } from '../../src/config/access-audit';
import type { KinesisEvent } from '../../src/lambda/das-decrypt/processor';
import {
  activityEvent,
  CLUSTER_RESOURCE_ID,
  dasRecord,
  grant,
  HEARTBEAT,
  kinesisEvent,
  mockKms,
  STREAM_ARN,
  streamKeys,
  TOPIC_ARN,
} from './support/das';
import { testDasProcessor } from './support/das-processor';

const keys = streamKeys();

function setup(config = parseAccessAuditConfig({ serviceAccounts: ['app_svc'] })) {
  const sns = mockClient(SNSClient);
  onTestFinished(() => sns.restore());
  return { sns, ...testDasProcessor(keys, { settings: { topicArn: TOPIC_ARN, config } }) };
}

describe('DAS decrypt Lambda (Kinesis event source)', () => {
  it('publishes a GRANT through the alert topic, with the alert message format', async () => {
    const { sns, process, metrics } = setup();
    sns.on(PublishCommand).resolves({ MessageId: 'm' });
    const response = await process(
      kinesisEvent([
        await dasRecord(keys, [HEARTBEAT, activityEvent({ dbUserName: 'app_svc' }), grant()]),
      ]),
    );
    expect(response).toEqual({ batchItemFailures: [] });
    const calls = sns.commandCalls(PublishCommand);
    expect(calls).toHaveLength(1);
    const input = calls[0]!.args[0].input;
    expect(input.TopicArn).toBe(TOPIC_ARN);
    expect(input.Subject).toContain('privilege-change');
    expect(input.Message).toContain(STREAM_ARN);
    expect(metrics).toMatchObject({ AuditEvents: 2, Alerts: 1, ParseErrors: 0, MonitorErrors: 0 });
  });

  it('stops at an undecryptable record and reports it, so later records are retried once, not lost or doubled', async () => {
    const { sns, process, metrics } = setup();
    sns.on(PublishCommand).resolves({ MessageId: 'm' });
    const foreign = await dasRecord(streamKeys(), [grant()]);
    const event = kinesisEvent([
      await dasRecord(keys, [grant()]),
      foreign,
      await dasRecord(keys, [grant()]),
    ]);
    const response = await process(event);
    expect(response).toEqual({
      batchItemFailures: [{ itemIdentifier: event.Records[1]!.kinesis.sequenceNumber }],
    });
    expect(sns.commandCalls(PublishCommand)).toHaveLength(1);
    expect(metrics).toMatchObject({ ParseErrors: 1 });
  });

  it('reports an unreadable record on every retry, never throws, and alerts on the records before it once', async () => {
    // Lambda's contract (partial batch response): it checkpoints before the reported
    // record and retries from it, up to MaximumRetryAttempts, then sends the range to the
    // failure queue and goes on. The function's part: the same answer on every attempt.
    const { sns, process, metrics } = setup();
    sns.on(PublishCommand).resolves({ MessageId: 'm' });
    const event = kinesisEvent([
      await dasRecord(keys, [grant()]),
      'not a DAS record',
      await dasRecord(keys, [grant()]),
    ]);
    const poison = event.Records[1]!.kinesis.sequenceNumber;
    expect(await process(event)).toEqual({ batchItemFailures: [{ itemIdentifier: poison }] });
    const retried = { Records: event.Records.slice(1) };
    for (let attempt = 1; attempt <= 3; attempt++)
      expect(await process(retried)).toEqual({ batchItemFailures: [{ itemIdentifier: poison }] });
    // The first record's alert went out once; nothing after the unreadable one was alerted
    // on: its range (with the records after it) is what the failure queue names.
    expect(sns.commandCalls(PublishCommand)).toHaveLength(1);
    expect(metrics).toMatchObject({ ParseErrors: 4, MonitorErrors: 0 });
  });

  it('reports a record whose alert could not be published instead of dropping it', async () => {
    const { sns, process, metrics } = setup();
    sns.on(PublishCommand).rejects(new Error('Throttling'));
    const event = kinesisEvent([await dasRecord(keys, [grant()])]);
    await expect(process(event)).resolves.toEqual({
      batchItemFailures: [{ itemIdentifier: event.Records[0]!.kinesis.sequenceNumber }],
    });
    expect(metrics).toMatchObject({ MonitorErrors: 1 });
  });

  it('asks KMS once per data key in a batch, not once per record, and again in the next batch', async () => {
    const { sns, kms, process } = setup();
    sns.on(PublishCommand).resolves({ MessageId: 'm' });
    const event = kinesisEvent(
      await Promise.all([1, 2, 3, 4].map(() => dasRecord(keys, [grant()]))),
    );
    await expect(process(event)).resolves.toEqual({ batchItemFailures: [] });
    expect(kms.commandCalls(DecryptCommand)).toHaveLength(1);
    expect(sns.commandCalls(PublishCommand)).toHaveLength(4);
    await process(event);
    expect(kms.commandCalls(DecryptCommand)).toHaveLength(2);
  });

  it('never answers a data key of another stream from the cache', async () => {
    const { sns, kms, process } = setup();
    sns.on(PublishCommand).resolves({ MessageId: 'm' });
    const other = streamKeys();
    const event = kinesisEvent([
      await dasRecord(keys, [grant()]),
      await dasRecord(other, [grant()]),
    ]);
    const response = await process(event);
    expect(response).toEqual({
      batchItemFailures: [{ itemIdentifier: event.Records[1]!.kinesis.sequenceNumber }],
    });
    expect(kms.commandCalls(DecryptCommand)).toHaveLength(2);
  });

  it('decodes a 1 MB batch end to end: every event counted once, one KMS call, nothing failed', async () => {
    const { sns, kms, process, metrics } = setup();
    sns.on(PublishCommand).resolves({ MessageId: 'm' });
    const texts: string[] = [];
    let bytes = 0;
    let humans = 0;
    while (bytes < 1_000_000) {
      const base = texts.length * 50;
      const events = Array.from({ length: 50 }, (_, i) =>
        activityEvent({
          statementId: base + i,
          dbUserName: i === 0 ? 'alice' : 'app_svc',
          commandText: `SELECT id, total FROM public.orders WHERE id = ${base + i}`,
        }),
      );
      humans++;
      const text = await dasRecord(keys, [HEARTBEAT, ...events]);
      texts.push(text);
      bytes += text.length;
    }
    const response = await process(kinesisEvent(texts));
    expect(response).toEqual({ batchItemFailures: [] });
    expect(kms.commandCalls(DecryptCommand)).toHaveLength(1);
    expect(metrics).toMatchObject({
      AuditEvents: texts.length * 50,
      Alerts: humans,
      ParseErrors: 0,
      MonitorErrors: 0,
    });
    expect(sns.commandCalls(PublishCommand)).toHaveLength(humans);
    // Building ~350 signed records dominates; on a loaded shared machine that is minutes.
  }, 240_000);

  it('treats a failed login as an event: the CONNECT with its exit code and error reaches the rules', async () => {
    const { sns, process } = setup(
      parseAccessAuditConfig({
        rules: [{ name: 'failed-login', severity: 'high', commands: ['CONNECT'] }],
      }),
    );
    sns.on(PublishCommand).resolves({ MessageId: 'm' });
    const alerts: string[] = [];
    const failedLogin = activityEvent({
      class: 'MISC',
      command: 'CONNECT',
      commandText: '',
      objectType: null,
      objectName: null,
      exitCode: 1,
      errorMessage: 'password authentication failed for user "mallory"',
      dbUserName: 'mallory',
      rowCount: null,
    });
    await process(kinesisEvent([await dasRecord(keys, [failedLogin])]));
    for (const call of sns.commandCalls(PublishCommand)) alerts.push(call.args[0].input.Subject!);
    expect(alerts).toEqual([expect.stringContaining('failed-login')]);
    const message = JSON.parse(sns.commandCalls(PublishCommand)[0]!.args[0].input.Message!) as {
      default: string;
    };
    expect(message.default).toContain(
      'Failed:     exit code 1: password authentication failed for user "mallory"',
    );
  });

  it('counts the authenticated records and heartbeats it read, per cluster, for the quiet-stream alarm', async () => {
    const { sns, process, metrics, streamMetrics } = setup();
    sns.on(PublishCommand).resolves({ MessageId: 'm' });
    // An idle cluster's records hold heartbeats only; a record under another data key is
    // not the cluster's stream speaking and proves nothing about it.
    const event = kinesisEvent([
      await dasRecord(keys, [HEARTBEAT]),
      await dasRecord(keys, [activityEvent(), HEARTBEAT]),
      await dasRecord(streamKeys(), [HEARTBEAT]),
    ]);
    await process(event);
    expect(streamMetrics).toEqual({ DasRecordsRead: 2, DasHeartbeats: 2 });
    // The monitor's own metrics keep their single `service` dimension.
    expect(metrics).not.toHaveProperty('DasRecordsRead');
    // A batch with nothing readable still says so: zero, not silence.
    const { process: again, streamMetrics: none } = setup();
    await again(kinesisEvent(['garbage']));
    expect(none).toEqual({ DasRecordsRead: 0, DasHeartbeats: 0 });
  });

  it('reports a record that is not DAS JSON without throwing', async () => {
    const { process } = setup();
    const event = kinesisEvent(['garbage']);
    await expect(process(event)).resolves.toEqual({
      batchItemFailures: [{ itemIdentifier: event.Records[0]!.kinesis.sequenceNumber }],
    });
  });
});

describe('DAS decrypt Lambda handler metrics', () => {
  it('publishes records read and heartbeats under the cluster resource id, apart from the monitor metrics', async () => {
    const kms = mockKms(keys);
    onTestFinished(() => kms.restore());
    const write = vi.spyOn(process.stdout, 'write').mockImplementation(() => true);
    onTestFinished(() => write.mockRestore());
    const handler = createDasHandler({
      settings: {
        ...loadDasSettings({
          ALERT_TOPIC_ARN: TOPIC_ARN,
          ACCESS_AUDIT_CONFIG: '{}',
          DAS_CLUSTER_RESOURCE_ID: CLUSTER_RESOURCE_ID,
        }),
      },
      kms: new KMSClient({ region: 'eu-west-1' }),
      sns: new SNSClient({ region: 'eu-west-1' }),
      logger: new Logger({ logLevel: 'SILENT' }),
      metrics: new Metrics({
        namespace: 'AuditTrail/AccessAudit',
        serviceName: 'access-audit-monitor',
      }),
    });
    await handler(kinesisEvent([await dasRecord(keys, [HEARTBEAT])]));
    const emf = write.mock.calls
      .map(([chunk]) => String(chunk))
      .filter((line) => line.includes('"_aws"'))
      .map((line) => JSON.parse(line) as Record<string, unknown>);
    const byDimensions = (dimensions: string[]) =>
      emf.filter(
        (document) =>
          JSON.stringify(
            (document._aws as { CloudWatchMetrics: { Dimensions: string[][] }[] })
              .CloudWatchMetrics[0]!.Dimensions,
          ) === JSON.stringify([dimensions]),
      );
    const stream = byDimensions(['service', 'ClusterResourceId']);
    expect(stream).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ ClusterResourceId: CLUSTER_RESOURCE_ID, DasRecordsRead: 1 }),
        expect.objectContaining({ ClusterResourceId: CLUSTER_RESOURCE_ID, DasHeartbeats: 1 }),
      ]),
    );
    // The monitor's alarms read AuditEvents etc. under `service` alone: those stay there.
    expect(byDimensions(['service'])).toEqual([
      expect.objectContaining({ service: 'access-audit-monitor', AuditEvents: 0 }),
    ]);
  });
});

describe('DAS decrypt Lambda settings', () => {
  const env = {
    ALERT_TOPIC_ARN: TOPIC_ARN,
    ACCESS_AUDIT_CONFIG: JSON.stringify({}),
  };

  it('reads the cluster resource id next to the alert settings', () => {
    expect(loadDasSettings({ ...env, DAS_CLUSTER_RESOURCE_ID: CLUSTER_RESOURCE_ID })).toMatchObject(
      {
        topicArn: TOPIC_ARN,
        clusterResourceId: CLUSTER_RESOURCE_ID,
      },
    );
  });

  it('names a missing or malformed cluster resource id', () => {
    expect(() => loadDasSettings(env)).toThrow(
      /DAS_CLUSTER_RESOURCE_ID: must be a DbClusterResourceId/,
    );
    expect(() => loadDasSettings({ ...env, DAS_CLUSTER_RESOURCE_ID: 'my-cluster' })).toThrow(
      /DAS_CLUSTER_RESOURCE_ID/,
    );
  });
});

describe('bundled DAS decrypt Lambda', () => {
  it('bundles the Encryption SDK with esbuild, validates its environment and answers a batch', async () => {
    const { build } = await import('esbuild');
    const { mkdtemp, rm } = await import('node:fs/promises');
    const os = await import('node:os');
    const path = await import('node:path');
    const dir = await mkdtemp(path.join(os.tmpdir(), 'das-decrypt-bundle-'));
    onTestFinished(() => rm(dir, { recursive: true, force: true }));
    const outfile = path.join(dir, 'index.js');
    await build({
      entryPoints: [path.join(__dirname, '../../src/lambda/das-decrypt/index.ts')],
      bundle: true,
      platform: 'node',
      format: 'cjs',
      target: 'node20',
      outfile,
      logLevel: 'silent',
    });
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const load = () => require(outfile) as { handler: (event: KinesisEvent) => Promise<unknown> };
    const saved = { ...process.env };
    try {
      process.env.ALERT_TOPIC_ARN = TOPIC_ARN;
      process.env.ACCESS_AUDIT_CONFIG = '{}';
      process.env.POWERTOOLS_LOG_LEVEL = 'SILENT';
      delete process.env.DAS_CLUSTER_RESOURCE_ID;
      expect(load).toThrow(/DAS_CLUSTER_RESOURCE_ID/);
      delete require.cache[outfile];
      process.env.DAS_CLUSTER_RESOURCE_ID = CLUSTER_RESOURCE_ID;
      const event = kinesisEvent(['not a DAS record']);
      await expect(load().handler(event)).resolves.toEqual({
        batchItemFailures: [{ itemIdentifier: event.Records[0]!.kinesis.sequenceNumber }],
      });
    } finally {
      process.env = saved;
    }
  });
});

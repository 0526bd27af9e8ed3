import { Logger } from '@aws-lambda-powertools/logger';
import { Metrics } from '@aws-lambda-powertools/metrics';
import { PublishCommand, SNSClient } from '@aws-sdk/client-sns';
import { mockClient } from 'aws-sdk-client-mock';
import { accessAuditSchema } from '../../src/config/access-audit';
import { createHandler } from '../../src/lambda/access-alert/handler';
import { encodePayload } from '../../src/lambda/access-alert/payload';
import { buildEventMessages } from '../lib/pgaudit-corpus';
import type { BenchContext } from '../lib/profile';
import { median, round, roundSpread, spread } from '../lib/stats';

const PAYLOAD_BYTES = 1_000_000;
const INVOCATIONS = 15;

/**
 * The alert Lambda's handler on a CloudWatch Logs subscription payload carrying 1 MB
 * of log messages (base64 gzip JSON, as CloudWatch sends it), with real Powertools
 * logging and metrics and SNS answered by aws-sdk-client-mock (no network, so the
 * figure is the handler's own cost: decode, parse, rules, message building).
 */
export async function measureLambda(ctx: BenchContext): Promise<Record<string, unknown>> {
  const messages = buildEventMessages(PAYLOAD_BYTES);
  const event = encodePayload({
    messageType: 'DATA_MESSAGE',
    logGroup: '/aws/rds/cluster/bench/postgresql',
    logStream: 'bench-instance-1.0',
    logEvents: messages.map((message, index) => ({
      id: String(index),
      timestamp: 1_795_000_000_000 + index,
      message,
    })),
  });
  const sns = mockClient(SNSClient);
  sns.on(PublishCommand).resolves({ MessageId: 'bench' });
  const handler = createHandler({
    settings: {
      topicArn: 'arn:aws:sns:eu-west-1:123456789012:bench-alerts',
      fifo: false,
      config: accessAuditSchema.parse({
        auditedRoles: ['alice', 'bob', 'carol', 'dave'],
        serviceAccounts: ['app_svc'],
      }),
    },
    sns: new SNSClient({ region: 'eu-west-1' }),
    logger: new Logger({ serviceName: 'bench' }),
    metrics: new Metrics({ namespace: 'bench', serviceName: 'bench' }),
  });
  // Powertools writes logs and EMF metrics to stdout: keep them out of the table.
  const write = process.stdout.write.bind(process.stdout);
  const times: number[] = [];
  let stats: unknown;
  process.stdout.write = (() => true) as typeof process.stdout.write;
  try {
    stats = await handler(event); // warm-up
    for (let i = 0; i < INVOCATIONS; i++) {
      const started = process.hrtime.bigint();
      await handler(event);
      times.push(Number(process.hrtime.bigint() - started) / 1e6);
    }
  } finally {
    process.stdout.write = write;
    sns.restore();
  }
  const ms = median(times);
  ctx.log(`  Lambda: ${messages.length} log events (1 MB) in ${ms.toFixed(0)} ms`);
  return {
    messageBytes: PAYLOAD_BYTES,
    gzipBase64Bytes: event.awslogs.data.length,
    logEvents: messages.length,
    invocationMs: roundSpread(spread(times)),
    logEventsPerS: round(messages.length / (ms / 1000), 4),
    mbPerS: round(PAYLOAD_BYTES / 1e6 / (ms / 1000), 3),
    lastInvocation: stats,
  };
}

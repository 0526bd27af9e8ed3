import { gzipSync } from 'node:zlib';
import { PublishCommand, SNSClient } from '@aws-sdk/client-sns';
import { SendMessageBatchCommand, SQSClient } from '@aws-sdk/client-sqs';
import { mockClient } from 'aws-sdk-client-mock';
import fc from 'fast-check';
import { parseAccessAuditConfig } from '../../src/config/access-audit';
import { DeliveryError } from '../../src/lambda/access-alert/processor';
import { encodePayload } from '../../src/lambda/access-alert/payload';
import { LambdaSettingsError, loadSettings } from '../../src/lambda/access-alert/settings';
import { LOG_GROUP, LOG_STREAM, subscriptionEvent, testHandler } from './support/lambda';

const TOPIC_ARN = 'arn:aws:sns:eu-west-1:123456789012:alerts';
const CONFIG = parseAccessAuditConfig({ auditedRoles: ['alice'], serviceAccounts: ['app_svc'] });
const SETTINGS = { topicArn: TOPIC_ARN, fifo: false, config: CONFIG };

/** Records in the exact shape pgAudit 1.7 wrote them on the live server. */
const PREFIX = '2026-11-22 23:16:16 UTC:10.1.2.3(42618):alice@appdb:[10157]:';
const UPDATE = `${PREFIX}LOG:  AUDIT: SESSION,3,1,WRITE,UPDATE,TABLE,public.items,"UPDATE items SET name = $1, note = $2 WHERE id = $3",",,1",1`;
const MULTI_LINE = `${PREFIX}LOG:  AUDIT: SESSION,1,1,WRITE,INSERT,TABLE,public.items,"INSERT INTO items (id, name, note) VALUES ($1, $2, $3)","1,""x,y"",""say """"hi""""\n\tthere""",1`;
const GRANT = `${PREFIX}LOG:  AUDIT: SESSION,4,1,ROLE,GRANT,TABLE,,GRANT SELECT ON items TO app_svc,<none>,0`;
const SERVICE =
  '2026-11-22 23:16:17 UTC:10.1.2.4(42644):app_svc@appdb:[10160]:LOG:  AUDIT: SESSION,1,1,WRITE,DELETE,TABLE,public.items,DELETE FROM items,<none>';

const sns = mockClient(SNSClient);
const sqs = mockClient(SQSClient);
beforeEach(() => {
  sns.reset();
  sqs.reset();
  sns.on(PublishCommand).resolves({ MessageId: 'id' });
  sqs.on(SendMessageBatchCommand).resolves({ Successful: [], Failed: [] });
});

describe('alert Lambda settings', () => {
  const env = {
    ALERT_TOPIC_ARN: TOPIC_ARN,
    ACCESS_AUDIT_CONFIG: JSON.stringify({ serviceAccounts: ['app_svc'] }),
  };

  it('reads the environment and detects a FIFO queue', () => {
    const settings = loadSettings({
      ...env,
      FORWARD_QUEUE_URL: 'https://sqs.eu-west-1.amazonaws.com/123456789012/q.fifo',
    });
    expect(settings.fifo).toBe(true);
    expect(settings.config.serviceAccounts).toEqual(['app_svc']);
    expect(loadSettings(env).queueUrl).toBeUndefined();
  });

  it('names the bad variable and config field', () => {
    expect(() => loadSettings({ ...env, ALERT_TOPIC_ARN: undefined })).toThrow(
      /ALERT_TOPIC_ARN: is required/,
    );
    expect(() => loadSettings({ ...env, ALERT_TOPIC_ARN: 'topic' })).toThrow(
      /ALERT_TOPIC_ARN: must be an SNS topic ARN/,
    );
    expect(() => loadSettings({ ...env, FORWARD_QUEUE_URL: 'queue' })).toThrow(/FORWARD_QUEUE_URL/);
    expect(() => loadSettings({ ...env, ACCESS_AUDIT_CONFIG: '{' })).toThrow(
      /ACCESS_AUDIT_CONFIG: not valid JSON/,
    );
    expect(() => loadSettings({ ...env, ACCESS_AUDIT_CONFIG: '{"rules":[{"name":""}]}' })).toThrow(
      /ACCESS_AUDIT_CONFIG\.rules\[0\]\.name/,
    );
    expect(() => loadSettings({})).toThrow(LambdaSettingsError);
  });
});

describe('alert Lambda', () => {
  it('ignores control messages', async () => {
    const { handler } = testHandler(SETTINGS, { sns: new SNSClient({}) });
    const stats = await handler(
      encodePayload({
        messageType: 'CONTROL_MESSAGE',
        logGroup: '',
        logStream: '',
        logEvents: [
          {
            id: '',
            timestamp: 0,
            message: 'CWL CONTROL MESSAGE: Checking health of destination Lambda.',
          },
        ],
      }),
    );
    expect(stats).toMatchObject({ control: true, auditEvents: 0, parseErrors: 0 });
    expect(sns.commandCalls(PublishCommand)).toHaveLength(0);
  });

  it('joins a multi-line record, excludes service accounts, alerts on the rest', async () => {
    const { handler, metrics } = testHandler(SETTINGS, { sns: new SNSClient({}) });
    const stats = await handler(subscriptionEvent([MULTI_LINE, UPDATE, GRANT, SERVICE]));
    expect(stats).toMatchObject({
      auditEvents: 4,
      alerts: 3,
      excluded: 1,
      parseErrors: 0,
      snsMessages: 3,
    });
    const texts = sns
      .commandCalls(PublishCommand)
      .map((call) => (JSON.parse(call.args[0].input.Message!) as { default: string }).default);
    expect(texts[0]).toBe(
      [
        'Access audit alert: human-dml (severity high)',
        '',
        'Who:        alice',
        'From:       10.1.2.3 port 42618',
        'Database:   appdb',
        'When:       2026-11-22T23:16:16Z',
        'Command:    INSERT (class WRITE, SESSION)',
        'Object:     TABLE public.items',
        'Rows:       1',
        `Parameters: '1', 'x,y', 'say "hi"\nthere'`,
        'Statement:',
        '  INSERT INTO items (id, name, note) VALUES ($1, $2, $3)',
        '',
        'Session:    pid 10157, statement 1.1',
        `Log:        ${LOG_GROUP} / ${LOG_STREAM} (event 37000000000000000000000000000000000000000000000000000001)`,
        'Runbook: README "When an alert fires".',
      ].join('\n'),
    );
    expect(metrics.totals()).toMatchObject({
      Alerts: 3,
      HumanDml: 2,
      PrivilegeChanges: 1,
      Excluded: 1,
    });
  });

  it("counts parallel workers' records folded into their leader (ParallelWorkerRecords)", async () => {
    const { handler, metrics } = testHandler(SETTINGS, { sns: new SNSClient({}) });
    const read = 'READ,SELECT,TABLE,public.salaries,SELECT count(*) FROM public.salaries,<none>';
    const stats = await handler(
      subscriptionEvent([
        `${PREFIX}LOG:  AUDIT: SESSION,6,1,${read}`,
        `2026-11-22 23:16:16 UTC::@:[10158]:LOG:  AUDIT: SESSION,1,1,${read}`,
        `2026-11-22 23:16:16 UTC::@:[10159]:LOG:  AUDIT: SESSION,1,1,${read}`,
      ]),
    );
    expect(stats).toMatchObject({
      auditEvents: 3,
      alerts: 1,
      excluded: 2,
      parallelWorkerRecords: 2,
    });
    expect(metrics.totals()).toMatchObject({ Alerts: 1, Excluded: 2, ParallelWorkerRecords: 2 });
    expect(sns.commandCalls(PublishCommand)).toHaveLength(1);
  });

  it('counts and skips malformed payloads, log events and records without failing the batch', async () => {
    const { handler, metrics } = testHandler(SETTINGS, { sns: new SNSClient({}) });
    expect((await handler({})).parseErrors).toBe(1);
    expect((await handler({ awslogs: { data: 'not base64 gzip' } })).parseErrors).toBe(1);
    expect(
      (await handler({ awslogs: { data: gzipSync('{"no":"shape"}').toString('base64') } }))
        .parseErrors,
    ).toBe(1);
    const mixed = encodePayload({
      messageType: 'DATA_MESSAGE',
      logGroup: LOG_GROUP,
      logStream: LOG_STREAM,
      logEvents: [
        { id: '1', message: 42 },
        { id: '2', timestamp: 1, message: GRANT.slice(0, 120) },
        { id: '3', timestamp: 2, message: GRANT },
      ],
    });
    const stats = await handler(mixed);
    // The cut GRANT still names its writer: it alerts as unreadable-audit-record (and is counted).
    expect(stats).toMatchObject({ logEvents: 3, parseErrors: 2, alerts: 2, snsMessages: 2 });
    expect(metrics.totals().ParseErrors).toBe(5);
  });

  it('counts SNS failures as monitor errors and fails the invocation so Lambda retries', async () => {
    sns.on(PublishCommand).rejects(new Error('throttled'));
    const { handler, metrics } = testHandler(SETTINGS, { sns: new SNSClient({}) });
    await expect(handler(subscriptionEvent([GRANT]))).rejects.toBeInstanceOf(DeliveryError);
    expect(metrics.totals()).toMatchObject({ MonitorErrors: 1, Alerts: 1 });
  });

  it('sends alerts to a standard queue without FIFO fields', async () => {
    const queueUrl = 'https://sqs.eu-west-1.amazonaws.com/123456789012/alerts';
    const config = parseAccessAuditConfig({ ...CONFIG, sqs: { enabled: true } });
    const { handler } = testHandler(
      { ...SETTINGS, config, queueUrl },
      { sns: new SNSClient({}), sqs: new SQSClient({}) },
    );
    await handler(subscriptionEvent([GRANT, SERVICE]));
    const calls = sqs.commandCalls(SendMessageBatchCommand);
    expect(calls).toHaveLength(1);
    const entries = calls[0]!.args[0].input.Entries!;
    expect(entries).toHaveLength(1);
    expect(entries[0]).toEqual({ Id: 'm0', MessageBody: expect.any(String) });
    expect(JSON.parse(entries[0]!.MessageBody!)).toMatchObject({
      version: 1,
      kind: 'alert',
      rule: 'privilege-change',
      severity: 'critical',
    });
  });
});

describe('alert message size', () => {
  const huge = (n: number) =>
    `${PREFIX}LOG:  AUDIT: SESSION,${n},1,WRITE,UPDATE,TABLE,public.items,"UPDATE items SET note = $1 WHERE id = ${n} ${'-- padding '.repeat(10_000)}","${Array.from({ length: 50 }, () => 'v'.repeat(2_000)).join(',')}",1`;

  it('keeps every SNS message and SQS batch under 256 KB, cutting statements and parameters', async () => {
    const queueUrl = 'https://sqs.eu-west-1.amazonaws.com/123456789012/events';
    const config = parseAccessAuditConfig({
      ...CONFIG,
      alerts: { maxStatementLength: 20_000 },
      sqs: { enabled: true, forward: 'events' },
    });
    const { handler } = testHandler(
      { ...SETTINGS, config, queueUrl },
      { sns: new SNSClient({}), sqs: new SQSClient({}) },
    );
    await handler(subscriptionEvent([huge(1)]));
    const single = sns.commandCalls(PublishCommand)[0]!.args[0].input;
    expect(Buffer.byteLength(single.Message!)).toBeLessThan(256 * 1024);
    const document = JSON.parse((JSON.parse(single.Message!) as { https: string }).https) as {
      truncated: boolean;
    };
    expect(document.truncated).toBe(true);
    sns.resetHistory();
    const stats = await handler(
      subscriptionEvent(Array.from({ length: 40 }, (_, n) => huge(n + 1))),
    );
    expect(stats).toMatchObject({ alerts: 40, snsMessages: 1, sqsMessages: 40, monitorErrors: 0 });
    const digest = sns.commandCalls(PublishCommand)[0]!.args[0].input;
    expect(Buffer.byteLength(digest.Message!)).toBeLessThan(256 * 1024);
    expect(digest.Subject).toBe('[audit-trail] HIGH 40 access alerts: alice');
    for (const call of sqs.commandCalls(SendMessageBatchCommand)) {
      const bytes = (call.args[0].input.Entries ?? []).reduce(
        (sum, entry) => sum + Buffer.byteLength(entry.MessageBody!),
        0,
      );
      expect(bytes).toBeLessThan(256 * 1024);
    }
  });
});

describe('alert Lambda properties', () => {
  const { handler } = testHandler(SETTINGS, { sns: new SNSClient({}) });
  const realLines = [MULTI_LINE, UPDATE, GRANT, SERVICE];
  /** Real records, cut anywhere, or garbage, or real records with characters replaced. */
  const message = fc.oneof(
    fc.string(),
    fc.constantFrom(...realLines),
    fc
      .tuple(fc.constantFrom(...realLines), fc.nat())
      .map(([line, cut]) => line.slice(0, cut % (line.length + 1))),
    fc
      .tuple(fc.constantFrom(...realLines), fc.nat(), fc.string({ minLength: 1, maxLength: 3 }))
      .map(
        ([line, at, text]) =>
          line.slice(0, at % line.length) + text + line.slice((at % line.length) + 1),
      ),
    fc
      .constantFrom(...realLines)
      .map((line) => `${PREFIX}LOG:  AUDIT: ${line.split('AUDIT: ')[1]!.replace(/,/g, '",')}`),
  );

  it('never throws on arbitrary and truncated log messages, and counts every record it reads or skips', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(message, { maxLength: 8 }), async (messages) => {
        const stats = await handler(subscriptionEvent(messages));
        const lines = messages.join('\n').split('\n').length;
        expect(stats.auditEvents).toBeLessThanOrEqual(lines);
        expect(stats.parseErrors).toBeLessThanOrEqual(lines);
        expect(stats.auditEvents).toBe(stats.alerts + stats.noise + stats.excluded + stats.passed);
        expect(stats.monitorErrors).toBe(0);
      }),
      { numRuns: 300 },
    );
  });

  it('never throws on arbitrary or truncated payloads and counts them as parse errors', async () => {
    const valid = subscriptionEvent(realLines).awslogs.data;
    const payload = fc.oneof(
      fc.anything(),
      fc.record({ awslogs: fc.record({ data: fc.string() }) }),
      fc.nat().map((cut) => ({ awslogs: { data: valid.slice(0, cut % valid.length) } })),
      fc
        .uint8Array({ maxLength: 200 })
        .map((bytes) => ({ awslogs: { data: gzipSync(bytes).toString('base64') } })),
    );
    await fc.assert(
      fc.asyncProperty(payload, async (event) => {
        const stats = await handler(event);
        // Either the payload decoded (its log events were counted) or it was counted as one parse error.
        expect(stats.control || stats.logEvents > 0 || stats.parseErrors === 1).toBe(true);
        expect(stats.monitorErrors).toBe(0);
      }),
      { numRuns: 300 },
    );
  });
});

describe('bundled alert Lambda', () => {
  it('bundles with esbuild, validates its environment at cold start and handles a payload', async () => {
    const { build } = await import('esbuild');
    const { mkdtemp } = await import('node:fs/promises');
    const os = await import('node:os');
    const path = await import('node:path');
    const dir = await mkdtemp(path.join(os.tmpdir(), 'access-alert-bundle-'));
    const outfile = path.join(dir, 'index.js');
    await build({
      entryPoints: [path.join(__dirname, '../../src/lambda/access-alert/index.ts')],
      bundle: true,
      platform: 'node',
      format: 'cjs',
      target: 'node20',
      outfile,
      logLevel: 'silent',
    });
    const load = () => {
      // eslint-disable-next-line @typescript-eslint/no-require-imports
      return require(outfile) as {
        handler: (event: unknown) => Promise<{ control: boolean; noise: number }>;
      };
    };
    const saved = { ...process.env };
    try {
      delete process.env.ALERT_TOPIC_ARN;
      process.env.ACCESS_AUDIT_CONFIG = '{}';
      expect(load).toThrow(/ALERT_TOPIC_ARN: is required/);
      delete require.cache[outfile];
      process.env.ALERT_TOPIC_ARN = TOPIC_ARN;
      process.env.ACCESS_AUDIT_CONFIG = JSON.stringify({ serviceAccounts: ['app_svc'] });
      process.env.POWERTOOLS_LOG_LEVEL = 'SILENT';
      const write = vi.spyOn(process.stdout, 'write').mockImplementation(() => true);
      try {
        const { handler } = load();
        const control = await handler(
          encodePayload({
            messageType: 'CONTROL_MESSAGE',
            logGroup: '',
            logStream: '',
            logEvents: [],
          }),
        );
        expect(control.control).toBe(true);
        const noise = await handler(
          subscriptionEvent([
            `${PREFIX}LOG:  AUDIT: SESSION,1,1,MISC,SET,,,SET extra_float_digits = 3,<none>`,
          ]),
        );
        expect(noise.noise).toBe(1);
        // Powertools printed the embedded-metric-format document with the alarm's namespace and dimension.
        const emf = write.mock.calls
          .map(([chunk]) => String(chunk))
          .filter((line) => line.includes('"_aws"'))
          .map((line) => JSON.parse(line) as Record<string, unknown>);
        expect(emf.length).toBeGreaterThanOrEqual(2);
        expect(emf[1]).toMatchObject({
          _aws: {
            CloudWatchMetrics: [{ Namespace: 'AuditTrail/AccessAudit', Dimensions: [['service']] }],
          },
          service: 'access-audit-monitor',
          NoiseDropped: 1,
        });
      } finally {
        write.mockRestore();
      }
    } finally {
      process.env = saved;
    }
  });
});

describe('alert dedupKey', () => {
  it('is stable for one rule, user, database and statement shape, and differs otherwise', async () => {
    const { handler } = testHandler(SETTINGS, { sns: new SNSClient({}) });
    const sns = mockClient(SNSClient);
    onTestFinished(() => sns.restore());
    sns.on(PublishCommand).resolves({ MessageId: 'm' });
    const update = (user: string, id: number, note: string) =>
      `2026-11-22 22:39:36 UTC:10.0.0.5(36646):${user}@appdb:[4273]:LOG:  AUDIT: SESSION,${id},1,WRITE,UPDATE,TABLE,public.items,"UPDATE items SET note = '${note}' WHERE id = ${id}",<none>`;
    await handler(
      subscriptionEvent([update('alice', 1, 'a'), update('alice', 2, 'b'), update('bob', 3, 'a')]),
    );
    const calls = sns.commandCalls(PublishCommand).map((call) => call.args[0].input);
    const keys = calls.map((input) => {
      const document = JSON.parse((JSON.parse(input.Message!) as { https: string }).https) as {
        dedupKey: string;
      };
      expect(input.MessageAttributes?.dedupKey?.StringValue).toBe(document.dedupKey);
      return document.dedupKey;
    });
    expect(keys).toHaveLength(3);
    expect(keys[0]).toMatch(/^[0-9a-f]{32}$/);
    expect(keys[1]).toBe(keys[0]);
    expect(keys[2]).not.toBe(keys[0]);
  });
});

describe('OBJECT/SESSION twins of one statement', () => {
  const twin = (type: 'OBJECT' | 'SESSION') =>
    `2026-11-22 22:39:36 UTC:10.0.0.5(36646):alice@appdb:[4273]:LOG:  AUDIT: ${type},7,1,WRITE,UPDATE,TABLE,public.items,"UPDATE items SET note = 'x' WHERE id = 1",<none>`;

  async function alertsFor(deliveries: string[][]): Promise<string[]> {
    const { handler } = testHandler(SETTINGS, { sns: new SNSClient({}) });
    const sns = mockClient(SNSClient);
    onTestFinished(() => sns.restore());
    sns.on(PublishCommand).resolves({ MessageId: 'm' });
    let id = 1;
    for (const messages of deliveries) {
      await handler(subscriptionEvent(messages, id));
      id += messages.length;
    }
    return sns.commandCalls(PublishCommand).map(
      (call) =>
        (
          JSON.parse((JSON.parse(call.args[0].input.Message!) as { https: string }).https) as {
            dedupKey: string;
          }
        ).dedupKey,
    );
  }

  it('alert once when they arrive in one delivery', async () => {
    expect(await alertsFor([[twin('OBJECT'), twin('SESSION')]])).toHaveLength(1);
  });

  it('split across two deliveries alert twice with the same dedupKey (README "Duplicates across deliveries")', async () => {
    const keys = await alertsFor([[twin('OBJECT')], [twin('SESSION')]]);
    expect(keys).toHaveLength(2);
    expect(keys[1]).toBe(keys[0]);
  });
});

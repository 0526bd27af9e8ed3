import { PublishCommand, SNSClient } from '@aws-sdk/client-sns';
import { SendMessageBatchCommand, SQSClient } from '@aws-sdk/client-sqs';
import { mockClient } from 'aws-sdk-client-mock';
import { App, Stack } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import * as logs from 'aws-cdk-lib/aws-logs';
import { AccessAuditMonitor } from '../../infra/access-audit/access-audit-monitor';
import { parseAccessAuditConfig, parseConfig } from '../../src/config';
import { loadSettings } from '../../src/lambda/access-alert/settings';
import { LOG_GROUP, LOG_STREAM, subscriptionEvent, testHandler } from './support/lambda';

const TOPIC_ARN = 'arn:aws:sns:eu-west-1:123456789012:alerts';
const QUEUE_URL = 'https://sqs.eu-west-1.amazonaws.com/123456789012/events';

/** Lines PostgreSQL 15 + pgAudit 1.7 wrote on the live server (RDS prefix). */
const ALICE = '2026-12-02 05:58:10 UTC:127.0.0.1(43930):alice@appdb:[11776]:';
const CREATE = `${ALICE}LOG:  AUDIT: SESSION,1,1,DDL,CREATE TABLE,TABLE,public.cards,CREATE TABLE cards (n text),<none>,0`;
const MISSING_ERROR = `${ALICE}ERROR:  relation "billing_cards_missing" does not exist at character 15`;
const MISSING_STATEMENT = `${ALICE}STATEMENT:  SELECT * FROM billing_cards_missing`;
const ERIN = '2026-12-02 05:58:10 UTC:127.0.0.1(43962):erin@appdb:[11778]:';
const DENIED_ERROR = `${ERIN}ERROR:  permission denied for table items`;
const DENIED_STATEMENT = `${ERIN}STATEMENT:  UPDATE items SET note = $1 WHERE id = 7`;
const SERVICE = '2026-12-02 05:58:10 UTC:127.0.0.1(43974):app_svc@appdb:[11779]:';
const SERVICE_ERROR = `${SERVICE}ERROR:  syntax error at or near "SELEC" at character 1`;
const SERVICE_STATEMENT = `${SERVICE}STATEMENT:  SELEC 2`;
const ALICE_NOISE = `${ALICE}LOG:  AUDIT: SESSION,2,1,MISC,SET,,,SET extra_float_digits = 3,<none>`;
/** A failed statement whose text is an audit record: forwarded raw as what it is, never as a record. */
const FORGED_STATEMENT = `${ALICE}STATEMENT:  AUDIT: SESSION,9,1,ROLE,GRANT,TABLE,,GRANT rds_superuser TO alice,<none>`;

const LINES = [
  CREATE,
  MISSING_ERROR,
  MISSING_STATEMENT,
  ALICE_NOISE,
  SERVICE_ERROR,
  SERVICE_STATEMENT,
  DENIED_ERROR,
  DENIED_STATEMENT,
  `${ALICE}ERROR:  syntax error at or near "AUDIT" at character 1`,
  FORGED_STATEMENT,
];

const sns = mockClient(SNSClient);
const sqs = mockClient(SQSClient);
beforeEach(() => {
  sns.reset();
  sqs.reset();
  sns.on(PublishCommand).resolves({ MessageId: 'id' });
  sqs
    .on(SendMessageBatchCommand)
    .callsFake((input: { Entries: unknown[] }) => ({ Successful: input.Entries, Failed: [] }));
});

function handlerFor(format: 'raw' | 'kit' | 'both', fifo = false) {
  const config = parseAccessAuditConfig({
    auditedRoles: ['alice', 'erin'],
    serviceAccounts: ['app_svc'],
    sqs: { enabled: true, forward: 'events', format, fifo },
  });
  return testHandler(
    { topicArn: TOPIC_ARN, queueUrl: fifo ? `${QUEUE_URL}.fifo` : QUEUE_URL, fifo, config },
    { sns: new SNSClient({}), sqs: new SQSClient({}) },
  ).handler;
}

function sentEntries() {
  return sqs.commandCalls(SendMessageBatchCommand).flatMap((call) => {
    expect(call.args[0].input.QueueUrl).toMatch(/^https:\/\/sqs\./);
    return call.args[0].input.Entries ?? [];
  });
}

describe('sqs.format: forwarding the raw CloudWatch log event', () => {
  it('raw: forwards the log events of forwarded records and the ERROR/STATEMENT lines of failed statements, as delivered', async () => {
    const payload = subscriptionEvent(LINES);
    const stats = await handlerFor('raw')(payload);
    const entries = sentEntries();
    const bodies = entries.map(
      (entry) => JSON.parse(entry.MessageBody!) as Record<string, unknown>,
    );
    // The CloudWatch log event itself: id, timestamp, message, log group and stream.
    expect(bodies[0]).toEqual({
      id: '37000000000000000000000000000000000000000000000000000001',
      timestamp: 1795387176000,
      message: CREATE,
      logGroup: LOG_GROUP,
      logStream: LOG_STREAM,
    });
    // In log order; the service account's failure and the driver noise stay out.
    expect(bodies.map((body) => body.message)).toEqual([
      CREATE,
      MISSING_ERROR,
      MISSING_STATEMENT,
      DENIED_ERROR,
      DENIED_STATEMENT,
      `${ALICE}ERROR:  syntax error at or near "AUDIT" at character 1`,
      FORGED_STATEMENT,
    ]);
    for (const entry of entries)
      expect(entry.MessageAttributes).toEqual({
        format: { DataType: 'String', StringValue: 'raw' },
      });
    expect(stats.sqsMessages).toBe(7);
    // The STATEMENT line quoting an audit record was not read as a GRANT.
    expect(stats).toMatchObject({ auditEvents: 2, alerts: 1, noise: 1, monitorErrors: 0 });
  });

  it('both: the kit JSON of each record and the raw events, told apart by the format attribute', async () => {
    await handlerFor('both')(subscriptionEvent(LINES));
    const entries = sentEntries();
    const kit = entries.filter((entry) => entry.MessageAttributes?.format?.StringValue === 'kit');
    const raw = entries.filter((entry) => entry.MessageAttributes?.format?.StringValue === 'raw');
    expect(kit).toHaveLength(1);
    expect(JSON.parse(kit[0]!.MessageBody!)).toMatchObject({
      version: 1,
      kind: 'event',
      rule: 'ddl',
      event: { user: 'alice', command: 'CREATE TABLE' },
    });
    expect(raw).toHaveLength(7);
    expect(new Set(entries.map((entry) => entry.Id)).size).toBe(8);
  });

  it('kit (the default) forwards only the kit JSON, as before', async () => {
    await handlerFor('kit')(subscriptionEvent(LINES));
    const entries = sentEntries();
    expect(entries).toHaveLength(1);
    expect(entries[0]!.MessageAttributes).toBeUndefined();
  });

  it('FIFO: raw and kit messages of one log event get distinct deduplication ids', async () => {
    await handlerFor('both', true)(subscriptionEvent([CREATE]));
    const entries = sentEntries();
    expect(entries.map((entry) => entry.MessageDeduplicationId)).toEqual([
      '37000000000000000000000000000000000000000000000000000001',
      'raw-37000000000000000000000000000000000000000000000000000001',
    ]);
    expect(entries.every((entry) => entry.MessageGroupId === LOG_STREAM)).toBe(true);
  });

  it('reads the failed statement of a csvlog or jsonlog source from its ERROR record', async () => {
    const csvDenied =
      '2026-12-02 05:58:10.400 UTC,"erin","appdb",11778,"127.0.0.1:43962",6b0fb372.2e02,1,"UPDATE",2026-12-02 05:58:10 UTC,4/4,0,ERROR,42501,"permission denied for table items",,,,,,"UPDATE items SET note = $1 WHERE id = 7",,,"","client backend",,0';
    const csvService =
      '2026-12-02 05:58:10.450 UTC,"app_svc","appdb",11779,"127.0.0.1:43974",6b0fb372.2e03,1,"idle",2026-12-02 05:58:10 UTC,4/6,0,ERROR,42601,"syntax error at or near ""SELEC""",,,,,,"SELEC 2",1,,"","client backend",,0';
    const jsonDenied =
      '{"timestamp":"2026-12-02 05:58:10.400 UTC","user":"erin","dbname":"appdb","pid":11778,"remote_host":"127.0.0.1","remote_port":43962,"session_id":"6b0fb372.2e02","line_num":1,"ps":"UPDATE","session_start":"2026-12-02 05:58:10 UTC","vxid":"4/4","txid":0,"error_severity":"ERROR","state_code":"42501","message":"permission denied for table items","statement":"UPDATE items SET note = $1 WHERE id = 7","backend_type":"client backend","query_id":0}';
    for (const [logFormat, lines, expected] of [
      ['csvlog', [csvDenied, csvService], [csvDenied]],
      ['jsonlog', [jsonDenied], [jsonDenied]],
    ] as const) {
      sqs.resetHistory();
      const config = parseAccessAuditConfig({
        serviceAccounts: ['app_svc'],
        logFormat,
        sqs: { enabled: true, forward: 'events', format: 'raw' },
      });
      const { handler } = testHandler(
        { topicArn: TOPIC_ARN, queueUrl: QUEUE_URL, fifo: false, config },
        { sns: new SNSClient({}), sqs: new SQSClient({}) },
      );
      await handler(subscriptionEvent(lines));
      expect(sentEntries().map((entry) => JSON.parse(entry.MessageBody!).message)).toEqual(
        expected,
      );
    }
  });

  it('is refused without forward "events", naming the field, and reaches the Lambda', () => {
    expect(() => parseConfig({ accessAudit: { sqs: { enabled: true, format: 'raw' } } })).toThrow(
      /accessAudit\.sqs\.format: .*forward "events"/,
    );
    const config = parseAccessAuditConfig({
      sqs: { enabled: true, forward: 'events', format: 'both' },
    });
    const settings = loadSettings({
      ALERT_TOPIC_ARN: TOPIC_ARN,
      ACCESS_AUDIT_CONFIG: configEnv(synthMonitor(config).template),
    });
    expect(settings.config.sqs.format).toBe('both');
  });

  it('subscribes to ERROR and STATEMENT lines too, and outputs the queue URL and ARN', () => {
    const raw = synthMonitor(
      parseAccessAuditConfig({ sqs: { enabled: true, forward: 'events', format: 'raw' } }),
    ).template;
    raw.hasResourceProperties('AWS::Logs::SubscriptionFilter', {
      FilterPattern: '?"AUDIT" ?"CONTEXT" ?"ERROR" ?"STATEMENT" ?"FATAL"',
    });
    const outputs = JSON.stringify(raw.findOutputs('*'));
    expect(outputs).toMatch(/ForwardQueueUrl/);
    expect(outputs).toMatch(/ForwardQueueArn/);
    const kit = synthMonitor(
      parseAccessAuditConfig({ sqs: { enabled: true, forward: 'events' } }),
    ).template;
    kit.hasResourceProperties('AWS::Logs::SubscriptionFilter', {
      FilterPattern: '?"AUDIT" ?"CONTEXT" ?"ERROR" ?"STATEMENT" ?"FATAL"',
    });
    // Without audit-tampering (and raw forwarding) no rule reads a failed statement's lines.
    const quiet = synthMonitor(
      parseAccessAuditConfig({ defaultRules: { auditTampering: false } }),
    ).template;
    quiet.hasResourceProperties('AWS::Logs::SubscriptionFilter', {
      FilterPattern: '?"AUDIT" ?"CONTEXT"',
    });
  });
});

function synthMonitor(config: ReturnType<typeof parseAccessAuditConfig>) {
  const app = new App({ context: { 'aws:cdk:bundling-stacks': [] } });
  const stack = new Stack(app, 'Monitor');
  const monitor = new AccessAuditMonitor(stack, 'AccessAudit', {
    logGroup: logs.LogGroup.fromLogGroupName(stack, 'Log', LOG_GROUP),
    config,
  });
  return { function: monitor.function, template: Template.fromStack(stack) };
}

function configEnv(template: Template): string {
  const functions = Object.values(template.findResources('AWS::Lambda::Function')) as {
    Properties: { Environment?: { Variables?: Record<string, unknown> } };
  }[];
  const value = functions
    .map((fn) => fn.Properties.Environment?.Variables?.ACCESS_AUDIT_CONFIG)
    .find((candidate) => typeof candidate === 'string');
  return value as string;
}

import { mkdtemp, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { PublishCommand, SNSClient } from '@aws-sdk/client-sns';
import { SendMessageBatchCommand, SQSClient } from '@aws-sdk/client-sqs';
import { mockClient } from 'aws-sdk-client-mock';
import {
  AccessRuleEngine,
  createAuditParser,
  splitLogRecords,
  type AuditEvent,
} from '../../src/access-audit';
import { parseAccessAuditConfig } from '../../src/config/access-audit';
import { connectionArgs, writeConfig } from '../support/cli';
import { runCli } from './support/cli';
import {
  LOG_GROUP,
  LOG_STREAM,
  subscriptionEvent,
  testHandler,
  toCloudWatchMessages,
} from './support/lambda';
import { scanLog } from './support/live-audit-log';
import { describeWithPgaudit } from './support/live-suite';
import type { PgauditServer } from './support/pgaudit-server';
import { APP_DATABASE, LIVE_CONFIG, prepareSource, runWorkload } from './support/workload';

const TOPIC_ARN = 'arn:aws:sns:eu-west-1:123456789012:access-audit-alerts';

function auditEvents(log: string): AuditEvent[] {
  const parse = createAuditParser();
  return splitLogRecords(log).flatMap((record) => parse(record) ?? []);
}

describeWithPgaudit('access audit on a live PostgreSQL with pgaudit', (start) => {
  let server: PgauditServer;
  let log: string;
  let events: AuditEvent[];
  let dir: string;
  let configFile: string;

  beforeAll(async () => {
    server = await start();
    await prepareSource(server);
    await runWorkload(server);
    log = await server.readLog();
    events = auditEvents(log);
    dir = await mkdtemp(path.join(os.tmpdir(), 'access-audit-'));
    configFile = await writeConfig({
      tables: [{ table: 'items' }],
      accessAudit: {
        auditedRoles: ['alice', 'dana'],
        serviceAccounts: ['app_svc', 'health_svc'],
        logRows: true,
        defaultRules: { humanReads: false },
      },
    });
  });

  afterAll(async () => {
    await server?.stop();
  });

  describe('parser', () => {
    it('reads a multi-line SELECT with quotes and commas exactly', () => {
      const select = events.find((event) => event.user === 'alice' && event.statementId === 1);
      expect(select).toEqual({
        timestamp: expect.stringMatching(/^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC$/),
        time: expect.stringMatching(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/),
        remoteHost: '127.0.0.1',
        remotePort: expect.any(Number),
        user: 'alice',
        database: APP_DATABASE,
        pid: expect.any(Number),
        severity: 'LOG',
        auditType: 'SESSION',
        statementId: 1,
        substatementId: 1,
        auditClass: 'READ',
        command: 'SELECT',
        objectType: 'TABLE',
        objectName: 'public.items',
        statement:
          "SELECT id,\n       name, 'a,b' AS \"x\"\"y\"\n  FROM items\n WHERE note = 'it''s';",
        parameterStatus: 'none',
        parameters: [],
        rows: 0,
      });
    });

    it('decodes extended-protocol parameters, NULLs and embedded newlines', () => {
      const alice = events.filter((event) => event.user === 'alice');
      expect(alice[1]).toMatchObject({
        auditClass: 'WRITE',
        command: 'INSERT',
        objectName: 'public.items',
        statement: 'INSERT INTO items (id, name, note) VALUES ($1, $2, $3)',
        parameterStatus: 'logged',
        parameters: ['1', 'x,y', 'say "hi"\nthere'],
        rows: 1,
      });
      // pgAudit writes NULL and the empty string alike; object auditing logs the UPDATE twice.
      expect(alice[2]).toMatchObject({
        auditType: 'OBJECT',
        command: 'UPDATE',
        parameters: ['', '', '1'],
        rows: 1,
      });
      expect(alice[3]).toMatchObject({
        auditType: 'SESSION',
        command: 'UPDATE',
        parameters: ['', '', '1'],
        rows: 1,
      });
    });

    it('reads GRANT/REVOKE, a redacted password, a DO block with its sub-statement, COPY and DDL', () => {
      const alice = events.filter((event) => event.user === 'alice');
      const summary = alice.map((event) => [
        event.auditType,
        event.statementId,
        event.substatementId,
        event.auditClass,
        event.command,
        event.objectType,
        event.objectName,
      ]);
      expect(summary).toEqual([
        ['SESSION', 1, 1, 'READ', 'SELECT', 'TABLE', 'public.items'],
        ['SESSION', 2, 1, 'WRITE', 'INSERT', 'TABLE', 'public.items'],
        ['OBJECT', 3, 1, 'WRITE', 'UPDATE', 'TABLE', 'public.items'],
        ['SESSION', 3, 1, 'WRITE', 'UPDATE', 'TABLE', 'public.items'],
        ['SESSION', 4, 1, 'ROLE', 'GRANT', 'TABLE', ''],
        ['SESSION', 5, 1, 'ROLE', 'REVOKE', 'TABLE', ''],
        ['SESSION', 6, 1, 'ROLE', 'CREATE ROLE', '', ''],
        ['SESSION', 7, 1, 'FUNCTION', 'DO', '', ''],
        ['OBJECT', 7, 2, 'WRITE', 'UPDATE', 'TABLE', 'public.items'],
        ['SESSION', 7, 2, 'WRITE', 'UPDATE', 'TABLE', 'public.items'],
        ['SESSION', 8, 1, 'READ', 'COPY', '', ''],
        ['SESSION', 9, 1, 'DDL', 'CREATE TABLE', 'TABLE', 'public.scratch'],
        ['SESSION', 10, 1, 'READ', 'SELECT', 'TABLE', 'public.items'],
        ['SESSION', 10, 1, 'READ', 'SELECT', 'TABLE', 'pg_catalog.pg_class'],
        ['SESSION', 11, 1, 'WRITE', 'DELETE', 'TABLE', 'public.items'],
      ]);
      expect(alice.find((event) => event.command === 'CREATE ROLE')?.statement).toBe(
        'CREATE ROLE bob PASSWORD <REDACTED>',
      );
      expect(log).not.toContain('hunter2');
    });

    it('reads records without ROWS and with parameters not logged', () => {
      const health = events.filter((event) => event.user === 'health_svc');
      expect(health).toHaveLength(1);
      expect(health[0]).toMatchObject({
        statement: 'SELECT 1',
        parameterStatus: 'not-logged',
        parameters: [],
      });
      expect(health[0]?.rows).toBeUndefined();
    });

    it('passes over every non-audit line of the server log', () => {
      const auditLines = log.split('\n').filter((line) => line.includes(':  AUDIT: ')).length;
      expect(events).toHaveLength(auditLines);
      expect(log).toContain('WARNING:  no privileges');
    });
  });

  describe('rules', () => {
    it('alerts once on human DML, privilege changes and DDL, and on nothing else', () => {
      const alerts = scanLog(LIVE_CONFIG, log).flatMap(({ event, verdict }) => {
        return verdict.kind === 'alert'
          ? [
              [
                verdict.alert.rule,
                verdict.alert.severity,
                event.user,
                event.command,
                event.objectName,
              ],
            ]
          : [];
      });
      expect(alerts).toEqual([
        ['human-dml', 'high', 'alice', 'INSERT', 'public.items'],
        ['human-dml', 'high', 'alice', 'UPDATE', 'public.items'],
        ['privilege-change', 'critical', 'alice', 'GRANT', ''],
        ['privilege-change', 'critical', 'alice', 'REVOKE', ''],
        ['privilege-change', 'critical', 'alice', 'CREATE ROLE', ''],
        ['human-dml', 'high', 'alice', 'UPDATE', 'public.items'],
        ['ddl', 'medium', 'alice', 'CREATE TABLE', 'public.scratch'],
        ['human-dml', 'high', 'alice', 'DELETE', 'public.items'],
      ]);
    });

    it('by default also alerts (low) on human reads of application tables, never on catalog browsing', async () => {
      const defaults = parseAccessAuditConfig({
        auditedRoles: ['alice', 'dana'],
        serviceAccounts: ['app_svc', 'health_svc'],
      });
      expect(defaults.defaultRules.humanReads).toBe(true);
      const reads = scanLog(defaults, log).flatMap(({ event, verdict }) =>
        verdict.kind === 'alert' && verdict.alert.rule === 'human-read'
          ? [[verdict.alert.severity, event.user, event.command, event.objectName]]
          : [],
      );
      expect(reads).toEqual([
        ['low', 'alice', 'SELECT', 'public.items'],
        ['low', 'alice', 'COPY', ''], // pgAudit names no relation for COPY … TO STDOUT
        ['low', 'alice', 'SELECT', 'public.items'],
        ['low', 'dana', 'SELECT', 'public.items'],
      ]);
      const { handler, metrics } = testHandler(
        { topicArn: TOPIC_ARN, fifo: false, config: defaults },
        { sns: new SNSClient({}) },
      );
      await handler(subscriptionEvent(toCloudWatchMessages(log)));
      expect(metrics.totals().HumanReads).toBe(4);
    });

    it('excludes the service account even when object auditing logs its UPDATE', () => {
      const engine = new AccessRuleEngine(LIVE_CONFIG);
      const service = events.filter((event) => event.user === 'app_svc');
      expect(service.map((event) => [event.auditType, event.command, event.statement])).toEqual([
        ['OBJECT', 'UPDATE', "UPDATE items SET name = 'by app, again' WHERE id = 2"],
      ]);
      expect(engine.evaluate(service[0]!)).toEqual({ kind: 'excluded', reason: 'service-account' });
    });

    it('drops GUI and driver noise by parsed fields but keeps the real table in a catalog join', () => {
      const engine = new AccessRuleEngine(LIVE_CONFIG);
      const verdicts = events.map(
        (event) => [event.user, event.command, event.objectName, engine.evaluate(event)] as const,
      );
      const noise = verdicts.filter(([, , , verdict]) => verdict.kind === 'noise');
      expect(
        noise.map(([user, command, object, verdict]) => [
          user,
          command,
          object,
          verdict.kind === 'noise' && verdict.reason,
        ]),
      ).toEqual([
        ['alice', 'SELECT', 'pg_catalog.pg_class', 'catalog-read'],
        ['dana', 'SET', '', 'session-command'],
        ['dana', 'SET', '', 'session-command'],
        ['dana', 'SHOW', '', 'session-command'],
        ['dana', 'SELECT', 'pg_catalog.pg_class', 'catalog-read'],
        ['dana', 'SELECT', 'pg_catalog.pg_namespace', 'catalog-read'],
        ['dana', 'SELECT', 'information_schema.tables', 'catalog-read'],
        ['dana', '???', 'information_schema.tables', 'catalog-read'],
        ['dana', 'SELECT', 'pg_catalog.pg_namespace', 'catalog-read'],
        ['dana', 'SELECT', 'pg_catalog.pg_class', 'catalog-read'],
        ['dana', 'SELECT', 'pg_catalog.pg_type', 'catalog-read'],
        ['dana', 'SELECT', 'pg_catalog.pg_namespace', 'catalog-read'],
        ['dana', 'SELECT', '', 'health-check'],
        ['health_svc', 'SELECT', '', 'health-check'],
      ]);
      // The same statement's record for public.items is not noise.
      const join = verdicts.find(
        ([user, , object, verdict]) =>
          user === 'alice' && object === 'public.items' && verdict.kind === 'pass',
      );
      expect(join).toBeDefined();
    });

    it('applies custom rules, ignore rules and excluded schemas from config', () => {
      const config = parseAccessAuditConfig({
        ...LIVE_CONFIG,
        ignoreSchemas: ['scratchpad'],
        defaultRules: { humanDml: false, privilegeChanges: true, ddl: false, humanReads: false },
        rules: [
          {
            name: 'no-role-creation-by-alice',
            action: 'ignore',
            users: ['alice'],
            commands: ['create role'],
          },
          {
            name: 'items-reads',
            severity: 'low',
            classes: ['READ'],
            objects: ['public.it*'],
            users: ['d?na'],
          },
        ],
      });
      const engine = new AccessRuleEngine(config);
      const alerts = events.flatMap((event) => {
        const verdict = engine.evaluate(event);
        return verdict.kind === 'alert' ? [[verdict.alert.rule, event.user, event.command]] : [];
      });
      expect(alerts).toEqual([
        ['privilege-change', 'alice', 'GRANT'],
        ['privilege-change', 'alice', 'REVOKE'],
        ['items-reads', 'dana', 'SELECT'],
      ]);
    });
  });

  describe('CLI', () => {
    it('pgaudit parse prints one NDJSON event per record, from a file or stdin', async () => {
      const file = path.join(dir, 'postgresql.log');
      await writeFile(file, log);
      const fromFile = await runCli(['pgaudit', 'parse', file]);
      expect(fromFile.error).toBeUndefined();
      const lines = fromFile.stdout
        .trim()
        .split('\n')
        .map((line) => JSON.parse(line) as AuditEvent);
      expect(lines).toEqual(events);
      const fromStdin = await runCli(['pgaudit', 'parse'], log);
      expect(fromStdin.stdout).toBe(fromFile.stdout);
    });

    it('pgaudit scan prints the alerts the Lambda would send', async () => {
      const file = path.join(dir, 'scan.log');
      await writeFile(file, log);
      const run = await runCli(['pgaudit', 'scan', '--config', configFile, file]);
      expect(run.error).toBeUndefined();
      const alerts = run.stdout
        .trim()
        .split('\n')
        .map((line) => JSON.parse(line) as { rule: string; summary: string });
      expect(alerts.map((alert) => alert.rule)).toEqual([
        'human-dml',
        'human-dml',
        'privilege-change',
        'privilege-change',
        'privilege-change',
        'human-dml',
        'ddl',
        'human-dml',
      ]);
      expect(alerts[0]?.summary).toBe(
        `alice@${APP_DATABASE} from 127.0.0.1: INSERT TABLE public.items (WRITE)`,
      );
    });
  });

  describe('alert Lambda on real subscription payloads', () => {
    const sns = mockClient(SNSClient);
    const sqs = mockClient(SQSClient);
    beforeEach(() => {
      sns.reset();
      sqs.reset();
      sns.on(PublishCommand).resolves({ MessageId: 'm-1' });
      sqs
        .on(SendMessageBatchCommand)
        .callsFake((input: { Entries: unknown[] }) => ({ Successful: input.Entries, Failed: [] }));
    });

    it('publishes one SNS message per alert with attributes, and metrics', async () => {
      const { handler, metrics } = testHandler(
        { topicArn: TOPIC_ARN, fifo: false, config: LIVE_CONFIG },
        { sns: new SNSClient({}) },
      );
      const stats = await handler(subscriptionEvent(toCloudWatchMessages(log)));
      expect(stats).toMatchObject({
        auditEvents: events.length,
        alerts: 8,
        parseErrors: 0,
        monitorErrors: 0,
        snsMessages: 8,
      });
      const calls = sns.commandCalls(PublishCommand);
      expect(calls).toHaveLength(8);
      const first = calls[0]!.args[0].input;
      expect(first).toMatchObject({
        TopicArn: TOPIC_ARN,
        MessageStructure: 'json',
        Subject: `[audit-trail] HIGH human-dml: alice@${APP_DATABASE} from 127.0.0.1: INSERT TABLE public.items (WRITE)`,
        MessageAttributes: {
          kind: { DataType: 'String', StringValue: 'alert' },
          severity: { DataType: 'String', StringValue: 'high' },
          rule: { DataType: 'String', StringValue: 'human-dml' },
          user: { DataType: 'String', StringValue: 'alice' },
          database: { DataType: 'String', StringValue: APP_DATABASE },
          auditClass: { DataType: 'String', StringValue: 'WRITE' },
          command: { DataType: 'String', StringValue: 'INSERT' },
        },
      });
      const body = JSON.parse(first.Message!) as Record<string, string>;
      expect(body.email).toContain("Parameters: '1', 'x,y', 'say \"hi\"\nthere'");
      expect(body.email).toContain('Who:        alice');
      const document = JSON.parse(body.https!) as {
        event: AuditEvent;
        source: Record<string, string>;
      };
      expect(document.event.parameters).toEqual(['1', 'x,y', 'say "hi"\nthere']);
      expect(document.source).toMatchObject({ logGroup: LOG_GROUP, logStream: LOG_STREAM });
      expect(calls.map((call) => call.args[0].input.MessageAttributes?.rule?.StringValue)).toEqual([
        'human-dml',
        'human-dml',
        'privilege-change',
        'privilege-change',
        'privilege-change',
        'human-dml',
        'ddl',
        'human-dml',
      ]);
      expect(metrics.totals()).toMatchObject({
        AuditEvents: events.length,
        Alerts: 8,
        HumanDml: 4,
        PrivilegeChanges: 3,
        DdlChanges: 1,
        ParseErrors: 0,
        MonitorErrors: 0,
      });
    });

    it('sends nothing for noise and service accounts', async () => {
      const quiet = toCloudWatchMessages(log).filter(
        (message) => /:(dana|health_svc|app_svc)@/.test(message) || !message.includes('AUDIT'),
      );
      const { handler } = testHandler(
        { topicArn: TOPIC_ARN, fifo: false, config: LIVE_CONFIG },
        { sns: new SNSClient({}) },
      );
      const stats = await handler(subscriptionEvent(quiet));
      expect(stats.alerts).toBe(0);
      expect(stats.noise).toBeGreaterThan(10);
      expect(sns.commandCalls(PublishCommand)).toHaveLength(0);
    });

    it('sends one digest when more alerts than the threshold arrive together', async () => {
      const config = parseAccessAuditConfig({ ...LIVE_CONFIG, alerts: { digestThreshold: 3 } });
      const { handler } = testHandler(
        { topicArn: TOPIC_ARN, fifo: false, config },
        { sns: new SNSClient({}) },
      );
      await handler(subscriptionEvent(toCloudWatchMessages(log)));
      const calls = sns.commandCalls(PublishCommand);
      expect(calls).toHaveLength(1);
      const input = calls[0]!.args[0].input;
      expect(input.Subject).toBe('[audit-trail] CRITICAL 8 access alerts: alice');
      expect(input.MessageAttributes).toEqual({
        kind: { DataType: 'String', StringValue: 'digest' },
        severity: { DataType: 'String', StringValue: 'critical' },
        rule: { DataType: 'String.Array', StringValue: '["human-dml","privilege-change","ddl"]' },
        user: { DataType: 'String.Array', StringValue: '["alice"]' },
        alertCount: { DataType: 'Number', StringValue: '8' },
      });
    });

    it('forwards alerts to a FIFO queue deduplicated by log event id, honouring ignore lists', async () => {
      const config = parseAccessAuditConfig({
        ...LIVE_CONFIG,
        sqs: { enabled: true, fifo: true, forward: 'events', ignoreUsers: ['dana'] },
      });
      const queueUrl = 'https://sqs.eu-west-1.amazonaws.com/123456789012/access-audit.fifo';
      const { handler } = testHandler(
        { topicArn: TOPIC_ARN, queueUrl, fifo: true, config },
        { sns: new SNSClient({}), sqs: new SQSClient({}) },
      );
      const messages = toCloudWatchMessages(log);
      const payload = subscriptionEvent(messages);
      const stats = await handler(payload);
      const entries = sqs.commandCalls(SendMessageBatchCommand).flatMap((call) => {
        expect(call.args[0].input.QueueUrl).toBe(queueUrl);
        return call.args[0].input.Entries ?? [];
      });
      // alice's 12 non-noise records; dana is ignored, noise and service accounts never go.
      expect(entries).toHaveLength(12);
      expect(stats.sqsMessages).toBe(12);
      const bodies = entries.map(
        (entry) =>
          JSON.parse(entry.MessageBody!) as { event: AuditEvent; source: { logEventId: string } },
      );
      expect(new Set(bodies.map((body) => body.event.user))).toEqual(new Set(['alice']));
      for (const [index, entry] of entries.entries()) {
        expect(entry.MessageGroupId).toBe(LOG_STREAM);
        expect(entry.MessageDeduplicationId).toBe(bodies[index]!.source.logEventId);
      }
      expect(new Set(entries.map((entry) => entry.MessageDeduplicationId)).size).toBe(12);
    });
  });

  describe('pgaudit setup and check', () => {
    it('check reports each item and fails on a service account whose auditing drifted', async () => {
      const run = await runCli([
        'pgaudit',
        'check',
        ...connectionArgs({ configFile, sourceUrl: server.adminUrl(APP_DATABASE) }),
      ]);
      expect(run.stdout.split('\n').filter(Boolean)).toEqual([
        'OK    shared_preload_libraries: pgaudit is preloaded',
        `OK    extension: pgaudit 1.7 created in ${APP_DATABASE}`,
        'OK    pgaudit.role: rds_pgaudit',
        'OK    role rds_pgaudit: exists',
        'OK    log_line_prefix: %t:%r:%u@%d:[%p]:',
        'OK    record level: records at LOG (pgaudit.log_client off, pgaudit.log_level log)',
        // The server's language (C or English here): labels the parser reads.
        expect.stringMatching(/^OK {4}lc_messages: "(C|POSIX|en)?[^"]*"$/),
        'OK    log_min_messages: warning',
        'OK    log_min_error_statement: error',
        'OK    role alice: pgaudit.log=all, pgaudit.log_parameter=on, pgaudit.log_relation=on, pgaudit.log_rows=on',
        'OK    role dana: pgaudit.log=all, pgaudit.log_parameter=on, pgaudit.log_relation=on, pgaudit.log_rows=on',
        'OK    role app_svc: pgaudit.log=ddl,role',
        'FAIL  role health_svc: expected pgaudit.log=ddl,role, found pgaudit.log=read → run audit-trail pgaudit setup',
        'OK    canary role audit_trail_canary: pgaudit.log=read, statement_timeout=5s',
      ]);
      expect(run.error?.message).toBe('1 of 14 pgAudit checks failed');
    });

    it('setup repairs it and check passes', async () => {
      const setup = await runCli([
        'pgaudit',
        'setup',
        ...connectionArgs({ configFile, sourceUrl: server.adminUrl(APP_DATABASE) }),
      ]);
      expect(setup.error).toBeUndefined();
      expect(setup.stdout).toContain(
        'done  role health_svc: pgaudit.log=ddl,role (service account)',
      );
      const check = await runCli([
        'pgaudit',
        'check',
        ...connectionArgs({ configFile, sourceUrl: server.adminUrl(APP_DATABASE) }),
      ]);
      expect(check.error).toBeUndefined();
      expect(check.stdout).not.toContain('FAIL');
    });

    it('catches the silent failure: a database without CREATE EXTENSION pgaudit', async () => {
      const run = await runCli([
        'pgaudit',
        'check',
        ...connectionArgs({ configFile, sourceUrl: server.adminUrl('postgres') }),
      ]);
      expect(run.stdout).toContain(
        'FAIL  extension: CREATE EXTENSION pgaudit was not run in this database: pgAudit logs nothing → run audit-trail pgaudit setup',
      );
      expect(run.error?.message).toMatch(/1 of 14 pgAudit checks failed/);
    });

    it('refuses a server without pgaudit preloaded and names the remedy', async () => {
      const plain = await start({ preload: false });
      const url = plain.adminUrl();
      onTestFinished(() => plain.stop());
      const check = await runCli([
        'pgaudit',
        'check',
        ...connectionArgs({ configFile, sourceUrl: url }),
      ]);
      expect(check.stdout).toMatch(
        /^FAIL {2}shared_preload_libraries: pgaudit is not preloaded → add pgaudit to shared_preload_libraries in the DB cluster parameter group .* reboot/m,
      );
      const setup = await runCli([
        'pgaudit',
        'setup',
        ...connectionArgs({ configFile, sourceUrl: url }),
      ]);
      expect(setup.error?.message).toMatch(/pgaudit is not preloaded: .*parameter group.*reboot/);
    });
  });
});

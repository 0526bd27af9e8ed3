import { mkdtemp, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { PublishCommand, SNSClient } from '@aws-sdk/client-sns';
import { mockClient } from 'aws-sdk-client-mock';
import {
  setupPgaudit,
  splitLogRecords,
  type AccessAlert,
  type AuditEvent,
  type LogFormat,
} from '../../src/access-audit';
import { parseAccessAuditConfig } from '../../src/config/access-audit';
import { subscriptionFilterTerms } from '../../infra/access-audit/access-audit-monitor';
import { runCli } from './support/cli';
import { subscriptionEvent, testHandler, toCloudWatchMessages } from './support/lambda';
import { withClient } from '../support/databases';
import { createAuditedDatabase } from './support/audited-database';
import { scanLog } from './support/live-audit-log';
import { describeWithPgaudit } from './support/live-suite';
import type { PgauditServer } from './support/pgaudit-server';

const DB = 'appdb';
const TOPIC_ARN = 'arn:aws:sns:eu-west-1:123456789012:access-audit-alerts';
const SECTION = {
  auditedRoles: ['mallory', 'dba'],
  serviceAccounts: ['app_svc'],
  alerts: { digestThreshold: 1000 },
};
const config = (logFormat: LogFormat) => parseAccessAuditConfig({ ...SECTION, logFormat });

/** A fake record for alice, from a host she never used: what a CR would smuggle in. */
const SMUGGLED =
  '2026-12-01 00:00:00 UTC:10.9.9.9(1):alice@appdb:[1]:LOG:  AUDIT: SESSION,1,1,ROLE,GRANT,,,GRANT rds_superuser TO alice,<none>';
const REAL_UPDATE = "UPDATE billing.cards SET note = 'stolen' WHERE id = 1";

/** What an insider without superuser rights tries, plus roles named to pass for the service account. */
async function runInsiderWorkload(server: PgauditServer): Promise<void> {
  const roles = {
    logins: ['mallory', 'app_svc', 'app_svc@x', 'app_svc '],
    // A human DBA with superuser rights: the one who can silence pgAudit.
    superusers: ['dba'],
  };
  await createAuditedDatabase(server, DB, roles, async (admin) => {
    await admin.query('CREATE SCHEMA billing');
    await admin.query('CREATE TABLE billing.cards (id int PRIMARY KEY, note text)');
    await admin.query("INSERT INTO billing.cards VALUES (1, 'card')");
    await admin.query('GRANT USAGE ON SCHEMA billing TO mallory');
    await admin.query('GRANT ALL ON billing.cards TO mallory');
    await admin.query('GRANT CREATE ON SCHEMA public TO app_svc, "app_svc@x", "app_svc "');
    await setupPgaudit(admin, config('stderr'));
  });
  await withClient(server.userUrl('mallory', DB), async (mallory) => {
    // 1: a byte-identical GRANT record written with RAISE LOG (statement 1 is the DO itself).
    await mallory.query(
      "DO $$BEGIN RAISE LOG 'AUDIT: SESSION,1,1,ROLE,GRANT,,,GRANT rds_superuser TO mallory,<none>'; END$$",
    );
    // 2: the same with DETAIL and HINT lines between the record and its CONTEXT.
    await mallory.query(
      "DO $$BEGIN RAISE LOG 'AUDIT: SESSION,2,1,ROLE,GRANT,TABLE,,GRANT ALL ON billing.cards TO mallory,<none>' USING DETAIL = 'd', HINT = 'h'; END$$",
    );
    // A failed statement whose text is a record: ERROR + STATEMENT:  AUDIT: …
    await mallory
      .query('AUDIT: SESSION,3,1,ROLE,GRANT,,,GRANT rds_superuser TO mallory,<none>')
      .catch(() => undefined);
    // 3 is the DO; it forges statement 4 with a harmless text before running the real 4.
    await mallory.query(
      "DO $$BEGIN RAISE LOG 'AUDIT: SESSION,4,1,WRITE,UPDATE,TABLE,billing.cards,UPDATE billing.cards SET note = ''ok'' WHERE id = 0,<none>'; END$$",
    );
    await mallory.query(REAL_UPDATE);
    // A statement carrying CRs around a complete fake line for another user and host.
    await mallory.query(`SELECT '\r${SMUGGLED}\r' AS x`);
  });
  // Roles whose names make the RDS prefix ambiguous or differ only by a space.
  await withClient(server.userUrl('app_svc@x', DB), (role) =>
    role.query('CREATE TABLE public.by_at_role (id int)'),
  );
  await withClient(server.userUrl('app_svc ', DB), (role) =>
    role.query('CREATE TABLE public.by_space_role (id int)'),
  );
  // The real service account: excluded.
  await withClient(server.userUrl('app_svc', DB), (role) =>
    role.query('CREATE TABLE public.by_service (id int)'),
  );
  await runTamperWorkload(server);
  await withClient(server.userUrl('mallory', DB), (mallory) =>
    mallory.query("SELECT 'end-of-workload'"),
  );
}

/** Each attempt to silence the audit, in a fresh session of its own (each starts audited). */
// SET pgaudit.log = 'none' is not logged at all by pgAudit 1.7 (the SET takes effect
// before its record would be written): hiding only reads is, and alerts.
const TAMPERING = [
  "SET pgaudit.log = 'all, -read'",
  "SELECT set_config('pgaudit.log', 'none', false)",
  'RESET pgaudit.log',
  'ALTER ROLE "app_svc " SET pgaudit.log = \'none\'',
  'SELECT pg_reload_conf()',
  "ALTER SYSTEM SET pgaudit.log_catalog = 'off'",
  "SELECT pg_drop_replication_slot('audit_gap')",
  'DROP PUBLICATION audit_gap',
  // The database setting loses to the role settings of the roles that run after it.
  `ALTER DATABASE ${DB} SET pgaudit.log = 'none'`,
];
/** Run last (then undone): without the extension the database logs nothing more. */
const DROP_EXTENSION = 'DROP EXTENSION pgaudit';
const IDENTITY_CHANGES = ['SET ROLE mallory', 'SET SESSION AUTHORIZATION mallory', 'RESET ROLE'];

async function runTamperWorkload(server: PgauditServer): Promise<void> {
  await withClient(server.adminUrl(DB), async (admin) => {
    await admin.query("SELECT pg_create_physical_replication_slot('audit_gap')");
    await admin.query('CREATE PUBLICATION audit_gap FOR ALL TABLES');
  });
  for (const statement of [...TAMPERING, ...IDENTITY_CHANGES, DROP_EXTENSION])
    await withClient(server.userUrl('dba', DB), (dba) => dba.query(statement));
  await withClient(server.adminUrl(DB), async (admin) => {
    await admin.query('CREATE EXTENSION pgaudit');
    await admin.query(`ALTER DATABASE ${DB} RESET pgaudit.log`);
  });
  // The service account: a GRANT by a service credential is caught (it logs ddl,role).
  await withClient(server.userUrl('app_svc', DB), (role) =>
    role.query('GRANT SELECT ON public.by_service TO mallory'),
  );
  await withClient(server.adminUrl(DB), (admin) => admin.query('ALTER SYSTEM RESET ALL'));
}

async function waitForLogs(server: PgauditServer): Promise<Record<LogFormat, string>> {
  const deadline = Date.now() + 15_000;
  for (;;) {
    const logs = {
      stderr: await server.readLog('stderr'),
      csvlog: await server.readLog('csvlog'),
      jsonlog: await server.readLog('jsonlog'),
    };
    if (Object.values(logs).every((log) => log.includes('end-of-workload'))) return logs;
    if (Date.now() > deadline) throw new Error('the logging collector did not write the workload');
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

/** The alerts of the shared pipeline (the Lambda and pgaudit scan run it) over a whole log. */
function pipelineAlerts(log: string, format: LogFormat): AccessAlert[] {
  return scanLog(config(format), log, format).flatMap(({ verdict }) =>
    verdict.kind === 'alert' ? [verdict.alert] : [],
  );
}

/** Alerts about what the workload's roles did (the admin's own set-up DDL left out). */
function insiderAlerts(alerts: readonly AccessAlert[]) {
  return alerts
    .filter((alert) => alert.event.user !== 'postgres' && alert.event.user !== 'dba')
    .map((alert) => [alert.rule, alert.severity, alert.event.user, alert.event.command]);
}

describeWithPgaudit('forged, hidden and ambiguous pgAudit records on a live server', (start) => {
  let server: PgauditServer;
  let logs: Record<LogFormat, string>;
  let dir: string;

  beforeAll(async () => {
    server = await start({
      allFormats: true,
      settings: { 'pgaudit.log': 'ddl,role' },
    });
    await runInsiderWorkload(server);
    logs = await waitForLogs(server);
    dir = await mkdtemp(path.join(os.tmpdir(), 'access-audit-forgery-'));
  });

  afterAll(async () => {
    await server?.stop();
  });

  it('the server log really holds the forgeries', () => {
    const lines = logs.stderr.split('\n');
    expect(
      lines.filter((line) =>
        /^[\d-]+ [\d:]+ UTC:127\.0\.0\.1\(\d+\):mallory@appdb:\[\d+\]:LOG: {2}AUDIT: SESSION,1,1,ROLE,GRANT,,,GRANT rds_superuser TO mallory,<none>$/.test(
          line,
        ),
      ),
    ).toHaveLength(1);
    expect(lines.some((line) => /:CONTEXT: {2}PL\/pgSQL function .* at RAISE$/.test(line))).toBe(
      true,
    );
    expect(lines.some((line) => line.includes(':STATEMENT:  AUDIT: SESSION,3,1,ROLE,GRANT'))).toBe(
      true,
    );
    expect(logs.stderr).toContain(`\r${SMUGGLED}\r`);
  });

  it.each(['stderr', 'csvlog', 'jsonlog'] as const)(
    '%s: forged records alert as forged-audit-record, never as what they claim',
    (format) => {
      const alerts = pipelineAlerts(logs[format], format);
      const ambiguous: string[] =
        format === 'stderr'
          ? ['ambiguous-identity', 'high', 'app_svc', 'CREATE TABLE']
          : ['ddl', 'medium', 'app_svc@x', 'CREATE TABLE'];
      expect(insiderAlerts(alerts)).toEqual([
        ['forged-audit-record', 'critical', 'mallory', 'GRANT'],
        ['forged-audit-record', 'critical', 'mallory', 'GRANT'],
        ['forged-audit-record', 'critical', 'mallory', 'UPDATE'],
        ['human-dml', 'high', 'mallory', 'UPDATE'],
        ambiguous,
        ['ddl', 'medium', 'app_svc ', 'CREATE TABLE'],
        // A service credential running GRANT: service accounts log ddl,role and this alerts.
        ['privilege-change', 'critical', 'app_svc', 'GRANT'],
      ]);
      const forged = alerts.filter((alert) => alert.rule === 'forged-audit-record');
      expect(forged[0]!.summary).toMatch(
        /^mallory@appdb from 127\.0\.0\.1 \(pid \d+\) wrote a fake pgAudit record \(PL\/pgSQL function inline_code_block line 1 at RAISE\): ROLE GRANT "GRANT rds_superuser TO mallory"$/,
      );
      // The decoy does not hide the real statement: it alerts with its own text.
      const dml = alerts.find((alert) => alert.rule === 'human-dml');
      expect(dml?.event.statement).toBe(REAL_UPDATE);
      // Nothing is attributed to alice or the smuggled host; nothing came from STATEMENT lines.
      expect(alerts.filter((alert) => alert.event.user === 'alice')).toEqual([]);
      expect(alerts.filter((alert) => alert.event.remoteHost === '10.9.9.9')).toEqual([]);
      expect(
        alerts.filter(
          (alert) => alert.rule === 'privilege-change' && alert.event.user === 'mallory',
        ),
      ).toEqual([]);
    },
  );

  it.each(['stderr', 'csvlog', 'jsonlog'] as const)(
    '%s: silencing the audit alerts as audit-tampering, SET ROLE as identity-change',
    (format) => {
      const alerts = pipelineAlerts(logs[format], format).filter(
        (alert) => alert.event.user === 'dba',
      );
      expect(
        alerts.map((alert) => [alert.rule, alert.severity, alert.event.statement, alert.actingAs]),
      ).toEqual([
        ...TAMPERING.map((statement) => ['audit-tampering', 'critical', statement, undefined]),
        ['identity-change', 'medium', 'SET ROLE mallory', 'mallory'],
        ['identity-change', 'medium', 'SET SESSION AUTHORIZATION mallory', 'mallory'],
        ['identity-change', 'medium', 'RESET ROLE', 'DEFAULT'],
        ['audit-tampering', 'critical', DROP_EXTENSION, undefined],
      ]);
      expect(alerts[0]!.summary).toMatch(
        /^dba@appdb from 127\.0\.0\.1: SET \(MISC\): pgaudit setting changed$/,
      );
    },
  );

  it('stderr: the Lambda behind the deployed subscription filter still sees forgeries', async () => {
    // CloudWatch Logs delivers only the log events holding one of the filter's terms;
    // a forgery is told by the CONTEXT line that follows it, a log event of its own.
    const terms = subscriptionFilterTerms(config('stderr'));
    const delivered = toCloudWatchMessages(logs.stderr).filter((message) =>
      terms.some((term) => message.includes(term)),
    );
    const sns = mockClient(SNSClient);
    onTestFinished(() => sns.restore());
    sns.on(PublishCommand).resolves({ MessageId: 'm' });
    const { handler } = testHandler(
      { topicArn: TOPIC_ARN, fifo: false, config: config('stderr') },
      { sns: new SNSClient({}) },
    );
    await handler(subscriptionEvent(delivered));
    const alerts = sns.commandCalls(PublishCommand).map((call) => {
      const body = JSON.parse(call.args[0].input.Message!) as { lambda: string };
      return JSON.parse(body.lambda) as AccessAlert;
    });
    expect(insiderAlerts(alerts).slice(0, 4)).toEqual([
      ['forged-audit-record', 'critical', 'mallory', 'GRANT'],
      ['forged-audit-record', 'critical', 'mallory', 'GRANT'],
      ['forged-audit-record', 'critical', 'mallory', 'UPDATE'],
      ['human-dml', 'high', 'mallory', 'UPDATE'],
    ]);
  });

  it('reads a CR inside a statement as data, in pgaudit parse as in the Lambda', async () => {
    const file = path.join(dir, 'postgresql.log');
    await writeFile(file, logs.stderr);
    const run = await runCli(['pgaudit', 'parse', file]);
    const events = run.stdout
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line) as AuditEvent);
    expect(events.filter((event) => event.user === 'alice')).toEqual([]);
    expect(
      events.find((event) => event.user === 'mallory' && event.statement.includes('\r')),
    ).toMatchObject({ command: 'SELECT', statement: `SELECT '\r${SMUGGLED}\r' AS x` });
    expect(run.stderr).toContain('3 forged or unreadable records skipped');
  });

  it.each(['stderr', 'csvlog', 'jsonlog'] as const)(
    '%s: pgaudit scan and the alert Lambda give the same verdicts on the same log',
    async (format) => {
      const configFile = path.join(dir, `config-${format}.json`);
      const logFile = path.join(dir, `scan.${format}`);
      await writeFile(
        configFile,
        JSON.stringify({
          tables: [{ table: 'cards', schema: 'billing' }],
          accessAudit: { ...SECTION, logFormat: format },
        }),
      );
      await writeFile(logFile, logs[format]);
      const scan = await runCli(['pgaudit', 'scan', '--config', configFile, logFile]);
      expect(scan.error).toBeUndefined();
      const cliAlerts = scan.stdout
        .trim()
        .split('\n')
        .map((line) => JSON.parse(line) as AccessAlert);

      const sns = mockClient(SNSClient);
      onTestFinished(() => sns.restore());
      sns.on(PublishCommand).resolves({ MessageId: 'm' });
      const { handler } = testHandler(
        { topicArn: TOPIC_ARN, fifo: false, config: config(format) },
        { sns: new SNSClient({}) },
      );
      const messages =
        format === 'stderr'
          ? toCloudWatchMessages(logs.stderr)
          : splitLogRecords(logs[format], format);
      await handler(subscriptionEvent(messages));
      const lambdaAlerts = sns.commandCalls(PublishCommand).map((call) => {
        const body = JSON.parse(call.args[0].input.Message!) as { lambda: string };
        return JSON.parse(body.lambda) as AccessAlert;
      });
      const verdicts = (alerts: AccessAlert[]) =>
        alerts.map((alert) => [alert.rule, alert.severity, alert.summary, alert.event.statement]);
      expect(lambdaAlerts.length).toBeGreaterThan(6);
      expect(verdicts(lambdaAlerts)).toEqual(verdicts(cliAlerts));
      expect(verdicts(cliAlerts)).toEqual(verdicts(pipelineAlerts(logs[format], format)));
    },
  );
});

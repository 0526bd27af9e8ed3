import { Logger } from '@aws-lambda-powertools/logger';
import { GetSecretValueCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { PublishCommand, SNSClient } from '@aws-sdk/client-sns';
import { mockClient } from 'aws-sdk-client-mock';
import { createCanaryHandler } from '../../src/lambda/access-canary/handler';
import { setUpLogins } from '../../src/lambda/database-logins/handler';
import { withClient } from '../support/databases';
import { connectionArgs, writeConfig } from '../support/cli';
import { runCli } from './support/cli';
import { subscriptionEvent, testHandler, toCloudWatchMessages } from './support/lambda';
import { describeWithPgaudit } from './support/live-suite';
import type { PgauditServer } from './support/pgaudit-server';
import { APP_DATABASE, LIVE_CONFIG, prepareSource } from './support/workload';

const CANARY = LIVE_CONFIG.canary.role;
const SECRET_ARN = 'arn:aws:secretsmanager:eu-west-1:123456789012:secret:canary-AbCdEf';

async function asAdmin(server: PgauditServer, sql: string): Promise<void> {
  await withClient(server.adminUrl(APP_DATABASE), (admin) => admin.query(sql));
}

/**
 * The canary end to end on a real pgAudit 1.7 server: `pgaudit setup` creates the
 * canary role, the canary Lambda (Secrets Manager answered by aws-sdk-client-mock with
 * the real request shape) logs in and runs its statement, and the alert Lambda reading
 * the server's own log publishes CanarySeen; `pgaudit canary` does the same locally
 * and fails when pgAudit stops logging the canary.
 */
describeWithPgaudit('access-audit canary on a live pgAudit server', (start) => {
  let server: PgauditServer;
  let configFile: string;
  const secrets = mockClient(SecretsManagerClient);
  const sns = mockClient(SNSClient);

  beforeAll(async () => {
    server = await start();
    await prepareSource(server);
    configFile = await writeConfig({
      tables: [{ table: 'items' }],
      accessAudit: { auditedRoles: ['alice', 'dana'], serviceAccounts: ['app_svc'] },
    });
  });

  afterAll(async () => {
    await server?.stop();
  });

  beforeEach(() => {
    secrets.reset();
    sns.reset();
    sns.on(PublishCommand).resolves({ MessageId: 'id' });
  });

  it('the canary Lambda runs as the canary role and the alert Lambda sees its record', async () => {
    secrets.on(GetSecretValueCommand, { SecretId: SECRET_ARN }).resolves({
      SecretString: JSON.stringify({
        username: CANARY,
        password: 'trust-auth-ignores-it',
        host: '127.0.0.1',
        port: server.port,
      }),
    });
    const canary = createCanaryHandler({
      settings: {
        role: CANARY,
        location: { SecretArn: SECRET_ARN, DatabaseName: APP_DATABASE, SslMode: 'disable' },
      },
      secrets: new SecretsManagerClient({}),
      logger: new Logger({ logLevel: 'SILENT' }),
    });
    const { nonce } = await canary();

    const log = await server.readLog();
    expect(log).toContain(`${CANARY}@${APP_DATABASE}`);
    const { handler, metrics } = testHandler(
      { topicArn: 'arn:aws:sns:eu-west-1:123456789012:alerts', fifo: false, config: LIVE_CONFIG },
      { sns: new SNSClient({}) },
    );
    const stats = await handler(subscriptionEvent(toCloudWatchMessages(log)));
    expect(stats.canaries).toBe(1);
    expect(metrics.totals().CanarySeen).toBe(1);
    // The canary pages nobody.
    const published = sns.commandCalls(PublishCommand).map((call) => call.args[0].input.Message);
    expect(published.filter((message) => message?.includes(nonce))).toEqual([]);

    // pgaudit scan decides the same record the same way.
    const scan = await runCli(['pgaudit', 'scan', '--config', configFile, '--all'], log);
    const verdicts = scan.stdout
      .split('\n')
      .filter(Boolean)
      .map((line) => JSON.parse(line) as { verdict?: { kind: string; nonce?: string } });
    expect(verdicts.filter((line) => line.verdict?.kind === 'canary')).toEqual([
      expect.objectContaining({ verdict: { kind: 'canary', nonce } }),
    ]);
  });

  it('on a kit-created source the logins resource alone makes the canary work: extension, login, record seen', async () => {
    // A database nobody ran `pgaudit setup` in: what a new cluster's database is at deploy.
    await asAdmin(server, 'CREATE DATABASE fresh_app');
    const admin = new URL(server.adminUrl('fresh_app'));
    const ADMIN_ARN = 'arn:aws:secretsmanager:eu-west-1:123456789012:secret:source-master-AbCdEf';
    const host = { host: '127.0.0.1', port: server.port };
    secrets
      .on(GetSecretValueCommand, { SecretId: ADMIN_ARN })
      .resolves({
        SecretString: JSON.stringify({
          ...host,
          username: decodeURIComponent(admin.username),
          password: decodeURIComponent(admin.password) || 'trust-auth-ignores-it',
        }),
      })
      .on(GetSecretValueCommand, { SecretId: SECRET_ARN })
      .resolves({
        SecretString: JSON.stringify({ ...host, username: CANARY, password: 'Generated-32-chars' }),
      });
    const lines: string[] = [];
    await setUpLogins(
      {
        RequestType: 'Create',
        ResourceProperties: {
          // What the stack passes for an access-audit-only config on a new source.
          Config: JSON.stringify({ tables: [], accessAudit: { canary: { role: CANARY } } }),
          SourceAdmin: { SecretArn: ADMIN_ARN, DatabaseName: 'fresh_app', SslMode: 'disable' },
          CanarySecretArn: SECRET_ARN,
        },
      },
      { secrets: new SecretsManagerClient({}), log: (line) => lines.push(line) },
    );
    expect(lines).toEqual([
      'source: extension pgaudit present',
      // The role is cluster-wide; beforeAll's `pgaudit setup` made it first.
      `source: reset the password of login ${CANARY}`,
      `source: role ${CANARY}: pgaudit.log=read, statement_timeout=5s (canary)`,
    ]);

    const canary = createCanaryHandler({
      settings: {
        role: CANARY,
        location: { SecretArn: SECRET_ARN, DatabaseName: 'fresh_app', SslMode: 'disable' },
      },
      secrets: new SecretsManagerClient({}),
      logger: new Logger({ logLevel: 'SILENT' }),
    });
    const { nonce } = await canary();
    const log = await server.readLog();
    const { handler, metrics } = testHandler(
      { topicArn: 'arn:aws:sns:eu-west-1:123456789012:alerts', fifo: false, config: LIVE_CONFIG },
      { sns: new SNSClient({}) },
    );
    const stats = await handler(
      subscriptionEvent(toCloudWatchMessages(log).filter((line) => line.includes('@fresh_app:'))),
    );
    expect(stats.canaries).toBe(1);
    expect(metrics.totals().CanarySeen).toBe(1);
    expect(log).toContain(`audit-trail-canary:${nonce}`);
  });

  it('pgaudit canary runs the statement and finds its record in the log file', async (ctx) => {
    if (server.logFile === undefined) return ctx.skip(); // the container's log is not a host file
    const run = await runCli([
      'pgaudit',
      'canary',
      ...connectionArgs({ configFile, sourceUrl: server.userUrl(CANARY, APP_DATABASE) }),
      '--log-file',
      server.logFile,
      '--timeout',
      '20',
    ]);
    expect(run.error).toBeUndefined();
    expect(run.stdout).toMatch(
      new RegExp(`^seen {2}canary \\d+-[0-9a-f]{16}: ${CANARY}@${APP_DATABASE} pid \\d+ at `, 'm'),
    );
  });

  it('pgaudit canary fails (exit 1) when pgAudit stops logging the canary role', async (ctx) => {
    if (server.logFile === undefined) return ctx.skip();
    // A superuser silencing the canary role: pgAudit itself logs nothing of it here.
    await asAdmin(server, `ALTER ROLE ${CANARY} SET pgaudit.log = 'none'`);
    try {
      const run = await runCli([
        'pgaudit',
        'canary',
        ...connectionArgs({ configFile, sourceUrl: server.userUrl(CANARY, APP_DATABASE) }),
        '--log-file',
        server.logFile,
        '--timeout',
        '2',
      ]);
      expect(run.error?.message).toMatch(
        /^canary \d+-[0-9a-f]{16} not seen in .* within 2 s: pgAudit is not logging the canary role/,
      );
      expect((run.error as { exitCode?: number }).exitCode).toBe(1);
    } finally {
      await asAdmin(server, `ALTER ROLE ${CANARY} SET pgaudit.log = 'read'`);
    }
  });

  it('pgaudit canary refuses to run as any other role (exit 2)', async () => {
    const run = await runCli([
      'pgaudit',
      'canary',
      ...connectionArgs({ configFile, sourceUrl: server.userUrl('alice', APP_DATABASE) }),
      '--log-file',
      server.logFile ?? '/dev/null',
    ]);
    expect(run.error?.message).toBe(
      `--source-url logs in as "alice", but accessAudit.canary.role is "${CANARY}": only the canary role's record counts as the canary`,
    );
    expect((run.error as { exitCode?: number }).exitCode).toBe(2);
  });

  it('pgaudit check reports the canary role and its settings', async () => {
    const run = await runCli([
      'pgaudit',
      'check',
      ...connectionArgs({ configFile, sourceUrl: server.adminUrl(APP_DATABASE) }),
    ]);
    expect(run.stdout).toContain(
      `OK    canary role ${CANARY}: pgaudit.log=read, statement_timeout=5s`,
    );
    await asAdmin(server, `GRANT alice TO ${CANARY}`);
    try {
      const bad = await runCli([
        'pgaudit',
        'check',
        ...connectionArgs({ configFile, sourceUrl: server.adminUrl(APP_DATABASE) }),
      ]);
      expect(bad.stdout).toContain(`FAIL  canary role ${CANARY}: is a member of alice`);
    } finally {
      await asAdmin(server, `REVOKE alice FROM ${CANARY}`);
    }
  });
});

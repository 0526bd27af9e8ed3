import { randomBytes } from 'node:crypto';
import { GetSecretValueCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { mockClient } from 'aws-sdk-client-mock';
import { targetPgauditParameters } from '../../infra/access-audit/target-audit';
import { AccessAuditPipeline, splitLogRecords } from '../../src/access-audit';
import { parseConfig } from '../../src/config';
import { parseAccessAuditConfig } from '../../src/config/access-audit';
import { setUpLogins } from '../../src/lambda/database-logins/handler';
import { migrateTarget } from '../../src/migrate/migrate-target';
import { kitLogins } from '../../src/trust/logins';
import { withClient } from '../support/databases';
import { cdc, DmsApplier } from '../support/dms-apply';
import { describeWithPgaudit } from '../access-audit/support/live-suite';
import type { PgauditServer } from '../access-audit/support/pgaudit-server';

const secretsMock = mockClient(SecretsManagerClient);
const ARN = (name: string) => `arn:aws:secretsmanager:eu-west-1:123456789012:secret:${name}-AbCdEf`;

/** The target's pgaudit.* parameters, as the kit's parameter group sets them. */
function pgauditSettings(): Record<string, string> {
  return Object.fromEntries(
    Object.entries(targetPgauditParameters()).filter(
      ([name]) => name.startsWith('pgaudit.') || name.startsWith('log_'),
    ),
  );
}

describeWithPgaudit('pgAudit on the target (audit the auditors)', (start) => {
  let server: PgauditServer;
  afterAll(async () => server?.stop());

  it('logs a DBA writing to the audit store, alerts on it, and keeps the DMS pipeline out of the log', async () => {
    server = await start({ settings: pgauditSettings() });
    const suffix = randomBytes(3).toString('hex');
    const [source, target] = [`src_${suffix}`, `tgt_${suffix}`];
    await withClient(server.adminUrl('postgres'), async (client) => {
      await client.query(`CREATE DATABASE ${source}`);
      await client.query(`CREATE DATABASE ${target}`);
    });
    await withClient(server.adminUrl(source), (c) =>
      c.query('CREATE TABLE items (id int PRIMARY KEY, name text)'),
    );
    const config = parseConfig({ tables: [{ table: 'items' }] });
    const logins = kitLogins(config);
    const admin = new URL(server.adminUrl(target));
    // Trust authentication on 127.0.0.1: the secrets' passwords are not checked.
    const secret = (username: string) => ({
      SecretString: JSON.stringify({
        engine: 'postgres',
        host: admin.hostname,
        port: Number(admin.port),
        username,
        password: 'unused-by-trust-auth',
      }),
    });
    secretsMock
      .on(GetSecretValueCommand, { SecretId: ARN('master') })
      .resolves(secret(decodeURIComponent(admin.username)))
      .on(GetSecretValueCommand, { SecretId: ARN('dms') })
      .resolves(secret(logins.dms))
      .on(GetSecretValueCommand, { SecretId: ARN('migrator') })
      .resolves(secret(logins.migrator));
    const lines: string[] = [];
    await setUpLogins(
      {
        RequestType: 'Create',
        ResourceProperties: {
          Config: JSON.stringify({ tables: config.tables }),
          TargetAdmin: { SecretArn: ARN('master'), DatabaseName: target, SslMode: 'disable' },
          DmsSecretArn: ARN('dms'),
          MigratorSecretArn: ARN('migrator'),
          TargetPgaudit: 'true',
        },
      },
      { secrets: new SecretsManagerClient({ region: 'eu-west-1' }), log: (l) => lines.push(l) },
    );
    expect(lines).toContain('target: extension pgaudit present');
    expect(lines).toContain(
      `target: role ${logins.dms}: pgaudit.log=ddl,role (the pipeline's own writes)`,
    );

    await migrateTarget({
      config,
      sourceUrl: server.adminUrl(source),
      targetUrl: server.userUrl(logins.migrator, target),
    });
    const logBefore = (await server.readLog()).length;
    // The pipeline: DMS writes staging; the capture functions append in its session.
    await withClient(server.userUrl(logins.dms, target), async (client) => {
      const dms = new DmsApplier(client, 'audit', 'items', ['id']);
      await dms.insert({ id: '1', name: 'one' }, cdc('INSERT', '2026-11-22 10:00:00', 1));
    });
    // A DBA who was given the writer role forges a change, and tries to rewrite history.
    const dba = `dba_${suffix}`;
    await withClient(server.adminUrl(target), async (client) => {
      await client.query(`CREATE ROLE ${dba} LOGIN`);
      await client.query(`GRANT audit_writer TO ${dba}`);
    });
    await withClient(server.userUrl(dba, target), async (client) => {
      const forger = new DmsApplier(client, 'audit', 'items', ['id']);
      await forger.insert({ id: '2', name: 'forged' }, cdc('INSERT', '2026-11-22 10:00:01', 2));
      await client.query(`UPDATE audit.audit_log SET operation = 'DELETE'`).catch(() => undefined);
    });

    const log = (await server.readLog()).slice(logBefore);
    const pipeline = new AccessAuditPipeline(parseAccessAuditConfig({}));
    const verdicts = [
      ...splitLogRecords(log).flatMap((record) => pipeline.push(record, undefined)),
      ...pipeline.flush(),
    ].flatMap((outcome) => (outcome.kind === 'verdict' ? [outcome] : []));
    const writes = verdicts
      .filter(({ event }) => event.auditClass === 'WRITE')
      .map(({ event }) => [event.user, event.command, event.objectName]);
    // Nothing the DMS login did is in the log; the DBA's forged write is.
    expect(writes.filter(([user]) => user === logins.dms)).toEqual([]);
    expect(writes).toEqual([[dba, 'INSERT', 'audit.items_staging']]);
    // The refused UPDATE never ran (no pgAudit record), but the attempt is in the same log.
    expect(log).toMatch(
      new RegExp(`:${dba}@${target}:\\[\\d+\\]:ERROR:  permission denied for table audit_log`),
    );
    const alerted = verdicts
      .filter(({ verdict }) => verdict.kind === 'alert')
      .map(({ event }) => [event.user, event.command, event.objectName]);
    expect(alerted).toEqual(expect.arrayContaining([[dba, 'INSERT', 'audit.items_staging']]));
  });
});

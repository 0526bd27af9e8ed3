import { randomBytes } from 'node:crypto';
import { GetSecretValueCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { mockClient } from 'aws-sdk-client-mock';
import { setUpLogins, type LoginsEvent } from '../../src/lambda/database-logins/handler';
import { runCanary } from '../../src/access-audit/canary';
import { kitLogins } from '../../src/trust/logins';
import { createTestDatabase, withClient } from '../support/databases';

const secretsMock = mockClient(SecretsManagerClient);
beforeEach(() => secretsMock.reset());

const ARN = (name: string) => `arn:aws:secretsmanager:eu-west-1:123456789012:secret:${name}-AbCdEf`;

/** A secret value as Secrets Manager returns it (the shape RDS and the kit's secrets have). */
function secretValue(name: string, value: Record<string, unknown>) {
  return {
    ARN: ARN(name),
    Name: name,
    SecretString: JSON.stringify(value),
    VersionId: 'v1',
    VersionStages: ['AWSCURRENT'],
  };
}

/** The test server's superuser as a master secret. */
function adminSecret(url: string) {
  const parsed = new URL(url);
  return {
    engine: 'postgres',
    host: parsed.hostname,
    port: Number(parsed.port),
    username: decodeURIComponent(parsed.username),
    password: decodeURIComponent(parsed.password),
  };
}

const password = () => randomBytes(18).toString('base64url');

describe('logins custom resource', () => {
  it('creates the target and source logins from their secrets, as the administrators', async () => {
    const sourceUrl = await createTestDatabase('src');
    const targetUrl = await createTestDatabase('tgt');
    await withClient(sourceUrl, (client) =>
      client.query('CREATE TABLE items (id int PRIMARY KEY, name text)'),
    );
    const auditSchema = `a_${randomBytes(4).toString('hex')}`;
    const logins = kitLogins({ auditSchema });
    const passwords = {
      dms: password(),
      migrator: password(),
      replication: password(),
      auditor: password(),
    };
    const host = { host: 'ignored.example', port: 5432, engine: 'postgres' };
    secretsMock
      .on(GetSecretValueCommand, { SecretId: ARN('target-master') })
      .resolves(secretValue('target-master', adminSecret(targetUrl)))
      .on(GetSecretValueCommand, { SecretId: ARN('source-master') })
      .resolves(secretValue('source-master', adminSecret(sourceUrl)))
      .on(GetSecretValueCommand, { SecretId: ARN('dms') })
      .resolves(secretValue('dms', { ...host, username: logins.dms, password: passwords.dms }))
      .on(GetSecretValueCommand, { SecretId: ARN('migrator') })
      .resolves(
        secretValue('migrator', {
          ...host,
          username: logins.migrator,
          password: passwords.migrator,
        }),
      )
      .on(GetSecretValueCommand, { SecretId: ARN('auditor') })
      .resolves(
        secretValue('auditor', { ...host, username: logins.auditor, password: passwords.auditor }),
      )
      .on(GetSecretValueCommand, { SecretId: ARN('replication') })
      .resolves(
        secretValue('replication', {
          ...host,
          username: logins.replication,
          password: passwords.replication,
        }),
      );
    const event: LoginsEvent = {
      RequestType: 'Create',
      ResourceProperties: {
        Config: JSON.stringify({ auditSchema, tables: [{ table: 'items' }] }),
        TargetAdmin: {
          SecretArn: ARN('target-master'),
          DatabaseName: new URL(targetUrl).pathname.slice(1),
          SslMode: 'disable',
        },
        DmsSecretArn: ARN('dms'),
        MigratorSecretArn: ARN('migrator'),
        AuditorSecretArn: ARN('auditor'),
        SourceAdmin: {
          SecretArn: ARN('source-master'),
          DatabaseName: new URL(sourceUrl).pathname.slice(1),
          SslMode: 'disable',
        },
        ReplicationSecretArn: ARN('replication'),
      },
    };
    const lines: string[] = [];
    await expect(
      setUpLogins(event, {
        secrets: new SecretsManagerClient({ region: 'eu-west-1' }),
        log: (line) => lines.push(line),
      }),
    ).resolves.toEqual({ PhysicalResourceId: 'audit-trail-logins' });
    expect(lines).toEqual([
      `target: created login ${logins.dms}`,
      `target: created login ${logins.migrator}`,
      `target: created login ${logins.auditor}`,
      `target: role ${logins.auditor}: output settings pinned`,
      `source: created login ${logins.replication}`,
      `source: ${logins.replication} may read 1 audited table(s)`,
      `source: ${logins.replication}: DMS DDL capture in schema ${auditSchema}_dms_ddl`,
    ]);
    // Every secret was read by its ARN, nothing else.
    expect(
      secretsMock.commandCalls(GetSecretValueCommand).map((call) => call.args[0].input),
    ).toEqual(
      expect.arrayContaining(
        ['dms', 'migrator', 'auditor', 'target-master', 'replication', 'source-master'].map(
          (name) => ({
            SecretId: ARN(name),
          }),
        ),
      ),
    );
    const as = (url: string, user: string, pw: string) => {
      const u = new URL(url);
      u.username = user;
      u.password = pw;
      return u.toString();
    };
    await withClient(as(targetUrl, logins.dms, passwords.dms), (c) => c.query('SELECT 1'));
    await withClient(as(targetUrl, logins.migrator, passwords.migrator), (c) =>
      c.query('SELECT 1'),
    );
    // The auditor logs in with the kit's output settings pinned on its role (TimeZone UTC).
    await withClient(as(targetUrl, logins.auditor, passwords.auditor), async (c) =>
      expect((await c.query('SHOW TimeZone')).rows).toEqual([{ TimeZone: 'UTC' }]),
    );
    await withClient(as(sourceUrl, logins.replication, passwords.replication), (c) =>
      c.query('SELECT * FROM items'),
    );
    // DMS's DDL capture is in place for the source's DDL, its artifacts the login's.
    await withClient(sourceUrl, async (c) => {
      await c.query('ALTER TABLE items ADD COLUMN size int');
      const { rows } = await c.query<{ owner: string; trigger: string }>(
        `SELECT p.proowner::regrole::text AS owner, e.evtname AS trigger
           FROM pg_event_trigger e JOIN pg_proc p ON p.oid = e.evtfoid
          WHERE p.pronamespace = $1::regnamespace`,
        [`${auditSchema}_dms_ddl`],
      );
      expect(rows).toEqual([{ owner: logins.replication, trigger: 'awsdms_intercept_ddl' }]);
    });
  });

  it('creates the canary login on a new source from its secret, LOGIN only, with no target (access audit only)', async () => {
    const sourceUrl = await createTestDatabase('canary');
    await withClient(sourceUrl, (client) =>
      client.query('CREATE TABLE secrets (id int PRIMARY KEY, card text)'),
    );
    const role = `canary_${randomBytes(4).toString('hex')}`;
    const canaryPassword = password();
    secretsMock
      .on(GetSecretValueCommand, { SecretId: ARN('source-master') })
      .resolves(secretValue('source-master', adminSecret(sourceUrl)))
      .on(GetSecretValueCommand, { SecretId: ARN('canary') })
      .resolves(
        secretValue('canary', {
          engine: 'postgres',
          host: 'ignored.example',
          port: 5432,
          username: role,
          password: canaryPassword,
        }),
      );
    const event: LoginsEvent = {
      RequestType: 'Create',
      ResourceProperties: {
        // What the stack passes for an access-audit-only config: no tables, the canary role.
        Config: JSON.stringify({
          auditSchema: 'audit',
          tables: [],
          accessAudit: { canary: { role } },
        }),
        SourceAdmin: {
          SecretArn: ARN('source-master'),
          DatabaseName: new URL(sourceUrl).pathname.slice(1),
          SslMode: 'disable',
        },
        CanarySecretArn: ARN('canary'),
      },
    };
    const lines: string[] = [];
    await setUpLogins(event, {
      secrets: new SecretsManagerClient({ region: 'eu-west-1' }),
      log: (line) => lines.push(line),
    });
    expect(lines).toEqual([
      // The embedded test server has no pgaudit: reported, not failed (the canary alarm shows it).
      expect.stringMatching(/^source: WARNING pgAudit is not active on the source/),
      `source: created login ${role}`,
      `source: role ${role}: pgaudit.log=read, statement_timeout=5s (canary)`,
    ]);
    // Only the two secrets named were read.
    expect(
      secretsMock.commandCalls(GetSecretValueCommand).map((call) => call.args[0].input.SecretId),
    ).toEqual(expect.arrayContaining([ARN('canary'), ARN('source-master')]));
    expect(secretsMock.commandCalls(GetSecretValueCommand)).toHaveLength(2);

    await withClient(sourceUrl, async (admin) => {
      const { rows } = await admin.query(
        `SELECT rolcanlogin, rolsuper, rolcreaterole, rolcreatedb, rolreplication, rolbypassrls,
                rolinherit, rolconnlimit, rolconfig,
                (SELECT count(*)::int FROM pg_auth_members WHERE member = r.oid) AS memberships
           FROM pg_roles r WHERE rolname = $1`,
        [role],
      );
      expect(rows).toEqual([
        {
          rolcanlogin: true,
          rolsuper: false,
          rolcreaterole: false,
          rolcreatedb: false,
          rolreplication: false,
          rolbypassrls: false,
          rolinherit: false,
          rolconnlimit: 2,
          rolconfig: ['pgaudit.log=read', 'statement_timeout=5s'],
          memberships: 0,
        },
      ]);
    });
    // The canary logs in with the secret's password and runs its statement; it reads nothing.
    const asCanary = new URL(sourceUrl);
    asCanary.username = role;
    asCanary.password = canaryPassword;
    await withClient(asCanary.toString(), async (canary) => {
      const nonce = await runCanary(canary);
      expect(nonce).toMatch(/^\d+-[0-9a-f]{16}$/);
      await expect(canary.query('SELECT * FROM secrets')).rejects.toThrow(/permission denied/);
    });

    // A second run (a stack update) resets the password and changes nothing else.
    lines.length = 0;
    await setUpLogins(
      { ...event, RequestType: 'Update', PhysicalResourceId: 'audit-trail-logins' },
      {
        secrets: new SecretsManagerClient({ region: 'eu-west-1' }),
        log: (line) => lines.push(line),
      },
    );
    expect(lines).toContain(`source: reset the password of login ${role}`);
  });

  it('refuses a canary secret for another login, and a canary login that holds more', async () => {
    const sourceUrl = await createTestDatabase('canary');
    const role = `canary_${randomBytes(4).toString('hex')}`;
    await withClient(sourceUrl, (admin) => admin.query(`CREATE ROLE ${role} LOGIN CREATEDB`));
    const canarySecret = (username: string) =>
      secretValue('canary', { username, password: password() });
    const event: LoginsEvent = {
      RequestType: 'Create',
      ResourceProperties: {
        Config: JSON.stringify({ tables: [], accessAudit: { canary: { role } } }),
        SourceAdmin: {
          SecretArn: ARN('source-master'),
          DatabaseName: new URL(sourceUrl).pathname.slice(1),
          SslMode: 'disable',
        },
        CanarySecretArn: ARN('canary'),
      },
    };
    const secrets = new SecretsManagerClient({ region: 'eu-west-1' });
    secretsMock
      .on(GetSecretValueCommand, { SecretId: ARN('source-master') })
      .resolves(secretValue('source-master', adminSecret(sourceUrl)))
      .on(GetSecretValueCommand, { SecretId: ARN('canary') })
      .resolves(canarySecret('postgres'));
    await expect(setUpLogins(event, { secrets, log: () => undefined })).rejects.toThrow(
      `secret ${ARN('canary')} must hold username "${role}"`,
    );
    secretsMock.on(GetSecretValueCommand, { SecretId: ARN('canary') }).resolves(canarySecret(role));
    await expect(setUpLogins(event, { secrets, log: () => undefined })).rejects.toThrow(
      `the login ${role} exists with more than the kit gives it (CREATEDB)`,
    );
  });

  it('refuses a login secret whose username is not the login the kit sets up', async () => {
    secretsMock
      .on(GetSecretValueCommand)
      .resolves(secretValue('dms', { username: 'postgres', password: 'x' }));
    const event: LoginsEvent = {
      RequestType: 'Update',
      PhysicalResourceId: 'audit-trail-logins',
      ResourceProperties: {
        Config: JSON.stringify({ tables: [{ table: 'items' }] }),
        TargetAdmin: { SecretArn: ARN('target-master'), DatabaseName: 'audit' },
        DmsSecretArn: ARN('dms'),
        MigratorSecretArn: ARN('migrator'),
      },
    };
    await expect(
      setUpLogins(event, { secrets: new SecretsManagerClient({ region: 'eu-west-1' }) }),
    ).rejects.toThrow(`secret ${ARN('dms')} must hold username "audit_dms"`);
  });

  it('does nothing on delete: the logins stay with the retained databases', async () => {
    const event = {
      RequestType: 'Delete',
      PhysicalResourceId: 'audit-trail-logins',
      ResourceProperties: {},
    } as unknown as LoginsEvent;
    await expect(
      setUpLogins(event, { secrets: new SecretsManagerClient({ region: 'eu-west-1' }) }),
    ).resolves.toEqual({ PhysicalResourceId: 'audit-trail-logins' });
    expect(secretsMock.calls()).toHaveLength(0);
  });
});

import { X509Certificate } from 'node:crypto';
import { rdsCaBundle } from '../../src/postgres/tls';
import { GetSecretValueCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { mockClient } from 'aws-sdk-client-mock';
import { parse } from 'pg-connection-string';
import type { MigrateTargetOptions } from '../../src/migrate/migrate-target';
import { runMigrations, type MigrationsEvent } from '../../src/lambda/migrate-target/handler';

const secretsMock = mockClient(SecretsManagerClient);

const SOURCE_SECRET = 'arn:aws:secretsmanager:eu-west-1:123456789012:secret:source-AbCdEf';
const TARGET_SECRET = 'arn:aws:secretsmanager:eu-west-1:123456789012:secret:target-GhIjKl';

/** A secret as RDS generates it for a CDK cluster. */
function rdsSecret(host: string, password: string) {
  return {
    ARN: SOURCE_SECRET,
    Name: 'source',
    SecretString: JSON.stringify({
      dbClusterIdentifier: 'cluster',
      password,
      dbname: 'app',
      engine: 'postgres',
      port: 5432,
      host,
      username: 'postgres',
    }),
    VersionId: 'v1',
    VersionStages: ['AWSCURRENT'],
  };
}

const event = (RequestType: MigrationsEvent['RequestType']): MigrationsEvent => ({
  RequestType,
  PhysicalResourceId: 'audit-trail-migrations',
  ResourceProperties: {
    Config: JSON.stringify({
      auditSchema: 'audit',
      tables: [{ schema: 'sales', table: 'order_items' }],
    }),
    Source: {
      SecretArn: SOURCE_SECRET,
      Host: 'source.cluster-x.eu-west-1.rds.amazonaws.com',
      Port: '5432',
      DatabaseName: 'app',
    },
    Target: { SecretArn: TARGET_SECRET, DatabaseName: 'audit' },
  },
});

beforeEach(() => secretsMock.reset());

describe('migrations custom resource', () => {
  it('runs migrateTarget with URLs built from the secrets, passwords safely encoded', async () => {
    secretsMock
      .on(GetSecretValueCommand, { SecretId: SOURCE_SECRET })
      .resolves(rdsSecret('ignored', 'p@ss/w#rd?&'));
    secretsMock
      .on(GetSecretValueCommand, { SecretId: TARGET_SECRET })
      .resolves(rdsSecret('target.cluster-y.eu-west-1.rds.amazonaws.com', 'x%y z'));
    const calls: MigrateTargetOptions[] = [];
    const response = await runMigrations(event('Create'), {
      secrets: new SecretsManagerClient({ region: 'eu-west-1' }),
      migrate: async (options) => {
        calls.push(options);
        return {
          applied: ['0001-audit-log'],
          tables: [],
          addedColumns: {},
          triggersInstalled: [],
        } as never;
      },
      log: () => {},
    });
    expect(response).toEqual({
      PhysicalResourceId: 'audit-trail-migrations',
      Data: { Applied: '0001-audit-log', Tables: '0' },
    });
    const options = calls[0];
    expect(options?.config.tables).toEqual([
      { schema: 'sales', table: 'order_items', ignoreColumns: [] },
    ]);
    const source = parse(options?.sourceUrl ?? '');
    expect(source).toMatchObject({
      host: 'source.cluster-x.eu-west-1.rds.amazonaws.com',
      port: '5432',
      user: 'postgres',
      password: 'p@ss/w#rd?&',
      database: 'app',
    });
    const target = parse(options?.targetUrl ?? '');
    expect(target).toMatchObject({
      host: 'target.cluster-y.eu-west-1.rds.amazonaws.com',
      password: 'x%y z',
      database: 'audit',
    });
  });

  it('verifies the server certificate against the RDS CA bundle it carries (verify-full)', async () => {
    secretsMock
      .on(GetSecretValueCommand)
      .resolves(rdsSecret('db.eu-west-1.rds.amazonaws.com', 'pw'));
    const urls: string[] = [];
    await runMigrations(event('Create'), {
      secrets: new SecretsManagerClient({ region: 'eu-west-1' }),
      migrate: async (options) => {
        urls.push(options.sourceUrl, options.targetUrl);
        return { applied: [], tables: [] } as never;
      },
      log: () => {},
    });
    expect(urls).toHaveLength(2);
    for (const url of urls) {
      expect(new URL(url).searchParams.get('sslmode')).toBe('verify-full');
      // What node-postgres does with the URL: TLS on, CA = the RDS roots, nothing relaxed.
      const ssl = parse(url).ssl as { ca?: string; rejectUnauthorized?: boolean };
      expect(ssl.rejectUnauthorized).not.toBe(false);
      expect(ssl.ca).toBe(rdsCaBundle());
      const subjects = rdsCaBundle()
        .match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g)!
        .map((pem) => new X509Certificate(pem).subject);
      expect(subjects).toEqual(
        expect.arrayContaining([
          expect.stringContaining('Amazon RDS eu-west-1 Root CA RSA2048 G1'),
          expect.stringContaining('Amazon RDS us-east-1 Root CA ECC384 G1'),
        ]),
      );
    }
  });

  it('never touches the databases when the stack is deleted (the audit log stays)', async () => {
    const response = await runMigrations(event('Delete'), {
      secrets: new SecretsManagerClient({ region: 'eu-west-1' }),
      migrate: () => Promise.reject(new Error('must not run')),
    });
    expect(response).toEqual({ PhysicalResourceId: 'audit-trail-migrations' });
    expect(secretsMock.calls()).toHaveLength(0);
  });

  it('names the secret that lacks credentials', async () => {
    secretsMock
      .on(GetSecretValueCommand)
      .resolves({ ARN: SOURCE_SECRET, SecretString: '{"username":"u"}' });
    await expect(
      runMigrations(event('Update'), {
        secrets: new SecretsManagerClient({ region: 'eu-west-1' }),
        migrate: async () => ({}) as never,
      }),
    ).rejects.toThrow(`secret ${SOURCE_SECRET} needs username and password`);
  });
});

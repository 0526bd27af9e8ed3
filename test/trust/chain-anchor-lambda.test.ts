import { randomBytes } from 'node:crypto';
import {
  GetObjectCommand,
  ListObjectVersionsCommand,
  PutObjectCommand,
  S3Client,
  type PutObjectCommandInput,
} from '@aws-sdk/client-s3';
import { GetSecretValueCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { sdkStreamMixin } from '@smithy/core/serde';
import { mockClient } from 'aws-sdk-client-mock';
import { Readable } from 'node:stream';
import {
  settingsFromEnvironment,
  writeChainAnchor,
  type ChainAnchorSettings,
} from '../../src/lambda/chain-anchor/handler';
import { setUpLogins } from '../../src/lambda/database-logins/handler';
import type { DatabaseLocation } from '../../src/lambda/shared/database-url';
import { readAnchors, readChainHead } from '../../src/trust/anchors';
import { verifyIntegrity } from '../../src/trust/integrity';
import { withClient } from '../support/databases';
import { cdc, DmsApplier } from '../support/dms-apply';
import { enableKitTriggers } from '../support/kit-triggers';
import { installWithHistory, type Install } from './support';

const s3Mock = mockClient(S3Client);
const secretsMock = mockClient(SecretsManagerClient);

const MASTER_SECRET = 'arn:aws:secretsmanager:eu-west-1:123456789012:secret:master-AbCdEf';
const LOGIN_SECRET = 'arn:aws:secretsmanager:eu-west-1:123456789012:secret:anchor-GhIjKl';
const DMS_SECRET = 'arn:aws:secretsmanager:eu-west-1:123456789012:secret:dms-MnOpQr';
const MIGRATOR_SECRET = 'arn:aws:secretsmanager:eu-west-1:123456789012:secret:migrator-StUvWx';
const BUCKET = 'audit-trail-anchors-1a2b3c';

/** Where the test server is, as a secret-backed location (no TLS on the local server). */
function location(install: Install, secretArn: string, url: string): DatabaseLocation {
  const parsed = new URL(url);
  return {
    SecretArn: secretArn,
    Host: parsed.hostname,
    Port: parsed.port,
    DatabaseName: parsed.pathname.slice(1),
    SslMode: 'disable',
  };
}

/** A secret as Secrets Manager returns it. */
const secret = (arn: string, value: Record<string, unknown>) => ({
  ARN: arn,
  Name: arn.split(':').pop()!,
  SecretString: JSON.stringify(value),
  VersionId: 'v1',
  VersionStages: ['AWSCURRENT'],
});

/**
 * The anchor login, created as the deployment creates it: by the logins custom resource
 * (`Custom::AuditTrailLogins`, run with the master secret) from the anchor's own secret.
 */
async function createAnchorLogin(
  install: Install,
): Promise<{ username: string; password: string }> {
  const admin = new URL(install.targetUrl);
  const password = () => randomBytes(20).toString('hex');
  const logins = {
    [MASTER_SECRET]: {
      username: decodeURIComponent(admin.username),
      password: decodeURIComponent(admin.password),
    },
    [DMS_SECRET]: { username: 'audit_dms', password: password() },
    [MIGRATOR_SECRET]: { username: 'audit_migrator', password: password() },
    [LOGIN_SECRET]: { username: 'audit_anchor', password: password() },
  };
  for (const [arn, value] of Object.entries(logins))
    secretsMock.on(GetSecretValueCommand, { SecretId: arn }).resolves(secret(arn, value));
  await setUpLogins(
    {
      RequestType: 'Create',
      ResourceProperties: {
        Config: JSON.stringify({ auditSchema: 'audit', tables: [{ table: 'items' }] }),
        TargetAdmin: location(install, MASTER_SECRET, install.targetUrl),
        DmsSecretArn: DMS_SECRET,
        MigratorSecretArn: MIGRATOR_SECRET,
        AnchorSecretArn: LOGIN_SECRET,
      },
    },
    { secrets: new SecretsManagerClient({}), log: () => undefined },
  );
  return logins[LOGIN_SECRET];
}

function settings(install: Install): ChainAnchorSettings {
  return {
    bucket: BUCKET,
    prefix: 'chain-heads/',
    auditSchema: 'audit',
    retentionDays: 30,
    mode: 'COMPLIANCE',
    target: location(install, LOGIN_SECRET, install.targetUrl),
  };
}

/** An in-memory versioned bucket behind the S3 mock: puts are kept, lists and gets served. */
function fakeBucket() {
  const versions: { key: string; versionId: string; body: string }[] = [];
  s3Mock.on(PutObjectCommand).callsFake((input: PutObjectCommandInput) => {
    const versionId = `v${versions.length + 1}`;
    versions.push({ key: input.Key!, versionId, body: String(input.Body) });
    return { VersionId: versionId, ETag: '"etag"', ChecksumSHA256: 'c2hh' };
  });
  s3Mock.on(ListObjectVersionsCommand).callsFake((input: { KeyMarker?: string }) => {
    // Two pages: the reader must follow the markers.
    const page = input.KeyMarker === undefined ? versions.slice(0, 1) : versions.slice(1);
    return {
      IsTruncated: input.KeyMarker === undefined && versions.length > 1,
      ...(input.KeyMarker === undefined && {
        NextKeyMarker: versions[0]?.key,
        NextVersionIdMarker: 'v1',
      }),
      Versions: page.map((v) => ({ Key: v.key, VersionId: v.versionId, IsLatest: true })),
    };
  });
  s3Mock.on(GetObjectCommand).callsFake((input: { Key: string; VersionId?: string }) => {
    const found = versions.find((v) => v.key === input.Key && v.versionId === input.VersionId);
    if (!found) throw Object.assign(new Error('NoSuchVersion'), { name: 'NoSuchVersion' });
    return { Body: sdkStreamMixin(Readable.from([Buffer.from(found.body)])) };
  });
  return versions;
}

beforeEach(() => {
  s3Mock.reset();
  secretsMock.reset();
});

describe('chain anchor Lambda', () => {
  it('writes the chain head, locked until the retention date, as its own object', async () => {
    const install = await installWithHistory();
    await createAnchorLogin(install);
    fakeBucket();
    const result = await writeChainAnchor(settings(install), {
      s3: new S3Client({}),
      secrets: new SecretsManagerClient({}),
      log: () => undefined,
    });
    const head = await readChainHead(install.targetUrl, 'audit');
    expect(result.anchor).toMatchObject({ ...head, at: expect.any(String) });
    const puts = s3Mock.commandCalls(PutObjectCommand);
    expect(puts).toHaveLength(1);
    const input = puts[0]!.args[0].input;
    const at = Date.parse(result.anchor!.at);
    expect(input).toEqual({
      Bucket: BUCKET,
      Key: `chain-heads/audit/${result.anchor!.at}-block-${head!.blockNo}.json`,
      Body: `${JSON.stringify(result.anchor)}\n`,
      ContentType: 'application/x-ndjson',
      ChecksumAlgorithm: 'SHA256',
      ObjectLockMode: 'COMPLIANCE',
      ObjectLockRetainUntilDate: new Date(at + 30 * 24 * 60 * 60 * 1000),
    });
    expect(result).toMatchObject({ key: input.Key, versionId: 'v1' });
  });

  it('connects as a read-only login (reader role only): it can read the head and nothing it could tamper with', async () => {
    const install = await installWithHistory();
    const login = await createAnchorLogin(install);
    const url = new URL(install.targetUrl);
    url.username = login.username;
    url.password = login.password;
    await withClient(url.toString(), async (client) => {
      await expect(client.query('SELECT count(*) FROM audit.audit_chain')).resolves.toBeDefined();
      for (const attempt of [
        'DELETE FROM audit.audit_log',
        'DELETE FROM audit.audit_chain',
        `INSERT INTO audit.audit_chain SELECT * FROM audit.audit_chain LIMIT 1`,
        'UPDATE audit.items_staging SET name = name',
        `SELECT audit.prune_audit_log(now())`,
      ])
        await expect(client.query(attempt), attempt).rejects.toThrow(/permission denied|refus/);
    });
    // The migrations stored a SCRAM verifier, never the password: a wrong one is refused.
    url.password = 'wrong';
    await expect(withClient(url.toString(), (client) => client.query('SELECT 1'))).rejects.toThrow(
      /password authentication failed/,
    );
  });

  it('anchors in the bucket prove a later truncation of the chain (verify --anchors s3://)', async () => {
    const install = await installWithHistory();
    await createAnchorLogin(install);
    const bucket = fakeBucket();
    const deps = {
      s3: new S3Client({}),
      secrets: new SecretsManagerClient({}),
      log: () => undefined,
    };
    await writeChainAnchor(settings(install), deps);
    await withClient(install.targetUrl, (client) =>
      new DmsApplier(client, 'audit', 'items', ['id']).insert(
        { id: '3', name: 'three' },
        cdc('INSERT', '2026-11-22 10:00:05', 5),
      ),
    );
    await writeChainAnchor(settings(install), deps);
    expect(bucket).toHaveLength(2);

    const anchors = await readAnchors(`s3://${BUCKET}/chain-heads/`, { s3: new S3Client({}) });
    expect(anchors).toHaveLength(2);
    expect(s3Mock.commandCalls(GetObjectCommand).map((c) => c.args[0].input.VersionId)).toEqual([
      'v1',
      'v2',
    ]);
    const clean = await verifyIntegrity({
      targetUrl: install.targetUrl,
      auditSchema: 'audit',
      anchors,
    });
    expect(clean).toMatchObject({ ok: true, anchorsChecked: 2 });

    // The owner (here a superuser) drops the newest row and its block.
    await withClient(install.targetUrl, (client) =>
      client.query(`ALTER TABLE audit.audit_log DISABLE TRIGGER USER;
        ALTER TABLE audit.audit_chain DISABLE TRIGGER USER;
        DELETE FROM audit.audit_log WHERE id = (SELECT max(id) FROM audit.audit_log);
        DELETE FROM audit.audit_chain WHERE block_no = (SELECT max(block_no) FROM audit.audit_chain);
        ${enableKitTriggers('audit_log')};
        ${enableKitTriggers('audit_chain')}`),
    );
    const truncated = await verifyIntegrity({
      targetUrl: install.targetUrl,
      auditSchema: 'audit',
      anchors,
    });
    expect(truncated.ok).toBe(false);
    expect(truncated.findings.map((f) => f.kind)).toContain('anchor-missing');
  });

  it('writes nothing when the bucket cannot be reached, and says so', async () => {
    const install = await installWithHistory();
    await createAnchorLogin(install);
    s3Mock
      .on(PutObjectCommand)
      .rejects(Object.assign(new Error('Access Denied'), { name: 'AccessDenied' }));
    await expect(
      writeChainAnchor(settings(install), {
        s3: new S3Client({}),
        secrets: new SecretsManagerClient({}),
        log: () => undefined,
      }),
    ).rejects.toThrow('Access Denied');
  });
});

describe('chain anchor Lambda settings', () => {
  const env = {
    ANCHOR_BUCKET: BUCKET,
    ANCHOR_PREFIX: 'chain-heads/',
    AUDIT_SCHEMA: 'audit',
    RETENTION_DAYS: '2555',
    OBJECT_LOCK_MODE: 'COMPLIANCE',
    TARGET_SECRET_ARN: LOGIN_SECRET,
    TARGET_HOST: 'target.cluster-x.eu-west-1.rds.amazonaws.com',
    TARGET_PORT: '5432',
    TARGET_DATABASE: 'audit',
  };

  it('reads the construct environment; TLS is always verify-full (no way to turn it off)', () => {
    const parsed = settingsFromEnvironment(env);
    expect(parsed).toEqual({
      bucket: BUCKET,
      prefix: 'chain-heads/',
      auditSchema: 'audit',
      retentionDays: 2555,
      mode: 'COMPLIANCE',
      target: {
        SecretArn: LOGIN_SECRET,
        Host: 'target.cluster-x.eu-west-1.rds.amazonaws.com',
        Port: '5432',
        DatabaseName: 'audit',
      },
    });
    expect(parsed.target.SslMode).toBeUndefined();
  });

  it('names the bad variable', () => {
    expect(() => settingsFromEnvironment({ ...env, RETENTION_DAYS: 'soon' })).toThrow(
      'RETENTION_DAYS: ',
    );
    expect(() => settingsFromEnvironment({ ...env, OBJECT_LOCK_MODE: 'compliance' })).toThrow(
      'OBJECT_LOCK_MODE: ',
    );
  });
});

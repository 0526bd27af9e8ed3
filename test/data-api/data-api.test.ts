import { randomBytes } from 'node:crypto';
import { mkdtemp, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { ExecuteStatementCommand, RDSDataClient } from '@aws-sdk/client-rds-data';
import { mockClient } from 'aws-sdk-client-mock';
import { sql } from 'kysely';
import { parseConfig, type AuditTrailConfig } from '../../src/config';
import { createDataApiKysely, DataApiValueError } from '../../src/data-api';
import { migrateTarget } from '../../src/migrate/migrate-target';
import { createKysely } from '../../src/postgres/connect';
import { quoteIdent } from '../../src/postgres/identifiers';
import { kitLogins, setUpTargetLogins } from '../../src/trust/logins';
import { emulateDataApi } from '../support/data-api-emulator';
import { createTestDatabase, withClient } from '../support/databases';
import { connectionArgs, runCliInProcess } from '../support/cli';
import { cdc, DmsApplier, fullLoad } from '../support/dms-apply';
import { enableKitTriggers } from '../support/kit-triggers';

const CLUSTER_ARN = 'arn:aws:rds:eu-west-1:123456789012:cluster:audittrail-target';
const SECRET_ARN = 'arn:aws:secretsmanager:eu-west-1:123456789012:secret:audittrail-auditor-AbCdEf';

describe('Data API dialect: the wire shapes', () => {
  const mock = mockClient(RDSDataClient);
  afterEach(() => mock.reset());
  afterAll(() => mock.restore());

  it('sends named parameters with exact result options and reads every type exactly', async () => {
    mock.on(ExecuteStatementCommand).resolves({
      columnMetadata: [
        { name: 'n', label: 'n', typeName: 'numeric', type: 2 },
        { name: 'big', label: 'big', typeName: 'int8', type: -5 },
        { name: 'i', label: 'i', typeName: 'int4', type: 4 },
        { name: 'at', label: 'at', typeName: 'timestamptz', type: 93 },
        { name: 'doc', label: 'doc', typeName: 'jsonb', type: 1111 },
        { name: 'bin', label: 'bin', typeName: 'bytea', type: -2 },
        { name: 'keys', label: 'keys', typeName: '_text', type: 2003 },
        { name: 'gone', label: 'gone', typeName: 'text', type: 12 },
      ],
      records: [
        [
          { stringValue: '123456789012345678901234567890.000100' },
          { stringValue: '9007199254740993' },
          { stringValue: '42' },
          { stringValue: '2026-11-22 22:39:36.123457' },
          { stringValue: '{"big": 123456789012345678901234567890, "price": 1.10}' },
          { blobValue: new Uint8Array([0, 255, 10]) },
          { arrayValue: { stringValues: ['id', 'a"b'] } },
          { isNull: true },
        ],
      ],
      numberOfRecordsUpdated: 0,
    });
    const db = createDataApiKysely<unknown>({
      resourceArn: CLUSTER_ARN,
      secretArn: SECRET_ARN,
      database: 'audit',
    });
    const { rows } =
      await sql`SELECT * FROM t WHERE a = ${'x'} AND b = ANY(${['a"b', 'c\\d']}::text[])
      AND c = ${9007199254740993n} AND d = ${7} AND e = ${1.5} AND f = ${null} AND g = ${Buffer.from([1])}
      AND h = ${true} AND 'HH24:MI' <> ''`.execute(db);
    await db.destroy();

    expect(mock.commandCalls(ExecuteStatementCommand)[0]?.args[0].input).toEqual({
      resourceArn: CLUSTER_ARN,
      secretArn: SECRET_ARN,
      database: 'audit',
      sql: `SELECT * FROM t WHERE a = :p1 AND b = ANY(:p2::text[])
      AND c = :p3 AND d = :p4 AND e = :p5 AND f = :p6 AND g = :p7
      AND h = :p8 AND 'HH24:MI' <> ''`,
      parameters: [
        { name: 'p1', value: { stringValue: 'x' } },
        { name: 'p2', value: { stringValue: '{"a\\"b","c\\\\d"}' } },
        { name: 'p3', typeHint: 'DECIMAL', value: { stringValue: '9007199254740993' } },
        { name: 'p4', value: { longValue: 7 } },
        { name: 'p5', value: { doubleValue: 1.5 } },
        { name: 'p6', value: { isNull: true } },
        { name: 'p7', value: { blobValue: Buffer.from([1]) } },
        { name: 'p8', value: { booleanValue: true } },
      ],
      includeResultMetadata: true,
      resultSetOptions: { decimalReturnType: 'STRING', longReturnType: 'STRING' },
    });
    expect(rows).toEqual([
      {
        n: '123456789012345678901234567890.000100',
        big: '9007199254740993',
        i: 42,
        at: '2026-11-22 22:39:36.123457',
        doc: '{"big": 123456789012345678901234567890, "price": 1.10}',
        bin: Buffer.from([0, 255, 10]),
        keys: ['id', 'a"b'],
        gone: null,
      },
    ]);
  });

  it('refuses an integer the SDK could only hand over rounded', async () => {
    mock.on(ExecuteStatementCommand).resolves({
      columnMetadata: [{ name: 'big', label: 'big', typeName: 'int8' }],
      // What the SDK makes of 9007199254740993 sent as a JSON number.
      records: [[{ longValue: 9007199254740992 }]],
    });
    const db = createDataApiKysely<unknown>({
      resourceArn: CLUSTER_ARN,
      secretArn: SECRET_ARN,
      database: 'audit',
    });
    await expect(sql`SELECT big FROM t`.execute(db)).rejects.toThrow(DataApiValueError);
    await expect(sql`SELECT ${{ a: 1 }}`.execute(db)).rejects.toThrow(/cannot be sent through/);
    await db.destroy();
  });
});

/** A URL of `databaseUrl` as `user` with `password`. */
function as(databaseUrl: string, user: string, password: string): string {
  const url = new URL(databaseUrl);
  url.username = user;
  url.password = password;
  return url.toString();
}

const password = () => randomBytes(18).toString('base64url');

/** Runs the CLI in-process (the mocks live here) and returns what it printed. */
const cli = (...args: string[]) => runCliInProcess(args);

/** The findings `verify --integrity` lists, one per indented `kind: detail` line. */
const findingLines = (stdout: string) =>
  stdout.split('\n').filter((line) => /^ {2}[a-z-]+: /.test(line));

describe('history and verify --integrity over the Data API (emulated on a real PostgreSQL)', () => {
  let config: AuditTrailConfig;
  let configFile: string;
  let targetUrl: string;
  let database: string;
  let emulator: ReturnType<typeof emulateDataApi>;
  let auditorUrl: string;
  let dmsUrl: string;
  const dataApi = ['--target-arn', CLUSTER_ARN, '--secret-arn', SECRET_ARN];

  beforeAll(async () => {
    const sourceUrl = await createTestDatabase('src');
    targetUrl = await createTestDatabase('tgt');
    database = new URL(targetUrl).pathname.slice(1);
    await withClient(sourceUrl, (client) =>
      client.query(
        `CREATE TABLE items (id int PRIMARY KEY, name text, price numeric(40,6), seen timestamptz,
           doc jsonb, blob bytea, big bigint)`,
      ),
    );
    const raw = {
      auditSchema: `a_${randomBytes(4).toString('hex')}`,
      tables: [{ table: 'items' }],
      deployment: { target: { databaseName: database } },
    };
    config = parseConfig(raw);
    configFile = path.join(await mkdtemp(path.join(os.tmpdir(), 'data-api-')), 'config.json');
    await writeFile(configFile, JSON.stringify(raw));

    // As on RDS: a master with CREATEROLE that owns the database, not a superuser.
    const master = `${config.auditSchema}_master`;
    const masterPassword = password();
    await withClient(targetUrl, async (client) => {
      await client.query(
        `CREATE ROLE ${quoteIdent(master)} LOGIN CREATEROLE PASSWORD '${masterPassword}'`,
      );
      await client.query(`ALTER DATABASE ${quoteIdent(database)} OWNER TO ${quoteIdent(master)}`);
      // A database default the auditor's pinned role settings must outrank.
      await client.query(`ALTER DATABASE ${quoteIdent(database)} SET TimeZone = 'Asia/Kolkata'`);
    });
    const passwords = { dms: password(), migrator: password(), auditor: password() };
    const admin = createKysely<unknown>(as(targetUrl, master, masterPassword), { max: 1 });
    const logins = kitLogins(config);
    expect(await setUpTargetLogins(admin, config, passwords)).toEqual([
      `created login ${logins.dms}`,
      `created login ${logins.migrator}`,
      `created login ${logins.auditor}`,
      `role ${logins.auditor}: output settings pinned`,
    ]);
    await admin.destroy();
    await migrateTarget({
      config,
      sourceUrl,
      targetUrl: as(targetUrl, logins.migrator, passwords.migrator),
    });
    dmsUrl = as(targetUrl, logins.dms, passwords.dms);
    await withClient(dmsUrl, async (client) => {
      const dms = new DmsApplier(client, config.auditSchema, 'items', ['id']);
      await dms.insert(
        {
          id: '42',
          name: 'lamp',
          price: '123456789012345678901234567890.123456',
          seen: '2026-11-22 09:00:00.000001+00',
          doc: '{"n": 1.10, "big": 123456789012345678901234567890}',
          blob: '\\x00ff0a',
          big: '9007199254740993',
        },
        fullLoad('2026-11-22 09:00:00.5'),
      );
      await dms.update(
        { id: '42' },
        { price: '17.500000', seen: '2026-11-22 10:00:00.123456+00' },
        cdc('UPDATE', '2026-11-22 10:00:00.123456', 5001),
      );
      await dms.delete({ id: '42' }, cdc('DELETE', '2026-11-22 11:00:00.000001', 5002));
    });
    auditorUrl = as(targetUrl, logins.auditor, passwords.auditor);
    emulator = emulateDataApi({ resourceArn: CLUSTER_ARN, secrets: { [SECRET_ARN]: auditorUrl } });
  });
  afterAll(() => emulator?.close());

  it('history prints exactly what it prints over a direct connection', async () => {
    const direct = await cli(
      'history',
      'public.items',
      '42',
      ...connectionArgs({ configFile, targetUrl }),
      '--json',
    );
    expect(direct.error).toBeUndefined();
    // The reader role's grants suffice for history (row_key_of calls key_of).
    const asAuditor = await cli(
      'history',
      'public.items',
      '42',
      ...connectionArgs({ configFile, targetUrl: auditorUrl }),
      '--json',
    );
    expect(asAuditor.error).toBeUndefined();
    expect(asAuditor.stdout).toBe(direct.stdout);
    const overDataApi = await cli(
      'history',
      'public.items',
      '42',
      '--config',
      configFile,
      ...dataApi,
      '--json',
    );
    expect(overDataApi.error).toBeUndefined();
    expect(overDataApi.stdout).toBe(direct.stdout);
    const versions = JSON.parse(overDataApi.stdout) as { commitTimestamp: string }[];
    expect(versions.map((v) => v.commitTimestamp)).toEqual([
      '2026-11-22T09:00:00.500000Z',
      '2026-11-22T10:00:00.123456Z',
      '2026-11-22T11:00:00.000001Z',
    ]);
    // numeric, bigint, jsonb digits, bytea and µs timestamps, as the source had them.
    expect(overDataApi.stdout).toContain('"price":"123456789012345678901234567890.123456"');
    expect(overDataApi.stdout).toContain('"big":"9007199254740993"');
    expect(overDataApi.stdout).toContain('"n":1.10');
    expect(overDataApi.stdout).toContain('"big":123456789012345678901234567890');
    expect(overDataApi.stdout).toContain('"blob":"\\\\x00ff0a"');
    expect(overDataApi.stdout).toContain('2026-11-22T10:00:00.123456');

    for (const args of [
      ['history', 'public.items', '42', '--as-of', '2026-11-22T10:30:00Z'],
      ['history', 'changes', 'public.items', '--from', '2026-11-22', '--to', '2026-11-23'],
      ['history', 'transaction', '5001'],
      ['history', 'schema', 'public.items'],
    ]) {
      const expected = await cli(...args, ...connectionArgs({ configFile, targetUrl: auditorUrl }));
      expect(expected.error).toBeUndefined();
      const got = await cli(...args, '--config', configFile, ...dataApi, '--database', database);
      expect(got.error).toBeUndefined();
      expect(got.stdout).toBe(expected.stdout);
    }
  });

  it('the auditor login reads in UTC whatever the database sets, and cannot write', async () => {
    const db = createDataApiKysely<unknown>({
      resourceArn: CLUSTER_ARN,
      secretArn: SECRET_ARN,
      database,
    });
    try {
      const { rows } = await sql<{ zone: string; at: string }>`
        SELECT current_setting('TimeZone') AS zone, '2026-11-22 10:00'::timestamptz::text AS at`.execute(
        db,
      );
      expect(rows).toEqual([{ zone: 'UTC', at: '2026-11-22 10:00:00+00' }]);
      await expect(
        sql`DELETE FROM ${sql.id(config.auditSchema, 'audit_log')}`.execute(db),
      ).rejects.toThrow(/permission denied/);
      await expect(
        sql`INSERT INTO ${sql.id(config.auditSchema, 'items_staging')} (id) VALUES (1)`.execute(db),
      ).rejects.toThrow(/permission denied/);
    } finally {
      await db.destroy();
    }
  });

  it('verify --integrity over the Data API passes, then names a row altered behind the chain', async () => {
    const clean = await cli('verify', '--integrity', '--config', configFile, ...dataApi, '--json');
    expect(clean.error).toBeUndefined();
    const report = JSON.parse(clean.stdout) as { ok: boolean; rows: number };
    expect(report).toMatchObject({ ok: true, rows: 3 });

    await withClient(targetUrl, (client) =>
      client.query(
        `ALTER TABLE ${quoteIdent(config.auditSchema)}.audit_log DISABLE TRIGGER USER;
         UPDATE ${quoteIdent(config.auditSchema)}.audit_log SET new_row = jsonb_set(new_row, '{name}', '"forged"')
          WHERE operation = 'SNAPSHOT';
         ${enableKitTriggers('audit_log', config.auditSchema)};`,
      ),
    );
    const direct = await cli(
      'verify',
      '--integrity',
      ...connectionArgs({ configFile, targetUrl: auditorUrl }),
    );
    const tampered = await cli('verify', '--integrity', '--config', configFile, ...dataApi);
    expect(direct.error?.message).toMatch(/integrity check failed/);
    expect(tampered.stdout).toBe(direct.stdout);
    expect(tampered.stdout).toMatch(/altered: audit row \d+ was altered after block/);
    expect(tampered.error?.message).toMatch(/integrity check failed/);
  });

  it('verify --integrity over the Data API reads a 1,200-row block in pages, and names a row altered inside it', async () => {
    // One full-load statement of 1,200 rows: one block whose ids and hashes (~100 KB) no
    // single Data API row could carry. (After the test above: its altered row stays.)
    const staging = `${quoteIdent(config.auditSchema)}.${quoteIdent('items_staging')}`;
    await withClient(dmsUrl, (client) =>
      client.query(
        `INSERT INTO ${staging} (id, name, ar_h_operation, ar_h_commit_timestamp, ar_h_change_seq,
           ar_h_transaction_id, ar_h_stream_position, ar_h_indicator)
         SELECT g, 'bulk ' || g, 'INSERT', '2026-11-22 12:00:00.000001', '', '', '', 'I'
           FROM generate_series(1000, 2199) AS g`,
      ),
    );
    const both = async () => ({
      direct: await cli(
        'verify',
        '--integrity',
        ...connectionArgs({ configFile, targetUrl: auditorUrl }),
      ),
      viaApi: await cli('verify', '--integrity', '--config', configFile, ...dataApi),
    });
    let { direct, viaApi } = await both();
    expect(viaApi.stdout).toBe(direct.stdout);
    // Only the row the test above altered: the big block itself verifies.
    expect(findingLines(viaApi.stdout)).toHaveLength(1);
    expect(viaApi.stdout).toMatch(/1203 rows/);

    const log = `${quoteIdent(config.auditSchema)}.audit_log`;
    await withClient(targetUrl, (client) =>
      client.query(
        `ALTER TABLE ${log} DISABLE TRIGGER USER;
         UPDATE ${log} SET new_row = jsonb_set(new_row, '{name}', '"forged"') WHERE row_key = '{"id": 2100}';
         ${enableKitTriggers('audit_log', config.auditSchema)};`,
      ),
    );
    ({ direct, viaApi } = await both());
    expect(viaApi.stdout).toBe(direct.stdout);
    expect(findingLines(viaApi.stdout)).toHaveLength(2);
    const altered = await withClient(targetUrl, async (client) => {
      const { rows } = await client.query<{ id: string }>(
        `SELECT id::text FROM ${log} WHERE row_key = '{"id": 2100}'`,
      );
      return rows[0]!.id;
    });
    expect(viaApi.stdout).toContain(`altered: audit row ${altered} was altered after block`);
    expect(viaApi.error?.message).toMatch(/integrity check failed/);
  });

  it('refuses incomplete or conflicting target options with a usage error', async () => {
    const cases: [string[], RegExp][] = [
      [['history', 'public.items', '42', '--target-arn', CLUSTER_ARN], /needs --secret-arn/],
      [
        ['history', 'public.items', '42', '--secret-arn', SECRET_ARN, '--target-url', targetUrl],
        /needs --target-arn/,
      ],
      [['history', 'public.items', '42', ...dataApi, '--target-url', targetUrl], /not both/],
      [
        ['history', 'public.items', '42', '--target-arn', 'my-cluster', '--secret-arn', SECRET_ARN],
        /Aurora cluster ARN/,
      ],
      [['verify', ...dataApi], /works with --integrity/],
    ];
    for (const [args, message] of cases) {
      const { error } = await cli(...args, '--config', configFile);
      expect(error?.message).toMatch(message);
      expect((error as { exitCode?: number }).exitCode).toBe(2);
    }
  });
});

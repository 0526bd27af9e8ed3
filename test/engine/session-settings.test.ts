import pg from 'pg';
import { connectText, ENGINE_TARGET_SETTINGS } from '../../src/engine/text-client';
import { pinnedClientConfig } from '../../src/postgres/connect';
import { verifyAuditTrail } from '../../src/verify';
import { quoteIdent } from '../../src/postgres/identifiers';
import { createTestDatabase } from '../support/databases';
import { auditRows, createPipeline, type Pipeline } from './helpers';

const SOURCE_DDL = `
  CREATE TABLE public.vals (
    id int PRIMARY KEY,
    d date,
    ts timestamp(6),
    tstz timestamptz(6),
    iv interval,
    f8 float8,
    f4 float4,
    b bytea
  );
  INSERT INTO public.vals VALUES
    (1, '2024-02-01', '2024-02-13 10:11:12.123456', '2024-02-13 10:11:12.123456+00',
     '1 year 2 mons 3 days 04:05:06.789', 0.1::float8 + 0.2::float8, 1.1, '\\x00ff10');`;

/** Settings a DBA may well have on a database; none of them may reach a value. */
const HOSTILE_SETTINGS = [
  `DateStyle = 'SQL, DMY'`,
  'extra_float_digits = 0',
  `TimeZone = 'Pacific/Chatham'`,
  'IntervalStyle = sql_standard',
  'bytea_output = escape',
];

const TEXT_OF = `SELECT id::text, d::text, ts::text, tstz::text, iv::text, f8::text, f4::text, b::text`;

/** Text of every row under fixed settings, on either side. */
async function rowsAsText(run: Pipeline['source'], table: string): Promise<unknown[]> {
  const { rows } = await run(
    `SET DateStyle = ISO; SET IntervalStyle = postgres; SET extra_float_digits = 3;
     SET bytea_output = hex; SET TimeZone = UTC; ${TEXT_OF} FROM ${table} ORDER BY id`,
  );
  return rows;
}

describe('engine: database and role settings never change a value', () => {
  let p: Pipeline;
  const targetDatabase = () =>
    quoteIdent(decodeURIComponent(new URL(p.targetUrl).pathname.slice(1)));

  beforeAll(async () => {
    p = await createPipeline(SOURCE_DDL, { tables: [{ table: 'vals' }] });
    // On the source only: a target with other settings must read the same values back.
    const database = decodeURIComponent(new URL(p.sourceUrl).pathname.slice(1));
    for (const setting of HOSTILE_SETTINGS)
      await p.source(`ALTER DATABASE "${database}" SET ${setting}`);
    // In the target database only: the role is the shared test server's superuser, and
    // every test file running beside this one would get the zone in its new sessions
    // (a CI run read 0.1.0's commit times as -03:30 in one session, +00 in the next).
    await p.target(
      `ALTER ROLE CURRENT_USER IN DATABASE ${targetDatabase()} SET TimeZone = 'America/St_Johns'`,
    );
    const { rows } = await p.target('SHOW TimeZone');
    expect(rows[0].TimeZone).toBe('America/St_Johns'); // the target's sessions get it
  });
  afterAll(async () => {
    if (p) await p.target(`ALTER ROLE CURRENT_USER IN DATABASE ${targetDatabase()} RESET TimeZone`);
    await p?.dispose();
  });

  it('copies (initial load) and streams values exactly under DMY dates, 0 float digits, a non-UTC zone, sql_standard intervals and escaped bytea', async () => {
    await p.replicate();
    await p.source(`INSERT INTO public.vals VALUES
      (2, '2024-02-13', '2024-12-01 00:00:00.000001', '2024-12-01 23:59:59.999999+00',
       '-1 days +02:03:04.5', 1e-300::float8 * 3, 3.4028235e38, '\\x5c00')`);
    await p.source(`UPDATE public.vals SET f8 = f8 / 3, d = '2024-01-13' WHERE id = 1`);
    await p.replicate();
    expect(await rowsAsText(p.target, 'audit.vals_staging')).toEqual(
      await rowsAsText(p.source, 'public.vals'),
    );
    const versions = await auditRows(p, 'vals');
    expect(versions.map((v) => [v.operation, (v.new_row as { d: string }).d])).toEqual([
      ['SNAPSHOT', '2024-02-01'],
      ['INSERT', '2024-02-13'],
      ['UPDATE', '2024-01-13'],
    ]);
    const report = await verifyAuditTrail({
      config: p.config,
      sourceUrl: p.sourceUrl,
      targetUrl: p.targetUrl,
    });
    expect(report.mismatches).toEqual([]);
    expect(report.ok).toBe(true);
  });
});

describe('pinnedClientConfig', () => {
  it('keeps options given in the URL, and the pinned settings win over them', async () => {
    const url = new URL(await createTestDatabase('pinned'));
    url.searchParams.set('options', '-c statement_timeout=4321 -c DateStyle=German');
    const client = new pg.Client(pinnedClientConfig(url.toString(), 'audit-trail-test'));
    await client.connect();
    try {
      const { rows } = await client.query(
        `SELECT current_setting('statement_timeout') AS timeout, current_setting('DateStyle') AS style,
                current_setting('application_name') AS app`,
      );
      expect(rows[0]).toEqual({ timeout: '4321ms', style: 'ISO, MDY', app: 'audit-trail-test' });
    } finally {
      await client.end();
    }
  });
});

describe("the engine's target connection", () => {
  it('applies at READ COMMITTED whatever the database default says (a value with a space survives the startup packet)', async () => {
    const url = await createTestDatabase('isolation');
    const database = new URL(url).pathname.slice(1);
    const admin = new pg.Client({ connectionString: url });
    await admin.connect();
    try {
      await admin.query(
        `ALTER DATABASE "${database}" SET default_transaction_isolation = 'repeatable read'`,
      );
    } finally {
      await admin.end();
    }
    const isolation = async (settings?: Readonly<Record<string, string>>) => {
      const client = await connectText(url, 'audit-trail-test', 'target', settings);
      try {
        const { rows } = await client.query(
          `SELECT current_setting('transaction_isolation') AS level`,
        );
        return rows[0].level as string;
      } finally {
        await client.end();
      }
    };
    expect(await isolation()).toBe('repeatable read'); // what any other session gets
    expect(await isolation(ENGINE_TARGET_SETTINGS)).toBe('read committed');
  });
});

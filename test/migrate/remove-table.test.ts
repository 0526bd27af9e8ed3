import { readFileSync } from 'node:fs';
import { mkdtemp, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Kysely, PostgresDialect } from 'kysely';
import pg from 'pg';
import { parseConfig, type AuditTrailConfigInput } from '../../src/config';
import { createHistory } from '../../src/history';
import { migrateTarget, type MigrateTargetOptions } from '../../src/migrate/migrate-target';
import { runCli } from '../support/cli';
import { cdc, DmsApplier } from '../support/dms-apply';
import { createTestDatabase, withClient } from '../support/databases';

/** Removing a table from the config: capture stops, staging and history stay. */

const SOURCE_DDL = `
  CREATE TABLE items (id int PRIMARY KEY, name text, price numeric(10,2));
  CREATE TABLE shops (code varchar(8) PRIMARY KEY, city text);`;

interface Urls {
  readonly sourceUrl: string;
  readonly targetUrl: string;
}

async function databases(targetSql?: string): Promise<Urls> {
  const sourceUrl = await createTestDatabase('src');
  const targetUrl = await createTestDatabase('tgt');
  await withClient(sourceUrl, (client) => client.query(SOURCE_DDL));
  if (targetSql) await withClient(targetUrl, (client) => client.query(targetSql));
  return { sourceUrl, targetUrl };
}

const migrate = (
  input: AuditTrailConfigInput,
  urls: Urls,
  options: Partial<MigrateTargetOptions> = {},
) => migrateTarget({ config: parseConfig(input), ...urls, ...options });

async function stagingExists(url: string, table: string): Promise<boolean> {
  return withClient(url, async (client) => {
    const { rows } = await client.query<{ found: boolean }>(
      'SELECT to_regclass($1) IS NOT NULL AS found',
      [`audit.${table}_staging`],
    );
    return rows[0]?.found === true;
  });
}

async function shopHistory(url: string, code: string) {
  const db = new Kysely<unknown>({
    dialect: new PostgresDialect({ pool: new pg.Pool({ connectionString: url, max: 1 }) }),
  });
  try {
    const history = createHistory(db);
    return {
      byArray: await history.history('public.shops', [code]),
      byObject: await history.history('public.shops', { code }),
      latest: await history.latest('public.shops'),
    };
  } finally {
    await db.destroy();
  }
}

async function recordShopChanges(url: string): Promise<void> {
  await withClient(url, async (client) => {
    const dms = new DmsApplier(client, 'audit', 'shops', ['code']);
    await dms.insert({ code: 'B1', city: 'Bonn' }, cdc('INSERT', '2026-11-22 10:00:00', 1));
    await dms.update({ code: 'B1' }, { city: 'Berlin' }, cdc('UPDATE', '2026-11-22 10:00:01', 2));
  });
}

const both = { tables: [{ table: 'items' }, { table: 'shops' }] };
const itemsOnly = { tables: [{ table: 'items' }] };

describe('removing a table from the config', () => {
  it('stops capturing it and keeps its staging table and history', async () => {
    const urls = await databases();
    await migrate(both, urls);
    await recordShopChanges(urls.targetUrl);

    const report = await migrate(itemsOnly, urls);
    expect(report.removedTables).toEqual(['public.shops']);
    expect(report.tables.map((table) => table.table)).toEqual(['items']);
    expect(await stagingExists(urls.targetUrl, 'shops')).toBe(true);
    const history = await shopHistory(urls.targetUrl, 'B1');
    expect(history.byArray.map((v) => [v.operation, v.newRow])).toEqual([
      ['INSERT', { code: 'B1', city: 'Bonn' }],
      ['UPDATE', { code: 'B1', city: 'Berlin' }],
    ]);
    expect(history.byObject).toEqual(history.byArray);

    // Said once, then a no-op.
    expect((await migrate(itemsOnly, urls)).removedTables).toEqual([]);
  });

  it('works on an install made by release 0.1.0 (per-table migrations recorded)', async () => {
    const fixture = readFileSync(path.join(__dirname, 'fixtures', 'target-0.1.0.sql'), 'utf8');
    const urls = await databases(fixture);
    // 0.1.0 installed items; the config now lists shops only.
    const report = await migrate({ tables: [{ table: 'shops' }] }, urls);
    expect(report.removedTables).toEqual(['public.items']);
    expect(report.createdStagingTables).toEqual(['public.shops']);
    expect(await stagingExists(urls.targetUrl, 'items')).toBe(true);
  });

  it('--drop-staging drops the staging table of removed tables only; history stays', async () => {
    const urls = await databases();
    await migrate(both, urls);
    await recordShopChanges(urls.targetUrl);
    const before = await shopHistory(urls.targetUrl, 'B1');

    // A configured table's staging is never dropped, even with the option.
    const stillConfigured = await migrate(both, urls, { dropStaging: true });
    expect(stillConfigured.droppedStagingTables).toEqual([]);

    const report = await migrate(itemsOnly, urls, { dropStaging: true });
    expect(report.droppedStagingTables).toEqual(['public.shops']);
    expect(await stagingExists(urls.targetUrl, 'shops')).toBe(false);
    expect(await stagingExists(urls.targetUrl, 'items')).toBe(true);
    expect(await shopHistory(urls.targetUrl, 'B1')).toEqual(before);

    // Added back: a new staging table, history continues under the same key.
    const readded = await migrate(both, urls);
    expect(readded.createdStagingTables).toEqual(['public.shops']);
    await withClient(urls.targetUrl, async (client) => {
      const dms = new DmsApplier(client, 'audit', 'shops', ['code']);
      await dms.insert({ code: 'B1', city: 'Bremen' }, cdc('INSERT', '2026-11-23 10:00:00', 3));
    });
    const after = await shopHistory(urls.targetUrl, 'B1');
    expect(after.byArray.map((v) => v.operation)).toEqual(['INSERT', 'UPDATE', 'INSERT']);
  });

  it('refuses to add back a table whose kept staging holds rows no engine loaded (DMS cannot reload into it)', async () => {
    const urls = await databases();
    await migrate(both, urls);
    await recordShopChanges(urls.targetUrl);
    await migrate(itemsOnly, urls);
    const before = await shopHistory(urls.targetUrl, 'B1');

    // #17 item 19: DMS's reload (DO_NOTHING) would fail on B1's key in the kept staging.
    await expect(migrate(both, urls)).rejects.toThrow(
      /public\.shops is added back after its removal, and its kept staging table audit\.shops_staging holds rows: a DMS reload would fail/,
    );
    // Nothing of the refused run is kept: still removed, staging and history as they were.
    await expect(migrate(both, urls)).rejects.toThrow(/--drop-staging/);
    expect(await shopHistory(urls.targetUrl, 'B1')).toEqual(before);

    // The remedy, in the run that adds it back: staging is created anew for DMS's load.
    const report = await migrate(both, urls, { dropStaging: true });
    expect(report).toMatchObject({
      droppedStagingTables: ['public.shops'],
      readdedTables: ['public.shops'],
      createdStagingTables: ['public.shops'],
    });
    expect((await migrate(both, urls)).readdedTables).toEqual([]);
  });

  it('CLI: migrate --json lists a table added back; a refused one exits 1 naming the remedy', async () => {
    const urls = await databases();
    const configFile = path.join(await mkdtemp(path.join(os.tmpdir(), 'readd-')), 'config.json');
    const cli = async (config: AuditTrailConfigInput, ...extra: string[]) => {
      await writeFile(configFile, JSON.stringify(config));
      return runCli([
        ...['migrate', '--config', configFile, '--source-url', urls.sourceUrl],
        ...['--target-url', urls.targetUrl, '--json', ...extra],
      ]);
    };
    await migrate(both, urls);
    await migrate(itemsOnly, urls);
    // Empty kept staging: nothing to collide with, DMS loads it as it is.
    const readded = await cli(both);
    expect(readded.code).toBe(0);
    expect(JSON.parse(readded.stdout)).toMatchObject({
      upToDate: false,
      readdedTables: ['public.shops'],
    });

    await recordShopChanges(urls.targetUrl);
    await migrate(itemsOnly, urls);
    const refused = await cli(both);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(/public\.shops is added back .* run migrate --drop-staging/);
  });

  it("refuses to let another schema's table of the same name take over a kept staging table", async () => {
    const urls = await databases();
    await withClient(urls.sourceUrl, (client) =>
      client.query('CREATE SCHEMA other; CREATE TABLE other.shops (n int PRIMARY KEY)'),
    );
    await migrate(both, urls);
    const moved = { tables: [{ table: 'items' }, { schema: 'other', table: 'shops' }] };
    await expect(migrate(moved, urls)).rejects.toThrow(
      /other\.shops would use the staging table "audit"\."shops_staging", which still holds public\.shops \(removed from the config\); run migrate --drop-staging/,
    );
    const report = await migrate(moved, urls, { dropStaging: true });
    expect(report).toMatchObject({
      removedTables: ['public.shops'],
      droppedStagingTables: ['public.shops'],
      createdStagingTables: ['other.shops'],
    });
  });
});

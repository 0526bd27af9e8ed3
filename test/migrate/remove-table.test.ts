import { readFileSync } from 'node:fs';
import { mkdtemp, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Kysely, PostgresDialect } from 'kysely';
import pg from 'pg';
import { parseConfig, type AuditTrailConfigInput } from '../../src/config';
import { createHistory } from '../../src/history';
import { finishReload } from '../../src/staging/reload-baseline';
import { verifyAuditTrail } from '../../src/verify';
import { verifyIntegrity } from '../../src/trust/integrity';
import { migrateTarget, type MigrateTargetOptions } from '../../src/migrate/migrate-target';
import { runCli } from '../support/cli';
import { cdc, DmsApplier, fullLoad } from '../support/dms-apply';
import { createTestDatabase, withClient } from '../support/databases';

/** Removing a table from the config: capture stops, staging and history stay. */

const SOURCE_DDL = `
  CREATE TABLE items (id int PRIMARY KEY, name text, price numeric(10,2));
  CREATE TABLE shops (code varchar(8) PRIMARY KEY, city text);
  CREATE TABLE docs (id int PRIMARY KEY, jb jsonb);`;

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

async function stagingRows(url: string): Promise<number> {
  return withClient(url, async (client) => {
    const { rows } = await client.query<{ n: number }>(
      'SELECT count(*)::int AS n FROM audit.shops_staging',
    );
    return rows[0]!.n;
  });
}

async function pendingBaseline(url: string): Promise<number> {
  return withClient(url, async (client) => {
    const { rows } = await client.query<{ n: number }>(
      'SELECT count(*)::int AS n FROM audit.reload_baseline',
    );
    return rows[0]!.n;
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
    // DMS applies the table's changes only after its load, which found no B1 (the
    // source had deleted it): its first change ends the reload, B1's DELETE first.
    const after = await shopHistory(urls.targetUrl, 'B1');
    expect(after.byArray.map((v) => v.operation)).toEqual(['INSERT', 'UPDATE', 'DELETE', 'INSERT']);
    expect(after.byArray[2]!.commitTimestamp).toEqual(after.byArray[3]!.commitTimestamp);
  });

  /**
   * Shops B1 (Bonn → Berlin) and H1 (Hamburg) captured; while the table is out of the
   * config B1 stays, H1 is deleted and K1 is inserted on the source. The reload (DMS
   * full-load rows, empty change sequence) copies B1 and K1.
   */
  async function removeWhileShopsChange(urls: Urls, dropStaging: boolean): Promise<void> {
    await migrate(both, urls);
    await recordShopChanges(urls.targetUrl);
    await withClient(urls.targetUrl, (client) =>
      new DmsApplier(client, 'audit', 'shops', ['code']).insert(
        { code: 'H1', city: 'Hamburg' },
        cdc('INSERT', '2026-11-22 10:00:02', 3),
      ),
    );
    await migrate(itemsOnly, urls, { dropStaging });
  }

  async function dmsReload(url: string): Promise<void> {
    await withClient(url, async (client) => {
      const dms = new DmsApplier(client, 'audit', 'shops', ['code']);
      await dms.insert({ code: 'B1', city: 'Berlin' }, fullLoad('2026-11-24 09:00:00'));
      await dms.insert({ code: 'K1', city: 'Köln' }, fullLoad('2026-11-24 09:00:00'));
    });
  }

  const operations = async (url: string, code: string) =>
    (await shopHistory(url, code)).byArray.map((v) => [v.operation, v.newRow ?? v.oldRow]);

  for (const dropStaging of [false, true])
    it(`DMS reload of a table added back (staging ${dropStaging ? 'dropped' : 'kept'}): only what changed is a version, a row gone a DELETE`, async () => {
      const urls = await databases();
      await removeWhileShopsChange(urls, dropStaging);

      // Before #17 item 19's fix: the kept staging was refused; a new one recorded B1
      // again as a SNAPSHOT and never ended H1, which history showed live for ever.
      const report = await migrate(both, urls);
      expect(report.readdedTables).toEqual(['public.shops']);
      expect(await stagingRows(urls.targetUrl)).toBe(0); // DMS loads as into a new table
      await dmsReload(urls.targetUrl);
      // The load is not known complete yet: H1 has no DELETE.
      expect(await operations(urls.targetUrl, 'H1')).toEqual([
        ['INSERT', { code: 'H1', city: 'Hamburg' }],
      ]);
      // DMS applies a table's changes only after its full load: its first change ends it.
      await withClient(urls.targetUrl, (client) =>
        new DmsApplier(client, 'audit', 'shops', ['code']).update(
          { code: 'K1' },
          { city: 'Kiel' },
          cdc('UPDATE', '2026-11-24 09:05:00', 4),
        ),
      );
      expect(await operations(urls.targetUrl, 'B1')).toEqual([
        ['INSERT', { code: 'B1', city: 'Bonn' }],
        ['UPDATE', { code: 'B1', city: 'Berlin' }],
      ]);
      expect(await operations(urls.targetUrl, 'H1')).toEqual([
        ['INSERT', { code: 'H1', city: 'Hamburg' }],
        ['DELETE', { code: 'H1', city: 'Hamburg' }],
      ]);
      const h1 = (await shopHistory(urls.targetUrl, 'H1')).byArray[1]!;
      expect(h1.commitTimestamp).toMatch(/^2026-11-24T09:00:00/); // the load's copy time
      expect(await operations(urls.targetUrl, 'K1')).toEqual([
        ['SNAPSHOT', { code: 'K1', city: 'Köln' }],
        ['UPDATE', { code: 'K1', city: 'Kiel' }],
      ]);
      expect(await pendingBaseline(urls.targetUrl)).toBe(0);
      // Said once; a later run is a no-op and changes no history.
      expect((await migrate(both, urls)).readdedTables).toEqual([]);
      expect(await operations(urls.targetUrl, 'H1')).toHaveLength(2);
    });

  // jsonb's JSON null literal and SQL NULL are both JSON null in a row document: the
  // baseline keeps which keys held the literal, and the reload compares it.
  it('a reload holds the JSON null literal against the baseline: the same literal is no version, NULL <-> literal a SNAPSHOT', async () => {
    const urls = await databases();
    const withDocs = { tables: [{ table: 'items' }, { table: 'docs' }] };
    await migrate(withDocs, urls);
    const applier = (client: pg.Client) => new DmsApplier(client, 'audit', 'docs', ['id']);
    await withClient(urls.targetUrl, async (client) => {
      for (const [id, jb] of [
        ['1', 'null'],
        ['2', null],
        ['3', 'null'],
        ['4', 'null'],
      ] as const)
        await applier(client).insert(
          { id, jb },
          cdc('INSERT', `2026-11-22 10:00:0${id}`, Number(id)),
        );
    });
    await migrate(itemsOnly, urls);
    expect((await migrate(withDocs, urls)).readdedTables).toEqual(['public.docs']);
    // The load copies 1 as it was, 2 now the literal, 3 now NULL; 4 is gone. The first
    // change after the load ends the reload.
    await withClient(urls.targetUrl, async (client) => {
      for (const [id, jb] of [
        ['1', 'null'],
        ['2', 'null'],
        ['3', null],
      ] as const)
        await applier(client).insert({ id, jb }, fullLoad('2026-11-24 09:00:00'));
      await applier(client).update(
        { id: '1' },
        { jb: null },
        cdc('UPDATE', '2026-11-24 09:05:00', 5),
      );
    });
    const { rows } = await withClient(urls.targetUrl, (client) =>
      client.query(
        `SELECT row_key ->> 'id' AS key, operation, old_json_nulls, new_json_nulls, changed_columns
           FROM audit.audit_log AS a WHERE source_table = 'docs' ORDER BY a.id`,
      ),
    );
    expect(rows.map((r) => Object.values(r))).toEqual([
      ['1', 'INSERT', null, ['jb'], null],
      ['2', 'INSERT', null, null, null],
      ['3', 'INSERT', null, ['jb'], null],
      ['4', 'INSERT', null, ['jb'], null],
      ['2', 'SNAPSHOT', null, ['jb'], null],
      ['3', 'SNAPSHOT', null, null, null],
      ['4', 'DELETE', ['jb'], null, null],
      ['1', 'UPDATE', ['jb'], null, ['jb']],
    ]);
    expect(
      await verifyIntegrity({ targetUrl: urls.targetUrl, auditSchema: 'audit' }),
    ).toMatchObject({
      ok: true,
    });
  });

  it('a reload with no later change: verify reports the rows gone until `audit-trail reload finish` ends it, once', async () => {
    const urls = await databases();
    await removeWhileShopsChange(urls, false);
    // The source as the reload finds it: B1 unchanged, H1 gone, K1 new.
    await withClient(urls.sourceUrl, (client) =>
      client.query(`INSERT INTO shops VALUES ('B1', 'Berlin'), ('K1', 'Köln')`),
    );
    await migrate(both, urls);
    await dmsReload(urls.targetUrl);
    const verify = () => verifyAuditTrail({ config: parseConfig(both), ...urls });
    // H1 still reads as live: not silent.
    const pending = await verify();
    expect(pending.ok).toBe(false);
    expect(pending.mismatches.map((m) => [m.table, m.key])).toContainEqual([
      'public.shops',
      { code: 'H1' },
    ]);

    const configFile = path.join(await mkdtemp(path.join(os.tmpdir(), 'reload-')), 'config.json');
    await writeFile(configFile, JSON.stringify(both));
    const finish = (table: string) =>
      runCli([
        ...['reload', 'finish', table, '--config', configFile],
        ...['--target-url', urls.targetUrl, '--json'],
      ]);
    const first = await finish('public.shops');
    expect(first.code).toBe(0);
    expect(JSON.parse(first.stdout)).toEqual({ table: 'public.shops', deletedVersions: 1 });
    expect((await finish('public.nope')).code).toBe(2);
    const again = await withClient(urls.targetUrl, (client) =>
      finishReload(client, 'audit', { schema: 'public', table: 'shops' }),
    );
    expect(again).toBe(0);

    expect(await operations(urls.targetUrl, 'H1')).toEqual([
      ['INSERT', { code: 'H1', city: 'Hamburg' }],
      ['DELETE', { code: 'H1', city: 'Hamburg' }],
    ]);
    expect((await operations(urls.targetUrl, 'B1')).map(([op]) => op)).toEqual([
      'INSERT',
      'UPDATE',
    ]);
    expect((await verify()).mismatches).toEqual([]);
  }, 180_000);

  /** `audit-trail reload finish TABLE [--all-rows-gone]` through the CLI, as JSON. */
  async function reloadFinish(urls: Urls, ...extra: string[]) {
    const configFile = path.join(await mkdtemp(path.join(os.tmpdir(), 'reload-')), 'config.json');
    await writeFile(configFile, JSON.stringify(both));
    return runCli([
      ...['reload', 'finish', 'public.shops', '--config', configFile],
      ...['--target-url', urls.targetUrl, '--json', ...extra],
    ]);
  }

  // A DMS task that runs CDC only (or a table the task never loaded again) applies changes
  // to the emptied staging table with no full load before them. Before the fix, the
  // first of them ended the reload: a DELETE for every key the history held live, rows
  // the source still had.
  for (const dropStaging of [false, true])
    it(`a reload that copied no row is not ended by a change (staging ${dropStaging ? 'dropped' : 'kept'}): no DELETE that did not happen, the changes recorded, verify says it is pending`, async () => {
      const urls = await databases();
      await removeWhileShopsChange(urls, dropStaging);
      // The source now: B1 as it was (Berlin), H1 deleted while out and inserted again
      // (Hannover) after the table came back, N1 new.
      await withClient(urls.sourceUrl, (client) =>
        client.query(
          `INSERT INTO shops VALUES ('B1', 'Berlin'), ('H1', 'Hannover'), ('N1', 'Nürnberg')`,
        ),
      );
      await migrate(both, urls);
      await withClient(urls.targetUrl, async (client) => {
        const dms = new DmsApplier(client, 'audit', 'shops', ['code']);
        await dms.insert({ code: 'N1', city: 'Nürnberg' }, cdc('INSERT', '2026-11-24 09:05:00', 5));
        await dms.insert({ code: 'H1', city: 'Hannover' }, cdc('INSERT', '2026-11-24 09:06:00', 6));
      });
      expect(await operations(urls.targetUrl, 'B1')).toEqual([
        ['INSERT', { code: 'B1', city: 'Bonn' }],
        ['UPDATE', { code: 'B1', city: 'Berlin' }],
      ]);
      expect(await operations(urls.targetUrl, 'N1')).toEqual([
        ['INSERT', { code: 'N1', city: 'Nürnberg' }],
      ]);
      // An INSERT of a key the history holds live: the source deleted it first, by then.
      const h1 = (await shopHistory(urls.targetUrl, 'H1')).byArray;
      expect(h1.map((v) => [v.operation, v.newRow ?? v.oldRow])).toEqual([
        ['INSERT', { code: 'H1', city: 'Hamburg' }],
        ['DELETE', { code: 'H1', city: 'Hamburg' }],
        ['INSERT', { code: 'H1', city: 'Hannover' }],
      ]);
      expect(h1[1]!.commitTimestamp).toEqual(h1[2]!.commitTimestamp);
      // B1 is still held against the load that never came: verify says so, with the remedy.
      const pending = await verifyAuditTrail({ config: parseConfig(both), ...urls });
      expect(pending.ok).toBe(false);
      expect(pending.tables.find((t) => t.table === 'public.shops')?.reloadPending).toEqual({
        baselineKeys: 1,
        copiedRows: 0,
      });
      // The operator cannot end it by mistake: the load copied nothing.
      const refused = await reloadFinish(urls);
      expect(refused.code).toBe(1);
      expect(refused.stderr).toMatch(/copied no row/);
      expect(refused.stderr).toMatch(/--all-rows-gone/);
      expect(await operations(urls.targetUrl, 'B1')).toHaveLength(2);

      // The remedy: reload it (out of the config and back, then a DMS full load).
      await migrate(itemsOnly, urls);
      await migrate(both, urls);
      await withClient(urls.targetUrl, async (client) => {
        const dms = new DmsApplier(client, 'audit', 'shops', ['code']);
        for (const [code, city] of [
          ['B1', 'Berlin'],
          ['H1', 'Hannover'],
          ['N1', 'Nürnberg'],
        ])
          await dms.insert({ code: code!, city: city! }, fullLoad('2026-11-25 09:00:00'));
      });
      const finished = await reloadFinish(urls);
      expect(finished.code).toBe(0);
      expect(JSON.parse(finished.stdout)).toEqual({ table: 'public.shops', deletedVersions: 0 });
      expect(await operations(urls.targetUrl, 'B1')).toHaveLength(2);
      expect(await operations(urls.targetUrl, 'H1')).toHaveLength(3);
      expect(await verifyAuditTrail({ config: parseConfig(both), ...urls })).toMatchObject({
        ok: true,
        mismatches: [],
      });
      // The DELETEs recorded by the changes are in the hash chain.
      expect(
        await verifyIntegrity({ targetUrl: urls.targetUrl, auditSchema: 'audit' }),
      ).toMatchObject({
        ok: true,
      });
    }, 180_000);

  it('a table emptied while out: `reload finish --all-rows-gone` records a DELETE for each row', async () => {
    const urls = await databases();
    await removeWhileShopsChange(urls, false);
    await migrate(both, urls);
    // DMS loaded the empty table: nothing copied, nothing to hold against the baseline.
    const verify = () => verifyAuditTrail({ config: parseConfig(both), ...urls });
    expect((await verify()).tables.find((t) => t.table === 'public.shops')?.reloadPending).toEqual({
      baselineKeys: 2,
      copiedRows: 0,
    });
    expect((await reloadFinish(urls)).code).toBe(1);
    const finished = await reloadFinish(urls, '--all-rows-gone');
    expect(finished.code).toBe(0);
    expect(JSON.parse(finished.stdout)).toEqual({ table: 'public.shops', deletedVersions: 2 });
    expect((await operations(urls.targetUrl, 'B1')).map(([op]) => op)).toEqual([
      'INSERT',
      'UPDATE',
      'DELETE',
    ]);
    expect(await verify()).toMatchObject({ ok: true, mismatches: [] });
  }, 180_000);

  it('CLI: migrate --json lists a table added back', async () => {
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
    // A kept staging table with rows is no longer refused (#17 item 19).
    const again = await cli(both);
    expect(again.code).toBe(0);
    expect(JSON.parse(again.stdout)).toMatchObject({ readdedTables: ['public.shops'] });
  }, 180_000);

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

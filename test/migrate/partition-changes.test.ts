import { formatSchemaChanges } from '../../src/cli/commands/history-format';
import { parseConfig, type AuditTrailConfigInput } from '../../src/config';
import { createHistory, type SchemaChange } from '../../src/history';
import { migrateTarget } from '../../src/migrate/migrate-target';
import { createKysely } from '../../src/postgres/connect';
import { createPipeline } from '../engine/helpers';
import { createTestDatabase, withClient } from '../support/databases';

/**
 * With AWS DMS no stream says a partition was attached or detached: migrate logs what
 * it finds since its last run (#17 item 21, the DMS path), as the engine does.
 */

interface Urls {
  readonly sourceUrl: string;
  readonly targetUrl: string;
}

const onSource = async (urls: Urls, statements: string, values?: unknown[]) =>
  (await withClient(urls.sourceUrl, (client) => client.query(statements, values))).rows;

const migrate = (urls: Urls, partitions: string[]) =>
  migrateTarget({
    config: parseConfig(config(partitions)),
    sourceUrl: urls.sourceUrl,
    targetUrl: urls.targetUrl,
  });

const config = (partitions: string[]): AuditTrailConfigInput => ({
  tables: [{ table: 'd', partitions }],
});

/** `history.schemaChanges('public.d')`, as the API returns it. */
async function schemaChanges(urls: Urls): Promise<SchemaChange[]> {
  const db = createKysely<unknown>(urls.targetUrl, { max: 1, label: 'target' });
  try {
    return await createHistory(db, { auditSchema: 'audit' }).schemaChanges('public.d');
  } finally {
    await db.destroy();
  }
}

/** The source's WAL position now: everything committed so far is before it. */
const lsnNow = async (urls: Urls) =>
  (await onSource(urls, `SELECT pg_current_wal_insert_lsn()::text AS lsn`))[0]!.lsn as string;

const atOrAfter = async (urls: Urls, lsn: string | null, bound: string) =>
  (await onSource(urls, `SELECT $1::pg_lsn >= $2::pg_lsn AS ok`, [lsn, bound]))[0]!.ok as boolean;

const TREE = `CREATE TABLE d (region text, id int, PRIMARY KEY (region, id)) PARTITION BY LIST (region);
  CREATE TABLE d_eu PARTITION OF d FOR VALUES IN ('EU');
  CREATE TABLE d_us PARTITION OF d FOR VALUES IN ('US', 'CA');
  INSERT INTO d VALUES ('EU', 1), ('US', 1);`;

async function databases(): Promise<Urls> {
  const urls = {
    sourceUrl: await createTestDatabase('pcsrc'),
    targetUrl: await createTestDatabase('pctgt'),
  };
  await onSource(urls, TREE);
  return urls;
}

describe('migrate: partitions attached and detached are in the schema-change log (DMS path)', () => {
  it('logs which leaf, attached or detached, its bound and the LSN it was seen at or before, once each', async () => {
    const urls = await databases();
    await migrate(urls, ['d_eu', 'd_us']);
    // The leaves of a table first audited are the table, not changes of it.
    expect(await schemaChanges(urls)).toEqual([]);
    await onSource(urls, `ALTER TABLE d DETACH PARTITION d_us`);
    const detached = await lsnNow(urls);
    await onSource(
      urls,
      `CREATE TABLE d_ap (region text, id int, PRIMARY KEY (region, id));
       ALTER TABLE d ATTACH PARTITION d_ap FOR VALUES IN ('AP');
       CREATE TABLE d_other PARTITION OF d DEFAULT`,
    );
    const attached = await lsnNow(urls);
    const report = await migrate(urls, ['d_eu', 'd_ap', 'd_other']);
    expect(report.partitionChanges.map((c) => [c.change, c.name])).toEqual([
      ['DETACH', 'd_us'],
      ['ATTACH', 'd_ap'],
      ['ATTACH', 'd_other'],
    ]);
    // A rerun finds nothing new.
    expect((await migrate(urls, ['d_eu', 'd_ap', 'd_other'])).partitionChanges).toEqual([]);
    const changes = await schemaChanges(urls);
    const entry = (change: string, name: string, bound: string) =>
      expect.objectContaining({
        schema: 'public',
        table: 'd',
        change,
        partition: { schema: 'public', name, bound },
        commitTimestamp: null,
        detectedBy: 'migrate',
      });
    expect(changes).toEqual([
      entry('DETACH', 'd_us', "FOR VALUES IN ('US', 'CA')"),
      entry('ATTACH', 'd_ap', "FOR VALUES IN ('AP')"),
      entry('ATTACH', 'd_other', 'DEFAULT'),
    ]);
    expect(await atOrAfter(urls, changes[0]!.sourceLsn, detached)).toBe(true);
    expect(await atOrAfter(urls, changes[2]!.sourceLsn, attached)).toBe(true);
    expect(formatSchemaChanges(changes)).toContain(
      `DETACH partition public.d_us FOR VALUES IN ('US', 'CA')  (seen by migrate at or before LSN ${changes[0]!.sourceLsn})`,
    );
  }, 60_000);

  it('a partition detached and attached again is a DETACH with its old bound and an ATTACH with its new one', async () => {
    const urls = await databases();
    await migrate(urls, ['d_eu', 'd_us']);
    await onSource(
      urls,
      `ALTER TABLE d DETACH PARTITION d_us;
       ALTER TABLE d ATTACH PARTITION d_us FOR VALUES IN ('US', 'MX')`,
    );
    await migrate(urls, ['d_eu', 'd_us']);
    await migrate(urls, ['d_eu', 'd_us']);
    expect(
      (await schemaChanges(urls)).map((c) => [
        'partition' in c && [c.change, c.partition.name, c.partition.bound],
      ]),
    ).toEqual([
      [['DETACH', 'd_us', "FOR VALUES IN ('US', 'CA')"]],
      [['ATTACH', 'd_us', "FOR VALUES IN ('US', 'MX')"]],
    ]);
  }, 60_000);

  it('an event both migrate and the engine see is logged once', async () => {
    const p = await createPipeline(TREE, config(['d_eu', 'd_us']));
    try {
      await p.replicate();
      await p.source(`CREATE TABLE d_ap PARTITION OF d FOR VALUES IN ('AP')`);
      await migrate(p, ['d_eu', 'd_us', 'd_ap']);
      await p.replicate();
      expect((await schemaChanges(p)).map((c) => [c.change, c.detectedBy])).toEqual([
        ['ATTACH', 'migrate'],
      ]);
    } finally {
      await p.dispose();
    }
  }, 60_000);
});

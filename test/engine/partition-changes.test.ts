import { formatSchemaChanges } from '../../src/cli/commands/history-format';
import { createEngine, silentLogger } from '../../src/engine';
import { createHistory } from '../../src/history';
import { createKysely } from '../../src/postgres/connect';
import { grantSql } from '../../src/trust/grant';
import { kitRoles } from '../../src/trust/roles';
import { createLogin } from '../trust/support';
import { createPipeline, type Pipeline } from './helpers';

/** `history.schemaChanges('public.d')`, as the API returns it. */
const schemaChanges = async (p: Pipeline) => {
  const db = createKysely<unknown>(p.targetUrl, { max: 1, label: 'target' });
  try {
    return await createHistory(db, { auditSchema: 'audit' }).schemaChanges('public.d');
  } finally {
    await db.destroy();
  }
};

/** The source's WAL position now: everything committed so far is before it. */
const lsnNow = async (p: Pipeline) =>
  (await p.source(`SELECT pg_current_wal_insert_lsn()::text AS lsn`)).rows[0]!.lsn as string;

const atOrAfter = async (p: Pipeline, lsn: string | null, bound: string) =>
  (await p.source(`SELECT $1::pg_lsn >= $2::pg_lsn AS ok`, [lsn, bound])).rows[0]!.ok as boolean;

/** `d`, list-partitioned into `d_eu` and `d_us` with a row each, both in the config. */
const twoLeafPipeline = () =>
  createPipeline(
    `CREATE TABLE d (region text, id int, PRIMARY KEY (region, id)) PARTITION BY LIST (region);
     CREATE TABLE d_eu PARTITION OF d FOR VALUES IN ('EU');
     CREATE TABLE d_us PARTITION OF d FOR VALUES IN ('US');
     INSERT INTO d VALUES ('EU', 1), ('US', 1);`,
    { tables: [{ table: 'd', partitions: ['d_eu', 'd_us'] }] },
  );

describe('engine: partitions attached and detached are in the schema-change log (#17 item 21)', () => {
  const TREE = `CREATE TABLE d (region text, id int, v int, PRIMARY KEY (region, id)) PARTITION BY LIST (region);
    CREATE TABLE d_eu PARTITION OF d FOR VALUES IN ('EU');
    CREATE TABLE d_us PARTITION OF d FOR VALUES IN ('US', 'CA');
    INSERT INTO d VALUES ('EU', 1, 1), ('US', 1, 1);`;
  let p: Pipeline;
  beforeAll(async () => {
    p = await createPipeline(TREE, { tables: [{ table: 'd', partitions: ['d_eu', 'd_us'] }] });
  }, 60_000);
  afterAll(async () => p?.dispose());

  it('records which leaf, attached or detached, its bound and the LSN it was seen at or before, once each', async () => {
    await p.replicate();
    // The leaves the first load found are the table, not changes of it.
    expect(await schemaChanges(p)).toEqual([]);
    await p.source(`ALTER TABLE d DETACH PARTITION d_us`);
    const detached = await lsnNow(p);
    await p.source(`CREATE TABLE d_ap (region text, id int, v int, PRIMARY KEY (region, id));
                    INSERT INTO d_ap VALUES ('AP', 1, 1);
                    ALTER TABLE d ATTACH PARTITION d_ap FOR VALUES IN ('AP')`);
    const attached = await lsnNow(p);
    await p.replicate();
    // Seen again at the next start: not logged again.
    await p.replicate();
    const changes = await schemaChanges(p);
    expect(changes).toEqual([
      expect.objectContaining({
        schema: 'public',
        table: 'd',
        change: 'DETACH',
        partition: { schema: 'public', name: 'd_us', bound: "FOR VALUES IN ('US', 'CA')" },
        commitTimestamp: null,
        detectedBy: 'engine',
      }),
      expect.objectContaining({
        schema: 'public',
        table: 'd',
        change: 'ATTACH',
        partition: { schema: 'public', name: 'd_ap', bound: "FOR VALUES IN ('AP')" },
        commitTimestamp: null,
        detectedBy: 'engine',
      }),
    ]);
    // An upper bound: the engine saw each after it committed.
    expect(await atOrAfter(p, changes[0]!.sourceLsn, detached)).toBe(true);
    expect(await atOrAfter(p, changes[1]!.sourceLsn, attached)).toBe(true);
    expect(Number(changes[0]!.id)).toBeLessThan(Number(changes[1]!.id));
    // audit-trail history schema public.d
    expect(formatSchemaChanges(changes)).toContain(
      `DETACH partition public.d_us FOR VALUES IN ('US', 'CA')  (seen by engine at or before LSN ${changes[0]!.sourceLsn})`,
    );
    expect(formatSchemaChanges(changes)).toContain(
      `ATTACH partition public.d_ap FOR VALUES IN ('AP')  (seen by engine at or before LSN ${changes[1]!.sourceLsn})`,
    );
  });

  it('a partition created empty (CREATE TABLE ... PARTITION OF) is an ATTACH too', async () => {
    const before = (await schemaChanges(p)).length;
    await p.source(`CREATE TABLE d_other PARTITION OF d DEFAULT`);
    await p.replicate();
    expect((await schemaChanges(p)).slice(before)).toEqual([
      expect.objectContaining({
        change: 'ATTACH',
        partition: { schema: 'public', name: 'd_other', bound: 'DEFAULT' },
      }),
    ]);
  });
});

describe('engine: a partition detached and attached again is in the schema-change log (#17 item 21)', () => {
  it('logs the DETACH (with the bound it had) and the ATTACH (with its new bound) though the engine refuses the attachment', async () => {
    const p = await twoLeafPipeline();
    try {
      await p.replicate();
      await p.source(`ALTER TABLE d DETACH PARTITION d_us`);
      await p.source(`ALTER TABLE d ATTACH PARTITION d_us FOR VALUES IN ('US', 'MX')`);
      const seen = await lsnNow(p);
      await expect(p.replicate()).rejects.toThrow(/was detached and attached again/);
      // Refused again at the next start: logged once.
      await expect(p.replicate()).rejects.toThrow(/was detached and attached again/);
      const changes = await schemaChanges(p);
      expect(changes).toEqual([
        expect.objectContaining({
          change: 'DETACH',
          partition: { schema: 'public', name: 'd_us', bound: "FOR VALUES IN ('US')" },
          detectedBy: 'engine',
        }),
        expect.objectContaining({
          change: 'ATTACH',
          partition: { schema: 'public', name: 'd_us', bound: "FOR VALUES IN ('US', 'MX')" },
          detectedBy: 'engine',
        }),
      ]);
      for (const change of changes) expect(await atOrAfter(p, change.sourceLsn, seen)).toBe(true);
    } finally {
      await p.dispose();
    }
  });
});

describe('engine: partition changes logged by a target login with only the writer and engine roles', () => {
  it('logs the DETACH and the ATTACH with those roles’ privileges', async () => {
    const p = await twoLeafPipeline();
    try {
      const login = await createLogin(p.targetUrl, 'engine_login');
      await p.target(grantSql(kitRoles(p.config), 'engine', login.name));
      const replicateAsLogin = () =>
        createEngine({
          config: p.config,
          sourceUrl: p.sourceUrl,
          targetUrl: login.url,
          slotName: p.slotName,
          logger: silentLogger,
          lagIntervalMs: 0,
        }).runUntilIdle();
      await replicateAsLogin();
      await p.source(`ALTER TABLE d DETACH PARTITION d_us`);
      await p.source(`CREATE TABLE d_ap PARTITION OF d FOR VALUES IN ('AP')`);
      await replicateAsLogin();
      expect(
        (await schemaChanges(p)).map((c) => [c.change, 'partition' in c && c.partition.name]),
      ).toEqual([
        ['DETACH', 'd_us'],
        ['ATTACH', 'd_ap'],
      ]);
    } finally {
      await p.dispose();
    }
  });
});

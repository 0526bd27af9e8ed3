import { dropSlotIfExists } from '../../src/engine/source-setup';
import { connectClient } from '../../src/postgres/connect';
import { migrateTarget } from '../../src/migrate/migrate-target';
import { createTestDatabase, withClient } from '../support/databases';
import { plantedCalls, plantLookalikes } from '../support/planted-lookalikes';
import { createPipeline } from './helpers';

/**
 * The engine's source session (and `audit-trail slot drop`) runs as a login with the
 * REPLICATION attribute, on its default search_path. A function an application role
 * planted in `public` (any role may on PostgreSQL 13 and 14) whose text argument an
 * untyped parameter prefers over pg_catalog's `name` or `integer` would run with the
 * replication login's rights.
 */
describe("the engine's source session with lookalikes planted in public", () => {
  it('drops a slot without calling them', async () => {
    const url = await createTestDatabase('eng_plant');
    const slot = `plant_${Math.random().toString(36).slice(2, 10)}`;
    await withClient(url, async (client) => {
      await client.query(
        plantLookalikes([
          {
            function: 'pg_drop_replication_slot',
            args: 'text',
            returns: 'void',
            answer: 'SELECT pg_catalog.pg_drop_replication_slot($1::name)',
          },
        ]),
      );
      await client.query(`SELECT pg_catalog.pg_create_logical_replication_slot($1, 'pgoutput')`, [
        slot,
      ]);
    });
    const source = await connectClient(url, 'audit-trail-engine', 'source');
    try {
      await dropSlotIfExists(source, slot);
    } finally {
      await source.end();
    }
    expect(await plantedCalls(url)).toEqual([]);
    await withClient(url, async (client) => {
      const slots = await client.query(
        'SELECT 1 FROM pg_catalog.pg_replication_slots WHERE slot_name = $1',
        [slot],
      );
      expect(slots.rowCount).toBe(0);
    });
  });

  it('streams changes without calling them', async () => {
    const p = await createPipeline(`CREATE TABLE t (id int PRIMARY KEY, v text)`, {
      tables: [{ table: 't' }],
    });
    try {
      await p.replicate();
      // Each binds a streamed table's columns to staging (src/engine/relation-binding.ts):
      // pg_catalog has no oid = integer nor oid = regnamespace (it compares oid = oid
      // after a cast), and format(text, VARIADIC "any") is no exact match for text.
      await p.source(
        plantLookalikes([
          { operator: '=', left: 'oid', right: 'integer' },
          { operator: '<>', left: 'oid', right: 'integer' },
          { operator: '=', left: 'oid', right: 'regnamespace' },
          { operator: '=', left: 'oid', right: 'regclass' },
          {
            function: 'format',
            args: 'text, text, text',
            returns: 'text',
            answer: 'SELECT pg_catalog.format($1, $2, $3)',
          },
        ]),
      );
      // A change made before ADD COLUMN, streamed after migrate added the column to
      // staging: the engine also reads which columns the source has now.
      await p.source(`INSERT INTO t VALUES (1, 'a')`);
      await p.source(`ALTER TABLE t ADD COLUMN extra int`);
      await p.source(`INSERT INTO t VALUES (2, 'b', 22)`);
      await migrateTarget({ config: p.config, sourceUrl: p.sourceUrl, targetUrl: p.targetUrl });
      await p.replicate();

      expect(await plantedCalls(p.sourceUrl)).toEqual([]);
      const staged = await p.target('SELECT id, v, extra FROM audit.t_staging ORDER BY id');
      expect(staged.rows).toEqual([
        { id: 1, v: 'a', extra: null },
        { id: 2, v: 'b', extra: 22 },
      ]);
    } finally {
      await p.dispose();
    }
  });

  it('loads and streams a partitioned table without calling them', async () => {
    const p = await createPipeline(
      `CREATE TABLE d (region text, id int, PRIMARY KEY (region, id)) PARTITION BY LIST (region);
       CREATE TABLE d_eu PARTITION OF d FOR VALUES IN ('EU');
       INSERT INTO d VALUES ('EU', 1);`,
      { tables: [{ table: 'd', partitions: ['d_eu'] }] },
    );
    try {
      // pg_partition_tree and pg_partition_ancestors return regclass: compared with an
      // oid, a lookalike operator for the pair is the only exact match.
      await p.source(
        plantLookalikes([
          { operator: '=', left: 'oid', right: 'regclass' },
          { operator: '<>', left: 'regclass', right: 'oid' },
        ]),
      );
      await p.replicate();
      await p.source(`INSERT INTO d VALUES ('EU', 2)`);
      await p.replicate();

      expect(await plantedCalls(p.sourceUrl)).toEqual([]);
      const staged = await p.target('SELECT region, id FROM audit.d_staging ORDER BY id');
      expect(staged.rows).toEqual([
        { region: 'EU', id: 1 },
        { region: 'EU', id: 2 },
      ]);
    } finally {
      await p.dispose();
    }
  });
});

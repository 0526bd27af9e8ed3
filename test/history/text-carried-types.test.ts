import { createHistory } from '../../src/history';
import { verifyAuditTrail } from '../../src/verify';
import { Kysely, PostgresDialect } from 'kysely';
import pg from 'pg';
import { parseConfig } from '../../src/config';
import { migrateTarget } from '../../src/migrate/migrate-target';
import { auditRows, createPipeline, type Pipeline } from '../engine/helpers';
import { cdc, DmsApplier } from '../support/dms-apply';
import { createTestDatabase, withClient } from '../support/databases';

/** Types the target does not have: staged as the text DMS carries. */
const DDL = `
  CREATE EXTENSION hstore;
  CREATE TYPE mood AS ENUM ('happy', 'sad', 'with "quotes", commas');
  CREATE TYPE point3 AS (x int, y text, z numeric);
  CREATE TABLE public.typed (
    id int PRIMARY KEY, m mood, ms mood[], p point3, ps point3[], h hstore
  );
  CREATE TABLE public.by_mood (m mood PRIMARY KEY, v text);`;
const TABLES = [{ table: 'typed' }, { table: 'by_mood' }];

describe('enum, enum[], composite and hstore columns', () => {
  it('stage as text and are recorded as that text (DMS-shaped writes)', async () => {
    const sourceUrl = await createTestDatabase('src');
    const targetUrl = await createTestDatabase('tgt');
    await withClient(sourceUrl, (client) => client.query(DDL));
    await migrateTarget({
      config: parseConfig({ auditSchema: 'audit', tables: TABLES }),
      sourceUrl,
      targetUrl,
    });
    const db = new Kysely<unknown>({
      dialect: new PostgresDialect({ pool: new pg.Pool({ connectionString: targetUrl }) }),
    });
    try {
      await withClient(targetUrl, async (target) => {
        const dms = new DmsApplier(target, 'audit', 'typed', ['id']);
        await dms.insert(
          { id: '1', m: 'happy', ms: '{happy,sad}', p: '(1,a,1.50)', ps: null, h: '"a"=>"1"' },
          cdc('INSERT', '2026-11-22 10:00:00', 1),
        );
        await dms.update({ id: '1' }, { ms: '{sad}' }, cdc('UPDATE', '2026-11-22 10:00:01', 2));
      });
      const versions = await createHistory(db).history('public.typed', [1]);
      expect(versions.map((v) => [v.operation, v.newRow, v.changedColumns])).toEqual([
        [
          'INSERT',
          { id: 1, m: 'happy', ms: '{happy,sad}', p: '(1,a,1.50)', ps: null, h: '"a"=>"1"' },
          null,
        ],
        [
          'UPDATE',
          { id: 1, m: 'happy', ms: '{sad}', p: '(1,a,1.50)', ps: null, h: '"a"=>"1"' },
          ['ms'],
        ],
      ]);
    } finally {
      await db.destroy();
    }
  });

  describe('through the local engine', () => {
    let p: Pipeline;
    beforeAll(async () => {
      p = await createPipeline(
        `${DDL}
         INSERT INTO public.typed VALUES
           (1, 'happy', '{happy,sad}', '(1,"a b",1.50)', ARRAY['(2,x,3)'::point3], 'a=>1, "b c"=>NULL'),
           (2, NULL, '{}', NULL, NULL, NULL);
         INSERT INTO public.by_mood VALUES ('with "quotes", commas', 'x');`,
        { tables: TABLES },
      );
      await p.replicate();
    });
    afterAll(async () => p?.dispose());

    it('records their text and verifies clean after load and changes', async () => {
      const verify = () =>
        verifyAuditTrail({ config: p.config, sourceUrl: p.sourceUrl, targetUrl: p.targetUrl });
      expect((await verify()).mismatches).toEqual([]);
      await p.source(`UPDATE public.typed SET ms = ms || 'with "quotes", commas'::mood,
                        p.z = 2.500, h = h || 'd=>4' WHERE id = 1;
                      UPDATE public.typed SET m = 'sad' WHERE id = 2;
                      UPDATE public.by_mood SET v = 'y'`);
      await p.replicate();
      const rows = await auditRows(p, 'typed');
      expect(rows.at(-2)).toMatchObject({
        operation: 'UPDATE',
        changed_columns: ['h', 'ms', 'p'],
        new_row: {
          ms: '{happy,sad,"with \\"quotes\\", commas"}',
          p: '(1,"a b",2.500)',
          ps: '{"(2,x,3)"}',
          h: '"a"=>"1", "d"=>"4", "b c"=>NULL',
        },
      });
      const report = await verify();
      expect(report.mismatches).toEqual([]);
      expect(report.tables.map((t) => t.sourceRows)).toEqual([2, 1]);
    });
  });
});

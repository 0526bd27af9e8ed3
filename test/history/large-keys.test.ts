import { randomBytes } from 'node:crypto';
import { Kysely, PostgresDialect } from 'kysely';
import pg from 'pg';
import { parseConfig } from '../../src/config';
import { createHistory } from '../../src/history';
import { migrateTarget } from '../../src/migrate/migrate-target';
import { verifyAuditTrail } from '../../src/verify';
import { auditRows, createPipeline, type Pipeline } from '../engine/helpers';
import { cdc, DmsApplier } from '../support/dms-apply';
import { createTestDatabase, withClient } from '../support/databases';

/**
 * Keys as large as the source's own primary key index takes: ~2.7 kB that does not
 * compress (the source's btree holds up to ~2.7 kB), and 10 kB that compresses to
 * about that. The audit log's per-key index must not need the key itself.
 */
const incompressible = (length: number) =>
  randomBytes(Math.ceil((length * 3) / 4))
    .toString('base64')
    .slice(0, length);
const KEY_2_6K = incompressible(2680);
const KEY_10K = 'x'.repeat(8000) + incompressible(2000);

const DDL = `CREATE TABLE public.big (k text PRIMARY KEY, v text);`;

describe('large text keys', () => {
  it('are recorded and found by key (DMS-shaped writes)', async () => {
    const sourceUrl = await createTestDatabase('src');
    const targetUrl = await createTestDatabase('tgt');
    await withClient(sourceUrl, (client) => client.query(DDL));
    await migrateTarget({
      config: parseConfig({ auditSchema: 'audit', tables: [{ table: 'big' }] }),
      sourceUrl,
      targetUrl,
    });
    const db = new Kysely<unknown>({
      dialect: new PostgresDialect({ pool: new pg.Pool({ connectionString: targetUrl }) }),
    });
    try {
      await withClient(targetUrl, async (target) => {
        const dms = new DmsApplier(target, 'audit', 'big', ['k']);
        for (const [i, k] of [KEY_2_6K, KEY_10K].entries()) {
          await dms.insert({ k, v: 'a' }, cdc('INSERT', '2026-11-22 10:00:00', 10 + i));
          await dms.update({ k }, { v: 'b' }, cdc('UPDATE', '2026-11-22 10:00:01', 20 + i));
        }
      });
      const history = createHistory(db);
      for (const k of [KEY_2_6K, KEY_10K]) {
        const versions = await history.history('public.big', [k]);
        expect(versions.map((v) => [v.operation, v.key.k === k, v.newRow?.v])).toEqual([
          ['INSERT', true, 'a'],
          ['UPDATE', true, 'b'],
        ]);
      }
    } finally {
      await db.destroy();
    }
  });

  describe('through the local engine', () => {
    let p: Pipeline;
    beforeAll(async () => {
      p = await createPipeline(DDL, { tables: [{ table: 'big' }] });
      await p.source(`INSERT INTO public.big VALUES ($1, 'loaded')`, [KEY_2_6K]);
      await p.replicate(); // initial load
    });
    afterAll(async () => p?.dispose());

    it('captures, looks up by key and verifies clean', async () => {
      await p.source(`INSERT INTO public.big VALUES ($1, 'new')`, [KEY_10K]);
      await p.source(`UPDATE public.big SET v = v || '!'`);
      await p.source(`DELETE FROM public.big WHERE k = $1`, [KEY_2_6K]);
      await p.replicate();
      const rows = await auditRows(p, 'big');
      expect(rows.map((r) => [r.operation, (r.row_key as { k: string }).k.length])).toEqual([
        ['SNAPSHOT', 2680],
        ['INSERT', 10000],
        ['UPDATE', 2680],
        ['UPDATE', 10000],
        ['DELETE', 2680],
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
});

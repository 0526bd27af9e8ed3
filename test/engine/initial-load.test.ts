import { createEngine, silentLogger, type EngineLogger } from '../../src/engine';
import { verifyAuditTrail } from '../../src/verify';
import { createPipeline, type Pipeline } from './helpers';

const ROWS = 20_000;
const SOURCE_DDL = `
  CREATE TABLE public.stock (sku int PRIMARY KEY, qty int NOT NULL, label text);
  INSERT INTO public.stock SELECT g, g % 100, 'label ' || g FROM generate_series(1, ${ROWS}) AS g;`;

describe('engine: initial load from the slot snapshot', () => {
  let p: Pipeline;
  beforeAll(async () => {
    p = await createPipeline(SOURCE_DDL, { tables: [{ table: 'stock' }] });
  });
  afterAll(async () => p?.dispose());

  it('copies existing rows as SNAPSHOT versions; writes during the copy follow as CDC, no gap and no overlap', async () => {
    let writes: Promise<unknown> | null = null;
    const progress: Record<string, unknown>[] = [];
    const logger: EngineLogger = {
      log(_level, message, fields = {}) {
        if (message.startsWith('initial load')) progress.push({ message, ...fields });
        // The snapshot exists now: these commit after it, possibly before the copy starts;
        // history must still put each full-load row first.
        if (message === 'replication slot created') {
          writes = p.source(`
            UPDATE public.stock SET qty = -1 WHERE sku IN (1, ${ROWS});
            DELETE FROM public.stock WHERE sku = 2;
            INSERT INTO public.stock VALUES (${ROWS + 1}, 7, 'new');`);
        }
      },
    };
    const engine = () => p.engine({ logger, batchSize: 1000 });
    const first = await engine().runUntilIdle();
    expect(first.initialLoadRows).toEqual({ 'public.stock': ROWS });
    expect(progress).toContainEqual({
      message: 'initial load started',
      table: 'public.stock',
      total: ROWS,
    });
    expect(progress).toContainEqual({
      message: 'initial load copied',
      table: 'public.stock',
      rows: ROWS,
      total: ROWS,
    });
    await writes;
    const second = await engine().runUntilIdle();
    expect(second.initialLoadRows).toEqual({}); // not reloaded

    const { rows } = await p.target(
      `SELECT operation, count(*)::int AS n FROM audit.audit_log GROUP BY operation ORDER BY operation`,
    );
    expect(rows).toEqual([
      { operation: 'DELETE', n: 1 },
      { operation: 'INSERT', n: 1 },
      { operation: 'SNAPSHOT', n: ROWS },
      { operation: 'UPDATE', n: 2 },
    ]);
    const { rows: sku1 } = await p.target(
      `SELECT operation, new_row->>'qty' AS qty FROM audit.audit_log WHERE row_key = '{"sku": 1}' ORDER BY commit_timestamp, change_seq NULLS FIRST, id`,
    );
    expect(sku1).toEqual([
      { operation: 'SNAPSHOT', qty: '1' },
      { operation: 'UPDATE', qty: '-1' },
    ]);
    const report = await verifyAuditTrail({
      config: p.config,
      sourceUrl: p.sourceUrl,
      targetUrl: p.targetUrl,
    });
    expect(report.ok).toBe(true);
    expect(report.tables).toEqual([
      {
        table: 'public.stock',
        sourceRows: ROWS,
        auditRows: ROWS,
        stagingRows: ROWS,
        mismatches: 0,
      },
    ]);
  });
});

describe('engine: stopping during the initial load', () => {
  it('rolls the partial load back and loads from scratch on the next run', async () => {
    const p = await createPipeline(
      `CREATE TABLE public.bulk (id int PRIMARY KEY);
       INSERT INTO public.bulk SELECT generate_series(1, 12000);`,
      { tables: [{ table: 'bulk' }] },
    );
    try {
      const options = {
        config: p.config,
        sourceUrl: p.sourceUrl,
        targetUrl: p.targetUrl,
        slotName: p.slotName,
        lagIntervalMs: 0,
      };
      const engine = createEngine({
        ...options,
        logger: {
          log: (_level, message) => void (message === 'initial load started' && engine.stop()),
        },
      });
      const stopped = await engine.run();
      expect(stopped.initialLoadRows).toEqual({});
      const count = async () =>
        (await p.target('SELECT count(*)::int AS n FROM audit.audit_log')).rows[0].n as number;
      expect(await count()).toBe(0);
      const loaded = await createEngine({ ...options, logger: silentLogger }).runUntilIdle();
      expect(loaded.initialLoadRows).toEqual({ 'public.bulk': 12000 });
      expect(await count()).toBe(12000);
    } finally {
      await p.dispose();
    }
  });
});

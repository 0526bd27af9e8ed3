import { PassThrough } from 'node:stream';
import { explainItem } from '../../examples/history-queries';
import { auditContext } from '../../src/source-context';
import { createKysely } from '../../src/postgres/connect';
import { installSourceContext } from '../../src/source-context';
import { createPipeline, type Pipeline } from '../engine/helpers';

// examples/history-queries.ts is documentation a user copies: it must run and print
// what it promises against a real pipeline.

const CONFIG = {
  tables: [{ schema: 'public', table: 'items' }],
  sourceContext: {},
};

describe('examples/history-queries.ts', () => {
  let pipeline: Pipeline;

  beforeAll(async () => {
    pipeline = await createPipeline(
      `CREATE TABLE public.items (id int PRIMARY KEY, name text NOT NULL, price numeric(10, 2) NOT NULL);`,
      CONFIG,
      async (sourceUrl, config) => {
        const db = createKysely<unknown>(sourceUrl, { max: 1 });
        await installSourceContext(db, config).finally(() => db.destroy());
      },
    );
    await pipeline.replicate();
  });

  afterAll(async () => {
    await pipeline?.dispose();
  });

  it('prints every version with who changed it, the as-of state and the last transaction', async () => {
    await pipeline.source(`INSERT INTO items VALUES (42, 'pen', 9.99), (43, 'ink', 4.50)`);
    const { withAuditContext } = auditContext(pipeline.config);
    const source = createKysely<{ items: { id: number; price: string } }>(pipeline.sourceUrl, {
      max: 1,
    });
    try {
      await withAuditContext(source, { actor: 'alice', reason: 'price review' }, async (trx) => {
        await trx
          .updateTable('items')
          .set({ price: '11.50' })
          .where('id', 'in', [42, 43])
          .execute();
      });
    } finally {
      await source.destroy();
    }
    await pipeline.replicate();

    const out = new PassThrough();
    let text = '';
    out.on('data', (chunk: Buffer) => (text += chunk.toString('utf8')));
    await explainItem(pipeline.targetUrl, 42, out);
    const lines = text.trim().split('\n');
    expect(lines).toHaveLength(4);
    expect(lines[0]).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z INSERT $/);
    expect(lines[1]).toMatch(/ UPDATE by alice price: 9\.99 -> 11\.50$/);
    expect(lines[2]).toMatch(/^as of .*: did not exist$/);
    expect(lines[3]).toMatch(/^its last transaction \d+ changed 3 row\(s\)$/);
  });
});

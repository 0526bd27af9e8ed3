import { createEngine, SchemaChangeError, silentLogger } from '../../src/engine';
import { migrateTarget } from '../../src/migrate/migrate-target';
import { verifyIntegrity } from '../../src/trust/integrity';
import { kitRoles } from '../../src/trust/roles';
import { quoteIdent } from '../../src/postgres/identifiers';
import { createLogin } from '../trust/support';
import { auditRows, createPipeline, type Pipeline } from './helpers';

/**
 * The README tells operators to run the engine (like DMS) with a target login that holds
 * only the kit's writer role, not the owner. Everything the engine does on the target
 * (initial load, CDC, its position, restarts, a schema change) must work with that.
 */
describe('engine: target login with only the writer role', () => {
  let p: Pipeline;
  let writerUrl: string;

  beforeAll(async () => {
    p = await createPipeline(
      `CREATE TABLE items (id int PRIMARY KEY, name text, price numeric(12, 2));
       INSERT INTO items VALUES (1, 'pen', 1.50), (2, 'ink', 3.00);`,
      { tables: [{ table: 'items' }] },
    );
    const login = await createLogin(p.targetUrl, 'engine_writer');
    await p.target(`GRANT ${quoteIdent(kitRoles(p.config).writer)} TO ${quoteIdent(login.name)}`);
    writerUrl = login.url;
  });
  afterAll(async () => p?.dispose());

  const replicateAsWriter = () =>
    createEngine({
      config: p.config,
      sourceUrl: p.sourceUrl,
      targetUrl: writerUrl,
      slotName: p.slotName,
      logger: silentLogger,
      lagIntervalMs: 0,
    }).runUntilIdle();

  it('loads, applies inserts, updates and deletes, and resumes from its position', async () => {
    await replicateAsWriter();
    await p.source(`INSERT INTO items VALUES (3, 'nib', 0.25)`);
    await p.source(`UPDATE items SET price = 1.75 WHERE id = 1`);
    await p.source(`DELETE FROM items WHERE id = 2`);
    const first = await replicateAsWriter();
    expect(first.transactions).toBe(3);
    await p.source(`UPDATE items SET name = 'nib 2' WHERE id = 3`);
    const second = await replicateAsWriter();
    expect(second.transactions).toBe(1);
    const rows = await auditRows(p, 'items');
    expect(rows.map((r) => [r.operation, (r.row_key as { id: number }).id])).toEqual([
      ['SNAPSHOT', 1],
      ['SNAPSHOT', 2],
      ['INSERT', 3],
      ['UPDATE', 1],
      ['DELETE', 2],
      ['UPDATE', 3],
    ]);
    const report = await verifyIntegrity({ targetUrl: p.targetUrl, auditSchema: 'audit' });
    expect(report).toMatchObject({ ok: true, findingCount: 0, rows: 6 });
  });

  it('stops at a source schema change and, after migrate, applies it as the writer', async () => {
    await p.source(`ALTER TABLE items ADD COLUMN colour text`);
    await p.source(`UPDATE items SET colour = 'blue' WHERE id = 1`);
    await expect(replicateAsWriter()).rejects.toThrow(SchemaChangeError);
    await migrateTarget({ config: p.config, sourceUrl: p.sourceUrl, targetUrl: p.targetUrl });
    await replicateAsWriter();
    const rows = await auditRows(p, 'items');
    expect(rows.at(-1)).toMatchObject({
      operation: 'UPDATE',
      changed_columns: ['colour'],
      new_row: expect.objectContaining({ colour: 'blue' }) as unknown,
    });
  });
});

import { createEngine, SchemaChangeError, silentLogger } from '../../src/engine';
import { AuditTrailError } from '../../src/errors';
import { migrateTarget } from '../../src/migrate/migrate-target';
import { grantSql } from '../../src/trust/grant';
import { verifyIntegrity } from '../../src/trust/integrity';
import { kitRoles } from '../../src/trust/roles';
import { quoteIdent } from '../../src/postgres/identifiers';
import { createLogin } from '../trust/support';
import { auditRows, createPipeline, type Pipeline } from './helpers';
import { errorOf } from '../support/settled';

/**
 * The README tells operators to run the engine with a target login that holds the kit's
 * writer and engine roles (`audit-trail grant engine`), not the owner. Everything the
 * engine does on the target (initial load, CDC, its position, restarts, a schema change)
 * must work with that; with the writer role alone (DMS's) it must not start.
 */
describe('engine: target login with only the writer and engine roles', () => {
  let p: Pipeline;
  let loginUrl: string;
  let login: { name: string; url: string };

  beforeAll(async () => {
    p = await createPipeline(
      `CREATE TABLE items (id int PRIMARY KEY, name text, price numeric(12, 2));
       INSERT INTO items VALUES (1, 'pen', 1.50), (2, 'ink', 3.00);`,
      { tables: [{ table: 'items' }] },
    );
    login = await createLogin(p.targetUrl, 'engine_writer');
    await p.target(`GRANT ${quoteIdent(kitRoles(p.config).writer)} TO ${quoteIdent(login.name)}`);
    loginUrl = login.url;
  });
  afterAll(async () => p?.dispose());

  const replicateAsLogin = () =>
    createEngine({
      config: p.config,
      sourceUrl: p.sourceUrl,
      targetUrl: loginUrl,
      slotName: p.slotName,
      logger: silentLogger,
      lagIntervalMs: 0,
    }).runUntilIdle();

  it('refuses to start with the writer role alone (DMS’s), naming the role to grant', async () => {
    const refused = await errorOf(replicateAsLogin());
    expect(refused).toBeInstanceOf(AuditTrailError);
    const error = refused as AuditTrailError;
    expect(error.code).toBe('ENGINE_ROLE_MISSING');
    expect(error.exitCode).toBe(2);
    expect(error.message).toBe(
      `the engine's target login ${login.name} is not a member of audit_engine: the engine ` +
        `needs the writer role (audit_writer: staging DML) and the engine role ` +
        `(audit_engine: its position and its record of what it loaded); nothing was applied`,
    );
    expect(error.hint).toBe(
      `as the target's administrator run GRANT "audit_engine" TO ${quoteIdent(login.name)}, ` +
        `or "audit-trail grant engine ${login.name}" (the writer role alone is for DMS)`,
    );
    const { rows } = await p.target('SELECT count(*)::int AS n FROM audit.audit_log');
    expect(rows[0]).toEqual({ n: 0 });
    // What `audit-trail grant engine` runs: writer (held already) and engine.
    await p.target(grantSql(kitRoles(p.config), 'engine', login.name));
  });

  it('loads, applies inserts, updates and deletes, and resumes from its position', async () => {
    await replicateAsLogin();
    await p.source(`INSERT INTO items VALUES (3, 'nib', 0.25)`);
    await p.source(`UPDATE items SET price = 1.75 WHERE id = 1`);
    await p.source(`DELETE FROM items WHERE id = 2`);
    const first = await replicateAsLogin();
    expect(first.transactions).toBe(3);
    await p.source(`UPDATE items SET name = 'nib 2' WHERE id = 3`);
    const second = await replicateAsLogin();
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

  it('stops at a source schema change and, after migrate, applies it as that login', async () => {
    await p.source(`ALTER TABLE items ADD COLUMN colour text`);
    await p.source(`UPDATE items SET colour = 'blue' WHERE id = 1`);
    await expect(replicateAsLogin()).rejects.toThrow(SchemaChangeError);
    await migrateTarget({ config: p.config, sourceUrl: p.sourceUrl, targetUrl: p.targetUrl });
    await replicateAsLogin();
    const rows = await auditRows(p, 'items');
    expect(rows.at(-1)).toMatchObject({
      operation: 'UPDATE',
      changed_columns: ['colour'],
      new_row: expect.objectContaining({ colour: 'blue' }) as unknown,
    });
  });
});

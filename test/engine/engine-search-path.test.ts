import { createEngine, silentLogger } from '../../src/engine';
import { grantSql } from '../../src/trust/grant';
import { kitRoles } from '../../src/trust/roles';
import { quoteIdent } from '../../src/postgres/identifiers';
import { asLogin, createLogin } from '../trust/support';
import { auditRows, createPipeline, type Pipeline } from './helpers';

/**
 * DMS's target login holds the writer role alone, so it may not move the engine's
 * position. On PostgreSQL 13 and 14 every role may create objects in the public schema
 * (PUBLIC holds CREATE there until 15, and a DBA may grant it on any version), which is on
 * a login's default search_path. A function planted there whose argument types match a
 * call exactly wins over pg_catalog's polymorphic one: if the engine's target session
 * looked names up on the login's search_path, the planted code would run with the engine
 * login's rights and could move its position on, so the engine skipped changes silently.
 */
describe("engine: a writer login's objects on the search_path", () => {
  let p: Pipeline;
  let engineUrl: string;
  let dmsUrl: string;

  beforeAll(async () => {
    p = await createPipeline(
      `CREATE TABLE items (id int PRIMARY KEY, name text);
       INSERT INTO items VALUES (1, 'pen');`,
      { tables: [{ table: 'items' }] },
    );
    const roles = kitRoles(p.config);
    const engine = await createLogin(p.targetUrl, 'engine_login');
    await p.target(grantSql(roles, 'engine', engine.name));
    engineUrl = engine.url;
    const dms = await createLogin(p.targetUrl, 'dms_login');
    await p.target(`GRANT ${quoteIdent(roles.writer)} TO ${quoteIdent(dms.name)}`);
    dmsUrl = dms.url;
    // PostgreSQL 13 and 14's default (PUBLIC may create in public).
    await p.target('GRANT CREATE ON SCHEMA public TO PUBLIC');
  });
  afterAll(async () => p?.dispose());

  const replicateAsEngineLogin = () =>
    createEngine({
      config: p.config,
      sourceUrl: p.sourceUrl,
      targetUrl: engineUrl,
      slotName: p.slotName,
      logger: silentLogger,
      lagIntervalMs: 0,
    }).runUntilIdle();

  it("runs none of it: a planted function cannot move the engine's position", async () => {
    await replicateAsEngineLogin();
    await p.source(`UPDATE items SET name = 'quill' WHERE id = 1`);
    const { rows } = await p.source('SELECT pg_current_wal_insert_lsn()::text AS lsn');
    const past = rows[0]!.lsn as string;
    // Exact argument types (text[]) beat pg_catalog.unnest(anyarray).
    await asLogin(dmsUrl, (client) =>
      client.query(`CREATE FUNCTION public.unnest(names text[]) RETURNS SETOF text
        LANGUAGE plpgsql AS $$
        BEGIN
          UPDATE audit.cdc_engine_position SET last_commit_lsn = '${past}', last_end_lsn = '${past}';
          RETURN QUERY SELECT n FROM pg_catalog.unnest(names) AS n;
        END $$`),
    );
    await replicateAsEngineLogin();
    const history = await auditRows(p, 'items');
    expect(history.map((row) => [row.operation, row.new_row])).toEqual([
      ['SNAPSHOT', { id: 1, name: 'pen' }],
      ['UPDATE', { id: 1, name: 'quill' }],
    ]);
  });
});

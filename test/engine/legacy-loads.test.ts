import { parseConfig, type AuditTrailConfig } from '../../src/config';
import { AuditTrailError } from '../../src/errors';
import { migrateTarget } from '../../src/migrate/migrate-target';
import { quoteIdent } from '../../src/postgres/identifiers';
import { grantSql } from '../../src/trust/grant';
import { kitRoles } from '../../src/trust/roles';
import { verifyAuditTrail } from '../../src/verify';
import { cdc, DmsApplier } from '../support/dms-apply';
import { withClient } from '../support/databases';
import { asLogin, createLogin } from '../trust/support';
import { createPipeline, type Pipeline } from './helpers';
import { errorOf } from '../support/settled';

const SOURCE = `CREATE TABLE a (id int PRIMARY KEY, v text);
  CREATE TABLE b (id int PRIMARY KEY, v text);
  INSERT INTO a VALUES (1, 'a1');
  INSERT INTO b VALUES (1, 'b1'), (2, 'b2');`;
const onlyA = { tables: [{ table: 'a' }] };
const both = parseConfig({ tables: [{ table: 'a' }, { table: 'b' }] });

/**
 * A slot an engine loaded before loads were recorded (migration 0007): an install that
 * upgrades from then has a loaded position, staging rows and their history, no record of
 * which tables were loaded, and 0007 applied after that history was recorded. Built here
 * from a current install: `a` loaded, its record taken away, 0007's applied time moved to
 * now.
 */
async function legacySlot(): Promise<Pipeline> {
  const p = await createPipeline(SOURCE, onlyA);
  await p.replicate();
  await p.target(`DELETE FROM audit.cdc_engine_loaded_table WHERE slot_name = $1`, [p.slotName]);
  // Migration 0013 gave the slots that existed then leaves_recorded = false.
  await p.target(
    `UPDATE audit.cdc_engine_position SET leaves_recorded = false WHERE slot_name = $1`,
    [p.slotName],
  );
  await p.target(
    `UPDATE audit.kysely_migration
        SET timestamp = to_char(clock_timestamp() AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')
      WHERE name = '0007-cdc-engine-loaded-table'`,
  );
  // Then the upgrade adds b to the config: migrate gives it an empty staging table.
  await migrateTarget({ config: both, sourceUrl: p.sourceUrl, targetUrl: p.targetUrl });
  return p;
}

/** A table's versions in the order they were recorded: operation and key. */
const history = async (p: Pipeline, table: string) =>
  (
    await p.target(
      `SELECT a.operation, (a.row_key ->> 'id')::int AS key FROM audit.audit_log AS a
        WHERE a.source_table = $1 ORDER BY a.id`,
      [table],
    )
  ).rows.map((row: { operation: string; key: number }) => [row.operation, row.key]);

const verify = (p: Pipeline, config: AuditTrailConfig = both) =>
  verifyAuditTrail({ config, sourceUrl: p.sourceUrl, targetUrl: p.targetUrl });

describe('engine: a slot from before loads were recorded', () => {
  const pipelines: Pipeline[] = [];
  afterAll(async () => {
    for (const p of pipelines) await p.dispose();
  });

  it('takes a table with history from before then as loaded, and loads a table with none (as a login with writer and engine)', async () => {
    const p = await legacySlot();
    pipelines.push(p);
    const login = await createLogin(p.targetUrl, 'engine_login');
    await p.target(grantSql(kitRoles(both), 'engine', login.name));
    const result = await p.replicate({ config: both, targetUrl: login.url });
    expect(result.initialLoadRows).toEqual({ 'public.b': 2 });
    expect(await history(p, 'a')).toEqual([['SNAPSHOT', 1]]);
    expect(await history(p, 'b')).toEqual([
      ['SNAPSHOT', 1],
      ['SNAPSHOT', 2],
    ]);
    const { rows } = await p.target(
      `SELECT source_table FROM audit.cdc_engine_loaded_table WHERE slot_name = $1 ORDER BY 1`,
      [p.slotName],
    );
    expect(rows).toEqual([{ source_table: 'a' }, { source_table: 'b' }]);
    expect((await verify(p)).ok).toBe(true);
  });

  // DMS's login (writer only) inserted one staging row into b before the new engine's first
  // start: the engine took b as loaded and never copied its rows, and said nothing.
  it('refuses a table whose staging rows have no history from before then, and loads it once reloaded', async () => {
    const p = await legacySlot();
    pipelines.push(p);
    const dms = await createLogin(p.targetUrl, 'dms_writer');
    await p.target(`GRANT ${quoteIdent(kitRoles(both).writer)} TO ${quoteIdent(dms.name)}`);
    await asLogin(dms.url, (client) =>
      new DmsApplier(client, 'audit', 'b', ['id']).insert(
        { id: '9', v: 'forged' },
        cdc('INSERT', '2026-11-23 10:00:00', 40),
      ),
    );
    const refused = await errorOf(p.replicate({ config: both }));
    expect(refused).toBeInstanceOf(AuditTrailError);
    const error = refused as AuditTrailError;
    expect(error.code).toBe('LOAD_NOT_RECORDED');
    expect(error.exitCode).toBe(1);
    expect(error.message).toBe(
      `replication slot "${p.slotName}" records no loaded table (an engine from before ` +
        'migration 0007-cdc-engine-loaded-table loaded it), and the staging table of public.b ' +
        'has rows but no audit row recorded before that migration: whether the engine loaded ' +
        "it cannot be told (a row written to staging since, by DMS's login or by hand, looks " +
        'the same); nothing was applied',
    );
    expect(error.hint).toBe(
      'reload public.b: remove it from the config, run audit-trail migrate, add it back and ' +
        'run migrate again; the engine then loads it, recording a SNAPSHOT for each row that ' +
        'differs from its history and a DELETE for each key the source does not have. If an ' +
        'engine did load every table that has staging rows, record that instead, as the ' +
        'target\'s administrator: INSERT INTO "audit"."cdc_engine_loaded_table" (slot_name, ' +
        `source_schema, source_table) VALUES ('${p.slotName}', 'public', 'a'), ` +
        `('${p.slotName}', 'public', 'b') ON CONFLICT DO NOTHING`,
    );
    // Nothing recorded, nothing loaded: the refusal holds at the next start too.
    const { rows } = await p.target(
      `SELECT count(*)::int AS n FROM audit.cdc_engine_loaded_table WHERE slot_name = $1`,
      [p.slotName],
    );
    expect(rows).toEqual([{ n: 0 }]);
    await expect(p.replicate({ config: both })).rejects.toMatchObject({
      code: 'LOAD_NOT_RECORDED',
    });
    expect(await history(p, 'b')).toEqual([['INSERT', 9]]);

    // The hint's reload.
    await migrateTarget({
      config: parseConfig(onlyA),
      sourceUrl: p.sourceUrl,
      targetUrl: p.targetUrl,
    });
    await migrateTarget({ config: both, sourceUrl: p.sourceUrl, targetUrl: p.targetUrl });
    const result = await p.replicate({ config: both });
    expect(result.initialLoadRows).toEqual({ 'public.b': 2 });
    expect(await history(p, 'a')).toEqual([['SNAPSHOT', 1]]);
    expect(await history(p, 'b')).toEqual([
      ['INSERT', 9],
      ['SNAPSHOT', 1],
      ['SNAPSHOT', 2],
      ['DELETE', 9],
    ]);
    expect((await verify(p)).ok).toBe(true);
  });

  // A slot an engine that records its loads wrote is never inferred: its records were
  // forgotten on purpose (every configured table removed and added back, each to be
  // reloaded), and a staging row DMS's login inserted before the next start must not
  // make the engine take the table as loaded (here its history is old enough to pass as
  // evidence: an install from before 0007).
  it('does not infer anything on a slot an engine that records loads wrote: a table added back is reloaded', async () => {
    const p = await createPipeline(SOURCE, onlyA);
    pipelines.push(p);
    await p.replicate();
    await p.target(
      `UPDATE audit.kysely_migration
          SET timestamp = to_char(clock_timestamp() AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')
        WHERE name = '0007-cdc-engine-loaded-table'`,
    );
    const onlyB = parseConfig({ tables: [{ table: 'b' }] });
    await migrateTarget({ config: onlyB, sourceUrl: p.sourceUrl, targetUrl: p.targetUrl });
    await migrateTarget({
      config: parseConfig(onlyA),
      sourceUrl: p.sourceUrl,
      targetUrl: p.targetUrl,
    });
    const dms = await createLogin(p.targetUrl, 'dms_writer');
    await p.target(`GRANT ${quoteIdent(kitRoles(both).writer)} TO ${quoteIdent(dms.name)}`);
    await asLogin(dms.url, (client) =>
      new DmsApplier(client, 'audit', 'a', ['id']).insert(
        { id: '9', v: 'forged' },
        cdc('INSERT', '2026-11-23 10:00:00', 40),
      ),
    );
    const result = await p.replicate({ config: parseConfig(onlyA) });
    expect(result.initialLoadRows).toEqual({ 'public.a': 1 });
    const report = await verify(p, parseConfig(onlyA));
    expect(report.tables.map((table) => table.reloadPending)).toEqual([undefined]);
  });

  it('takes the tables as loaded once the administrator records them (the other way out)', async () => {
    const p = await legacySlot();
    pipelines.push(p);
    // b's staging table got a row after the upgrade (as a change an older engine applied
    // while migrate ran): the operator knows every table was loaded.
    await p.target(
      `INSERT INTO audit.b_staging (id, v, ar_h_operation, ar_h_commit_timestamp, ar_h_change_seq)
       VALUES (1, 'b1', 'INSERT', '2026-11-23 10:00:00', '')`,
    );
    const refused = (await errorOf(p.replicate({ config: both }))) as AuditTrailError | null;
    const statement = /INSERT INTO .*$/.exec(refused?.hint ?? '')?.[0];
    expect(statement).toBeDefined();
    await withClient(p.targetUrl, (client) => client.query(statement!));
    const result = await p.replicate({ config: both });
    expect(result.initialLoadRows).toEqual({});
  });
});

import { PositionStore } from '../../src/engine/position-store';
import { quoteIdent } from '../../src/postgres/identifiers';
import { migrateTarget } from '../../src/migrate/migrate-target';
import { kitRoles } from '../../src/trust/roles';
import { withClient } from '../support/databases';
import { cdc, DmsApplier } from '../support/dms-apply';
import { asLogin, attempt, createLogin, installWithHistory, type Install } from './support';

const SLOT = 'slot_engine_role';

/** The engine's stored position and its record of what it loaded, as text. */
async function engineBookkeeping(install: Install): Promise<string[]> {
  return withClient(install.targetUrl, async (client) => {
    const rows: string[] = [];
    for (const table of [
      'cdc_engine_position',
      'cdc_engine_loaded_table',
      'cdc_engine_loaded_partition',
      'schema_change_position',
      'partition_change',
    ]) {
      const result = await client.query<{ r: string }>(
        `SELECT t::text AS r FROM audit.${quoteIdent(table)} AS t ORDER BY 1`,
      );
      rows.push(...result.rows.map((row) => `${table}: ${row.r}`));
    }
    return rows;
  });
}

/**
 * DMS's target login holds the kit's writer role: staging DML, what DMS needs. The local
 * engine's bookkeeping (its position, which tables and partitions it loaded, where it saw
 * each logged schema change) is the engine role's: a login with only the writer role that
 * moved the stored position forward within the WAL the source has written, or recorded a
 * table as loaded, made the engine skip changes silently.
 */
describe("the writer role (DMS's login) and the engine's bookkeeping", () => {
  let install: Install;
  let writerUrl: string;

  beforeAll(async () => {
    install = await installWithHistory();
    await withClient(install.targetUrl, (client) =>
      new PositionStore('audit', SLOT).write(client, {
        initialLoadDone: true,
        lastCommitLsn: 100n as never,
        lastEndLsn: 120n as never,
        lastSeqPrefix: '2026112211000000',
        lastSeqCounter: 7n,
      }),
    );
    // A logged column change, for a forged date of where the engine saw it.
    await withClient(install.targetUrl, (client) =>
      client.query(`INSERT INTO audit.schema_change (source_schema, source_table, change,
          column_name, new_definition, detected_by) VALUES ('public', 'items', 'ADD', 'note',
          '{"name": "note", "type": "text", "attnum": 3}', 'migrate')`),
    );
    const login = await createLogin(install.targetUrl, 'dms_writer');
    await withClient(install.targetUrl, (client) =>
      client.query(
        `GRANT ${quoteIdent(kitRoles(install.config).writer)} TO ${quoteIdent(login.name)}`,
      ),
    );
    writerUrl = login.url;
  });

  it('a login with only the writer role applies staging changes as DMS does', async () => {
    await asLogin(writerUrl, async (client) => {
      const dms = new DmsApplier(client, 'audit', 'items', ['id']);
      await dms.insert({ id: '40', name: 'forty' }, cdc('INSERT', '2026-11-23 10:00:00', 40));
      await dms.update({ id: '40' }, { name: 'XL' }, cdc('UPDATE', '2026-11-23 10:00:01', 41));
    });
    const { rows } = await withClient(install.targetUrl, (client) =>
      client.query<{ operation: string }>(
        `SELECT operation FROM audit.audit_log WHERE row_key = '{"id": 40}' ORDER BY id`,
      ),
    );
    expect(rows.map((row) => row.operation)).toEqual(['INSERT', 'UPDATE']);
  });

  it.each([
    [
      'move the stored position forward',
      `UPDATE audit.cdc_engine_position SET last_commit_lsn = '0/1000', last_end_lsn = '0/1000',
         acked_lsn = '0/1000' WHERE slot_name = '${SLOT}'`,
    ],
    [
      'insert a loaded position for another slot',
      `INSERT INTO audit.cdc_engine_position (slot_name, initial_load_done, last_commit_lsn, last_end_lsn)
         VALUES ('forged', true, '0/1000', '0/1000')`,
    ],
    [
      'record a table as loaded',
      `INSERT INTO audit.cdc_engine_loaded_table (slot_name, source_schema, source_table)
         VALUES ('${SLOT}', 'public', 'items')`,
    ],
    [
      'record a partition as loaded',
      `INSERT INTO audit.cdc_engine_loaded_partition
         (slot_name, source_schema, source_table, partition_schema, partition_name)
         VALUES ('${SLOT}', 'public', 'items', 'public', 'items_2026')`,
    ],
    [
      'date a logged column change',
      `INSERT INTO audit.schema_change_position (schema_change_id, slot_name, commit_lsn, commit_timestamp)
         SELECT max(id), '${SLOT}', '0/1', now() FROM audit.schema_change`,
    ],
    [
      'log a partition change',
      `INSERT INTO audit.partition_change (source_schema, source_table, partition_schema,
         partition_name, change, source_lsn, detected_by, slot_name)
         VALUES ('public', 'items', 'public', 'items_2026', 'DETACH', '0/1', 'engine', '${SLOT}')`,
    ],
  ])('may not %s', async (_, statement) => {
    const before = await engineBookkeeping(install);
    const refused = await attempt(() => asLogin(writerUrl, (client) => client.query(statement)));
    expect(refused?.message).toMatch(/^permission denied for table /);
    expect(await engineBookkeeping(install)).toEqual(before);
  });

  it('the engine role holds exactly its bookkeeping privileges, table by table and column by column', async () => {
    // Least privilege, read back from the catalog: what secureInstall granted the engine
    // role, and nothing more (its writer membership gives it staging DML, not this role).
    const engine = kitRoles(install.config).engine;
    const held = await withClient(install.targetUrl, async (client) => {
      const { rows } = await client.query<{ held: string }>(
        `WITH engine AS (SELECT oid FROM pg_catalog.pg_roles WHERE rolname = $1),
              kit AS (SELECT c.oid, c.relname, c.relacl FROM pg_catalog.pg_class AS c
                        JOIN pg_catalog.pg_namespace AS n ON n.oid = c.relnamespace
                       WHERE n.nspname = 'audit')
         SELECT kit.relname || ': ' || x.privilege_type AS held
           FROM kit, pg_catalog.aclexplode(kit.relacl) AS x
          WHERE x.grantee = (SELECT oid FROM engine)
         UNION ALL
         SELECT kit.relname || ' (' || a.attname || '): ' || x.privilege_type
           FROM kit JOIN pg_catalog.pg_attribute AS a ON a.attrelid = kit.oid AND a.attnum > 0,
                pg_catalog.aclexplode(a.attacl) AS x
          WHERE x.grantee = (SELECT oid FROM engine)
          ORDER BY 1`,
        [engine],
      );
      return rows.map((row) => row.held);
    });
    expect(held).toEqual([
      'audit_log (recorded_at): SELECT',
      'audit_log (source_schema): SELECT',
      'audit_log (source_table): SELECT',
      'audited_table (generated_columns): SELECT',
      'audited_table (source_schema): SELECT',
      'audited_table (source_table): SELECT',
      'cdc_engine_loaded_partition (attachment): UPDATE',
      'cdc_engine_loaded_partition (bound): UPDATE',
      'cdc_engine_loaded_partition (detached_at): UPDATE',
      'cdc_engine_loaded_partition: INSERT',
      'cdc_engine_loaded_partition: SELECT',
      'cdc_engine_loaded_table: INSERT',
      'cdc_engine_loaded_table: SELECT',
      'cdc_engine_position: INSERT',
      'cdc_engine_position: SELECT',
      'cdc_engine_position: UPDATE',
      'kysely_migration (name): SELECT',
      'kysely_migration (timestamp): SELECT',
      'partition_change: INSERT',
      'partition_change: SELECT',
      'schema_change: SELECT',
      'schema_change_id_seq: USAGE',
      'schema_change_position: INSERT',
      'schema_change_position: SELECT',
    ]);
  });

  it('a writer login granted the bookkeeping tables by mistake is still refused by their guard', async () => {
    const login = await createLogin(install.targetUrl, 'dms_granted');
    const who = quoteIdent(login.name);
    await withClient(install.targetUrl, (client) =>
      client.query(`GRANT ${quoteIdent(kitRoles(install.config).writer)} TO ${who};
        GRANT ALL ON audit.cdc_engine_position, audit.cdc_engine_loaded_table TO ${who}`),
    );
    const before = await engineBookkeeping(install);
    for (const statement of [
      `UPDATE audit.cdc_engine_position SET last_commit_lsn = '0/1000' WHERE slot_name = '${SLOT}'`,
      `INSERT INTO audit.cdc_engine_loaded_table (slot_name, source_schema, source_table)
         VALUES ('${SLOT}', 'public', 'items')`,
    ]) {
      const refused = await attempt(() => asLogin(login.url, (client) => client.query(statement)));
      expect(refused?.message, statement).toMatch(
        /^audit\.cdc_engine_(position|loaded_table) belongs to the audit-trail kit: (UPDATE|INSERT) is not allowed/,
      );
      expect((refused as { hint?: string }).hint).toBe(
        "Only the kit's roles (audit_owner, audit_engine) may write it.",
      );
    }
    expect(await engineBookkeeping(install)).toEqual(before);
  });
});

/** What each of `role`'s privileges on the engine's bookkeeping is, as `has_*_privilege` says. */
async function engineObjectPrivileges(
  targetUrl: string,
  role: string,
): Promise<Record<string, boolean>> {
  return withClient(targetUrl, async (client) => {
    const { rows } = await client.query<{ privileges: Record<string, boolean> }>(
      `SELECT jsonb_build_object(
         'position', has_table_privilege($1, 'audit.cdc_engine_position', 'SELECT, INSERT, UPDATE'),
         'loaded table', has_table_privilege($1, 'audit.cdc_engine_loaded_table', 'SELECT, INSERT'),
         'loaded partition', has_table_privilege($1, 'audit.cdc_engine_loaded_partition', 'SELECT, INSERT'),
         'loaded partition detached_at', has_column_privilege($1, 'audit.cdc_engine_loaded_partition', 'detached_at', 'UPDATE'),
         'schema change position', has_table_privilege($1, 'audit.schema_change_position', 'SELECT, INSERT'),
         'partition change', has_table_privilege($1, 'audit.partition_change', 'SELECT, INSERT'),
         'schema change ids', has_sequence_privilege($1, pg_get_serial_sequence('audit.schema_change', 'id'), 'USAGE'),
         'schema change', has_table_privilege($1, 'audit.schema_change', 'SELECT'),
         'generated columns', has_column_privilege($1, 'audit.audited_table', 'generated_columns', 'SELECT')
       ) AS privileges`,
      [role],
    );
    return rows[0]!.privileges;
  });
}

describe('migration 0027 on a target installed before it', () => {
  it("moves the engine's bookkeeping from the writer role to the engine role", async () => {
    const install = await installWithHistory();
    const { writer, engine } = kitRoles(install.config);
    // The target as migrate left it before 0027: writer held the engine's bookkeeping
    // (secureInstall's grants then), the engine role held nothing, and 0027 not run.
    await withClient(install.targetUrl, (client) =>
      client.query(`REVOKE ALL ON audit.cdc_engine_position, audit.cdc_engine_loaded_table,
          audit.cdc_engine_loaded_partition, audit.schema_change_position, audit.partition_change,
          audit.schema_change, audit.audited_table FROM ${quoteIdent(engine)};
        REVOKE ALL ON SEQUENCE audit.schema_change_id_seq FROM ${quoteIdent(engine)};
        GRANT SELECT, INSERT, UPDATE ON audit.cdc_engine_position TO ${quoteIdent(writer)};
        GRANT SELECT, INSERT ON audit.cdc_engine_loaded_table, audit.cdc_engine_loaded_partition,
          audit.schema_change_position, audit.partition_change TO ${quoteIdent(writer)};
        GRANT UPDATE (attachment, bound, detached_at) ON audit.cdc_engine_loaded_partition TO ${quoteIdent(writer)};
        GRANT USAGE ON SEQUENCE audit.schema_change_id_seq TO ${quoteIdent(writer)};
        GRANT SELECT ON audit.schema_change TO ${quoteIdent(writer)};
        GRANT SELECT (source_schema, source_table, generated_columns) ON audit.audited_table TO ${quoteIdent(writer)};
        DELETE FROM audit.kysely_migration WHERE name = '0027-engine-role'`),
    );
    const everything = Object.fromEntries(
      Object.keys(await engineObjectPrivileges(install.targetUrl, writer)).map((k) => [k, true]),
    );
    const nothing = Object.fromEntries(Object.keys(everything).map((k) => [k, false]));
    expect(await engineObjectPrivileges(install.targetUrl, writer)).toEqual(everything);
    expect(await engineObjectPrivileges(install.targetUrl, engine)).toEqual(nothing);

    const report = await migrateTarget({
      config: install.config,
      sourceUrl: install.sourceUrl,
      targetUrl: install.targetUrl,
    });
    expect(report.applied).toEqual(['0027-engine-role']);
    expect(await engineObjectPrivileges(install.targetUrl, writer)).toEqual(nothing);
    expect(await engineObjectPrivileges(install.targetUrl, engine)).toEqual(everything);
    // Staging DML and the reload's end stay the writer's (DMS's `reload finish`).
    const kept = await withClient(install.targetUrl, (client) =>
      client.query<{ staging: boolean; baseline: boolean; finish: boolean }>(
        `SELECT has_table_privilege($1, 'audit.items_staging', 'SELECT, INSERT, UPDATE, DELETE') AS staging,
                has_table_privilege($1, 'audit.reload_baseline', 'SELECT') AS baseline,
                has_function_privilege($1, 'audit.finish_reload(text, text, timestamp)', 'EXECUTE') AS finish`,
        [writer],
      ),
    );
    expect(kept.rows[0]).toEqual({ staging: true, baseline: true, finish: true });
  });
  it('a writer that granted the bookkeeping on (WITH GRANT OPTION) stops 0027 with what to revoke', async () => {
    const install = await installWithHistory();
    const { writer, owner } = kitRoles(install.config);
    const login = await createLogin(install.targetUrl, 'granted_on');
    // A DBA gave writer a bookkeeping privilege with the grant option before 0027, and
    // writer passed it on to a login: REVOKE ALL from writer would strand that grant.
    await withClient(install.targetUrl, (client) =>
      client.query(`GRANT INSERT ON audit.cdc_engine_loaded_table TO ${quoteIdent(writer)} WITH GRANT OPTION;
        SET ROLE ${quoteIdent(writer)};
        GRANT INSERT ON audit.cdc_engine_loaded_table TO ${quoteIdent(login.name)};
        RESET ROLE;
        DELETE FROM audit.kysely_migration WHERE name = '0027-engine-role'`),
    );
    const refused = await attempt(() =>
      migrateTarget({
        config: install.config,
        sourceUrl: install.sourceUrl,
        targetUrl: install.targetUrl,
      }),
    );
    expect(refused?.message).toBe('migration 0027-engine-role failed: dependent privileges exist');
    expect((refused as { hint?: string }).hint).toBe(
      'a role passed on a privilege on a kit object it held WITH GRANT OPTION; list those grants with ' +
        `SELECT grantor, grantee, table_name, privilege_type FROM information_schema.table_privileges WHERE table_schema = 'audit' AND grantor <> '${owner}', ` +
        "revoke them (or the grant option, REVOKE GRANT OPTION FOR ... CASCADE) as the target's administrator, then migrate again",
    );
    // What the hint says, then migrate: 0027 runs.
    await withClient(install.targetUrl, (client) =>
      client.query(
        `REVOKE GRANT OPTION FOR ALL ON audit.cdc_engine_loaded_table FROM ${quoteIdent(writer)} CASCADE`,
      ),
    );
    const report = await migrateTarget({
      config: install.config,
      sourceUrl: install.sourceUrl,
      targetUrl: install.targetUrl,
    });
    expect(report.applied).toEqual(['0027-engine-role']);
  });
});

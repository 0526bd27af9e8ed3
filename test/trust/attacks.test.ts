import { quoteIdent } from '../../src/postgres/identifiers';
import { PositionStore } from '../../src/engine/position-store';
import { withClient } from '../support/databases';
import { cdc, DmsApplier } from '../support/dms-apply';
import {
  asLogin,
  attempt,
  auditFunctions,
  auditRows,
  createLogin,
  installWithHistory,
  type Install,
} from './support';

// Each attack is run as the attacker would run it: connected as an ordinary login with
// the privileges the README (or a careless DBA) gives it, never as a superuser.

const HEADER_DDL = `ar_h_operation varchar(16), ar_h_commit_timestamp timestamp(6),
  ar_h_change_seq varchar(35), ar_h_transaction_id varchar(64),
  ar_h_stream_position varchar(64), ar_h_indicator varchar(1)`;
const TRIGGER_ARGS = `'public', 'items', '{"id"}', '{"ar_h_operation","ar_h_commit_timestamp","ar_h_change_seq","ar_h_transaction_id","ar_h_stream_position","ar_h_indicator"}'`;

/**
 * The forgery a login tries with capture_insert: a TEMP table shaped like a staging
 * table, the capture trigger on it, and a row inserted: a forged audit row for items.
 */
async function forgeThroughTempTable(url: string): Promise<void> {
  await asLogin(url, async (client) => {
    await client.query(`CREATE TEMP TABLE fake (id int PRIMARY KEY, name text, ${HEADER_DDL})`);
    await client.query(`CREATE TRIGGER forge AFTER INSERT ON fake REFERENCING NEW TABLE AS new_rows
      FOR EACH STATEMENT EXECUTE FUNCTION audit.capture_insert(${TRIGGER_ARGS})`);
    await client.query(`INSERT INTO fake VALUES (666, 'forged', 'INSERT', '2020-01-01',
      '20200101000000000000000000000000666', '42', '0/1', 'I')`);
  });
}

/** A reader as the README says to make one, plus the kit's reader role when it exists. */
async function reader(install: Install): Promise<{ name: string; url: string }> {
  const login = await createLogin(install.targetUrl, 'reader');
  await withClient(install.targetUrl, async (client) => {
    const who = quoteIdent(login.name);
    await client.query(`GRANT USAGE ON SCHEMA audit TO ${who}; GRANT SELECT ON audit.audit_log TO ${who};
      CREATE SCHEMA AUTHORIZATION ${who}`);
    const kitReader = await client.query(`SELECT 1 FROM pg_roles WHERE rolname = 'audit_reader'`);
    if (kitReader.rowCount) await client.query(`GRANT audit_reader TO ${who}`);
  });
  return login;
}

async function apply(install: Install, name: string, xid: number): Promise<void> {
  await withClient(install.targetUrl, (client) =>
    new DmsApplier(client, 'audit', 'items', ['id']).insert(
      { id: String(100 + xid), name },
      cdc('INSERT', '2026-11-22 11:00:00', xid),
    ),
  );
}

describe('attacks on the target side', () => {
  let install: Install;
  beforeAll(async () => {
    install = await installWithHistory();
  });

  it('a reader cannot borrow capture_insert on a TEMP table to forge history', async () => {
    const before = await auditRows(install.targetUrl);
    const login = await reader(install);
    const error = await attempt(() => forgeThroughTempTable(login.url));
    expect(error?.message).toMatch(/permission denied for function audit\.capture_insert/);
    expect(await auditRows(install.targetUrl)).toEqual(before);
  });

  it('even with EXECUTE granted by mistake, a capture function refuses a table it does not capture', async () => {
    const before = await auditRows(install.targetUrl);
    const login = await reader(install);
    await withClient(install.targetUrl, (client) =>
      client.query(`GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA audit TO ${quoteIdent(login.name)}`),
    );
    const error = await attempt(() => forgeThroughTempTable(login.url));
    expect(error?.message).toMatch(
      /fake is not a staging table registered in "audit"\.audited_table/,
    );
    expect(await auditRows(install.targetUrl)).toEqual(before);
  });

  it("an enum with an assignment cast in a header column never runs the reader's code as the definer", async () => {
    const before = await auditRows(install.targetUrl);
    const login = await reader(install);
    const schema = quoteIdent(login.name);
    const error = await attempt(() =>
      asLogin(login.url, async (client) => {
        await client.query(
          `CREATE TYPE ${schema}.seq AS ENUM ('', '20200101000000000000000000000000666')`,
        );
        await client.query(`CREATE FUNCTION ${schema}.seq_text(${schema}.seq) RETURNS varchar
          LANGUAGE plpgsql AS $$
          BEGIN
            DELETE FROM audit.audit_log WHERE row_key = '{"id": 2}';
            EXECUTE 'CREATE FUNCTION audit.backdoor() RETURNS int LANGUAGE sql SECURITY DEFINER AS ''SELECT 1''';
            RETURN $1::text;
          END $$`);
        await client.query(
          `CREATE CAST (${schema}.seq AS varchar) WITH FUNCTION ${schema}.seq_text(${schema}.seq) AS ASSIGNMENT`,
        );
        await client.query(`CREATE TEMP TABLE fake (id int PRIMARY KEY, name text,
          ar_h_operation varchar(16), ar_h_commit_timestamp timestamp(6), ar_h_change_seq ${schema}.seq,
          ar_h_transaction_id varchar(64), ar_h_stream_position varchar(64), ar_h_indicator varchar(1))`);
        await client.query(`CREATE TRIGGER forge AFTER INSERT ON fake REFERENCING NEW TABLE AS new_rows
          FOR EACH STATEMENT EXECUTE FUNCTION audit.capture_insert(${TRIGGER_ARGS})`);
        await client.query(`INSERT INTO fake VALUES (666, 'forged', 'INSERT', '2020-01-01',
          '20200101000000000000000000000000666', '42', '0/1', 'I')`);
      }),
    );
    expect(error).toBeDefined();
    expect(await auditFunctions(install.targetUrl)).not.toContain('backdoor');
    expect(await auditRows(install.targetUrl)).toEqual(before);
  });

  it('the TRIGGER privilege on the audit log (GRANT ALL) does not run foreign code inside capture', async () => {
    const login = await createLogin(install.targetUrl, 'app');
    const who = quoteIdent(login.name);
    await withClient(install.targetUrl, (client) =>
      client.query(`GRANT USAGE ON SCHEMA audit TO ${who}; GRANT ALL ON audit.audit_log TO ${who};
        CREATE SCHEMA AUTHORIZATION ${who}`),
    );
    const planted = await attempt(() =>
      asLogin(login.url, async (client) => {
        await client.query(`CREATE FUNCTION ${who}.steal() RETURNS trigger LANGUAGE plpgsql AS $$
          BEGIN
            DELETE FROM audit.audit_log WHERE row_key = '{"id": 2}';
            EXECUTE 'CREATE FUNCTION audit.backdoor() RETURNS int LANGUAGE sql SECURITY DEFINER AS ''SELECT 1''';
            RETURN NEW;
          END $$`);
        await client.query(`GRANT EXECUTE ON FUNCTION ${who}.steal() TO PUBLIC`);
        await client.query(`CREATE TRIGGER zz_steal BEFORE INSERT ON audit.audit_log
          FOR EACH ROW EXECUTE FUNCTION ${who}.steal()`);
      }),
    );
    const before = await auditRows(install.targetUrl);
    // The next change DMS applies fires the capture trigger.
    const applied = await attempt(() => apply(install, 'after-trigger', 50));
    // PostgreSQL lets the TRIGGER privilege attach it; the capture path refuses to run it.
    expect(planted).toBeUndefined();
    expect(applied?.message).toMatch(
      /foreign trigger zz_steal on audit\.audit_log would run inside the capture path/,
    );
    expect(await auditFunctions(install.targetUrl)).not.toContain('backdoor');
    expect(await auditRows(install.targetUrl)).toEqual(before);
    await withClient(install.targetUrl, (client) =>
      client.query('DROP TRIGGER IF EXISTS zz_steal ON audit.audit_log'),
    );
  });

  it('a member of the owner role does not pass the append-only guard', async () => {
    const before = await auditRows(install.targetUrl);
    const login = await createLogin(install.targetUrl, 'member');
    const owner = await withClient(install.targetUrl, async (client) => {
      const { rows } = await client.query<{ owner: string }>(
        `SELECT pg_get_userbyid(relowner) AS owner FROM pg_class WHERE oid = 'audit.audit_log'::regclass`,
      );
      const name = rows[0]!.owner;
      await client.query(`GRANT ${quoteIdent(name)} TO ${quoteIdent(login.name)}`);
      return name;
    });
    for (const statement of [
      `DELETE FROM audit.audit_log WHERE row_key = '{"id": 2}'`,
      `UPDATE audit.audit_log SET new_row = '{"id": 1, "name": "forged"}' WHERE row_key = '{"id": 1}'`,
      'TRUNCATE audit.audit_log',
    ]) {
      const error = await attempt(() =>
        asLogin(login.url, async (client) => {
          await client.query(`SET ROLE ${quoteIdent(owner)}`);
          await client.query(statement);
        }),
      );
      expect(error?.message, statement).toMatch(/append-only|permission denied/);
    }
    expect(await auditRows(install.targetUrl)).toEqual(before);
  });

  it('every row of every kit table survives a login granted ALL on the audit schema', async () => {
    await withClient(install.targetUrl, async (client) => {
      const store = new PositionStore('audit', 'slot_attack');
      await store.write(client, {
        initialLoadDone: true,
        lastCommitLsn: 100n as never,
        lastEndLsn: 120n as never,
        lastSeqPrefix: '2026112211000000',
        lastSeqCounter: 7n,
      });
      // A logged column change and where the engine saw it first (#17 item 21).
      await client.query(`INSERT INTO audit.schema_change (source_schema, source_table, change,
          column_name, new_definition, detected_by) VALUES ('public', 'items', 'ADD', 'note',
          '{"name": "note", "type": "text", "attnum": 3}', 'migrate')`);
      await client.query(`INSERT INTO audit.schema_change_position
          (schema_change_id, slot_name, commit_lsn, commit_timestamp)
          SELECT max(id), 'slot_attack', '0/100', '2026-11-22 11:00:00+00' FROM audit.schema_change`);
    });
    const kitTables = await withClient(install.targetUrl, async (client) => {
      const { rows } = await client.query<{ name: string }>(
        `SELECT c.relname AS name FROM pg_class c
          WHERE c.relnamespace = 'audit'::regnamespace AND c.relkind IN ('r', 'p')
            AND c.oid NOT IN (SELECT staging_table FROM audit.audited_table) ORDER BY 1`,
      );
      return rows.map((row) => row.name);
    });
    expect(kitTables).toEqual(
      expect.arrayContaining([
        'audit_log',
        'audited_table',
        'cdc_engine_position',
        'schema_change',
        'schema_change_position',
      ]),
    );
    expect(kitTables.some((name) => name.startsWith('kysely_migration'))).toBe(true);
    const snapshot = () =>
      withClient(install.targetUrl, async (client) => {
        const tables: Record<string, string[]> = {};
        for (const table of kitTables) {
          const { rows } = await client.query<{ r: string }>(
            `SELECT t::text AS r FROM audit.${quoteIdent(table)} AS t ORDER BY 1`,
          );
          tables[table] = rows.map((row) => row.r);
        }
        return tables;
      });
    const before = await snapshot();
    const login = await createLogin(install.targetUrl, 'dba');
    const who = quoteIdent(login.name);
    await withClient(install.targetUrl, (client) =>
      client.query(`GRANT ALL ON SCHEMA audit TO ${who};
        GRANT ALL ON ALL TABLES IN SCHEMA audit TO ${who};
        GRANT ALL ON ALL SEQUENCES IN SCHEMA audit TO ${who}`),
    );
    await asLogin(login.url, async (client) => {
      for (const table of kitTables) {
        const name = `audit.${quoteIdent(table)}`;
        const { rows } = await client.query<{ column: string }>(
          `SELECT attname AS column FROM pg_attribute WHERE attrelid = $1::regclass AND attnum > 0
             AND NOT attisdropped AND attidentity = '' AND attgenerated = '' ORDER BY attnum LIMIT 1`,
          [name],
        );
        const column = quoteIdent(rows[0]!.column);
        for (const statement of [
          `DELETE FROM ${name}`,
          `UPDATE ${name} SET ${column} = ${column}`,
          `TRUNCATE ${name} CASCADE`,
        ]) {
          const error = await attempt(() => client.query(statement));
          expect(error, `${statement} succeeded`).toBeDefined();
        }
      }
      // Nor may it date a column change: only the engine role records positions.
      const forged = await attempt(() =>
        client.query(`INSERT INTO audit.schema_change_position (schema_change_id, slot_name,
            commit_lsn, commit_timestamp) SELECT id, 'forged', '0/1', now() FROM audit.schema_change`),
      );
      expect(forged?.message).toMatch(/belongs to the audit-trail kit/);
    });
    expect(await snapshot()).toEqual(before);
  });

  // #17 item 19: a pending reload's prior baseline decides which full-load rows become
  // versions and which keys get a DELETE at its end.
  describe('the reload of a table added back', () => {
    const plantBaseline = () =>
      withClient(install.targetUrl, (client) =>
        client.query(`INSERT INTO audit.reload_baseline (source_schema, source_table, row_key, row_data)
          VALUES ('public', 'items', '{"id": 2}', '{"id": 2, "name": "two"}')`),
      );
    const baselineRows = () =>
      withClient(install.targetUrl, async (client) => {
        const { rows } = await client.query<{ n: number }>(
          'SELECT count(*)::int AS n FROM audit.reload_baseline',
        );
        return rows[0]!.n;
      });
    afterEach(() =>
      withClient(install.targetUrl, (client) => client.query('DELETE FROM audit.reload_baseline')),
    );

    it('a reader cannot end it early (DELETE versions), even with EXECUTE granted by mistake', async () => {
      await plantBaseline();
      const before = await auditRows(install.targetUrl);
      const login = await reader(install);
      const denied = await attempt(() =>
        asLogin(login.url, (client) =>
          client.query(`SELECT audit.finish_reload('public', 'items', NULL)`),
        ),
      );
      expect(denied?.message).toMatch(/permission denied for function finish_reload/);
      await withClient(install.targetUrl, (client) =>
        client.query(`GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA audit TO ${quoteIdent(login.name)}`),
      );
      const refused = await attempt(() =>
        asLogin(login.url, (client) =>
          client.query(`SELECT audit.finish_reload('public', 'items', NULL)`),
        ),
      );
      expect(refused?.message).toMatch(
        /finish_reload refused: .* may not write audit\.items_staging/,
      );
      expect(await auditRows(install.targetUrl)).toEqual(before);
      expect(await baselineRows()).toBe(1);
    });

    it('the writer cannot plant or change a baseline, nor mark keys reloaded itself', async () => {
      const login = await createLogin(install.targetUrl, 'writer');
      await withClient(install.targetUrl, (client) =>
        client.query(`GRANT audit_writer TO ${quoteIdent(login.name)}`),
      );
      const planted = await attempt(() =>
        asLogin(login.url, (client) =>
          client.query(`INSERT INTO audit.reload_baseline (source_schema, source_table, row_key, row_data)
            VALUES ('public', 'items', '{"id": 1}', '{"id": 1, "name": "uno"}')`),
        ),
      );
      expect(planted?.message).toMatch(/permission denied for table reload_baseline/);
      await plantBaseline();
      const marked = await attempt(() =>
        asLogin(login.url, (client) =>
          client.query(
            `SELECT audit.reload_unchanged('public', 'items', '{"id": 2}', '{"id": 2, "name": "two"}', NULL, now()::timestamp)`,
          ),
        ),
      );
      expect(marked?.message).toMatch(/permission denied for function reload_unchanged/);
      // Ending the reload is the writer's to do (the engine does, at the end of its load).
      const before = await auditRows(install.targetUrl);
      const ended = await asLogin(login.url, async (client) => {
        const { rows } = await client.query<{ n: number }>(
          `SELECT audit.finish_reload('public', 'items', NULL) AS n`,
        );
        return rows[0]!.n;
      });
      expect(ended).toBe(1);
      expect(await auditRows(install.targetUrl)).toHaveLength(before.length + 1);
      expect(await baselineRows()).toBe(0);
    });
  });
});

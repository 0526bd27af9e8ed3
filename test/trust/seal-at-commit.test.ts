import pg from 'pg';
import { quoteIdent } from '../../src/postgres/identifiers';
import { verifyIntegrity } from '../../src/trust/integrity';
import { withClient } from '../support/databases';
import { cdc, changeSeq, DmsApplier } from '../support/dms-apply';
import {
  asLogin,
  attempt,
  auditFunctions,
  auditRows,
  createLogin,
  installWithHistory,
  type Install,
} from './support';

const verify = (install: Install) =>
  verifyIntegrity({ targetUrl: install.targetUrl, auditSchema: 'audit' });

/** Runs `work` in one transaction on its own connection, as one DMS apply transaction. */
async function inTransaction(
  url: string,
  work: (dms: DmsApplier, client: pg.Client) => Promise<void>,
): Promise<void> {
  await withClient(url, async (client) => {
    await client.query('BEGIN');
    try {
      await work(new DmsApplier(client, 'audit', 'items', ['id']), client);
      await client.query('COMMIT');
    } catch (error) {
      await client.query('ROLLBACK').catch(() => undefined);
      throw error;
    }
  });
}

/**
 * DMS applies one row per statement: a chain block per statement cost more than the
 * change itself. The chain is sealed once per applying transaction instead, at commit,
 * inside the capture role's rights and the chain lock the transaction already holds.
 */
describe('the hash chain is sealed once per transaction, at commit', () => {
  it('one DMS transaction of one-row statements is one block; verify is clean', async () => {
    const install = await installWithHistory();
    const before = await verify(install);
    await inTransaction(install.targetUrl, async (dms) => {
      for (const id of ['20', '21', '22'])
        await dms.insert({ id, name: 'new' }, cdc('INSERT', '2026-11-22 12:00:00', Number(id)));
      await dms.update({ id: '20' }, { name: 'newer' }, cdc('UPDATE', '2026-11-22 12:00:01', 30));
      // A replay inside the same transaction adds nothing.
      await dms.update({ id: '20' }, { name: 'newer' }, cdc('UPDATE', '2026-11-22 12:00:01', 30));
      await dms.delete({ id: '21' }, cdc('DELETE', '2026-11-22 12:00:02', 31));
    });
    const after = await verify(install);
    expect(after).toMatchObject({
      ok: true,
      findingCount: 0,
      rows: before.rows + 5,
      blocks: before.blocks + 1,
    });
  });

  /**
   * The engine inserts with INSERT ... ON CONFLICT ... DO UPDATE (a key flagged deleted
   * comes back), which fires the staging UPDATE statement trigger too, with no row when
   * every key is new: capture_update then has nothing to record and nothing to seal.
   * Counted by the server (track_functions): one seal for the statement's rows, not one
   * more (empty) pass of the update side's set query and seal.
   */
  it('an INSERT ... ON CONFLICT of new keys seals its rows once: the empty UPDATE side runs no seal', async () => {
    const install = await installWithHistory();
    const before = await verify(install);
    const calls: Record<string, number> = {};
    await inTransaction(install.targetUrl, async (_dms, client) => {
      await client.query(`SET LOCAL track_functions = 'pl'`);
      await client.query(
        `INSERT INTO audit.items_staging AS s (id, name, ar_h_operation, ar_h_commit_timestamp,
           ar_h_change_seq, ar_h_transaction_id, ar_h_stream_position, ar_h_indicator)
         VALUES (90, 'a', 'INSERT', '2026-11-22 12:00:00', $1, '90', '0/1', 'I'),
                (91, 'b', 'INSERT', '2026-11-22 12:00:00', $2, '90', '0/1', 'I')
         ON CONFLICT (id) DO UPDATE SET name = EXCLUDED.name,
           ar_h_operation = EXCLUDED.ar_h_operation, ar_h_commit_timestamp = EXCLUDED.ar_h_commit_timestamp,
           ar_h_change_seq = EXCLUDED.ar_h_change_seq, ar_h_transaction_id = EXCLUDED.ar_h_transaction_id,
           ar_h_stream_position = EXCLUDED.ar_h_stream_position, ar_h_indicator = EXCLUDED.ar_h_indicator`,
        [changeSeq('2026-11-22 12:00:00'), changeSeq('2026-11-22 12:00:00')],
      );
      const { rows } = await client.query<{ funcname: string; calls: string }>(
        `SELECT funcname, calls::text FROM pg_catalog.pg_stat_xact_user_functions
          WHERE schemaname = 'audit' AND funcname IN ('capture_insert', 'capture_update', 'seal_blocks')`,
      );
      for (const row of rows) calls[row.funcname] = Number(row.calls);
    });
    // Both statement triggers fired; only the insert side had rows to record and seal.
    expect(calls).toEqual({ capture_insert: 1, capture_update: 1, seal_blocks: 1 });
    expect(await verify(install)).toMatchObject({
      ok: true,
      findingCount: 0,
      rows: before.rows + 2,
      blocks: before.blocks + 1,
    });
  });

  it('seals what SET CONSTRAINTS ALL IMMEDIATE fired early, and the rest at commit', async () => {
    const install = await installWithHistory();
    const before = await verify(install);
    await inTransaction(install.targetUrl, async (dms, client) => {
      await dms.insert({ id: '40' }, cdc('INSERT', '2026-11-22 12:00:00', 40));
      await client.query('SET CONSTRAINTS ALL IMMEDIATE');
      await client.query('SET CONSTRAINTS ALL DEFERRED');
      await dms.insert({ id: '41' }, cdc('INSERT', '2026-11-22 12:00:01', 41));
    });
    expect(await verify(install)).toMatchObject({
      ok: true,
      findingCount: 0,
      rows: before.rows + 2,
      blocks: before.blocks + 2,
    });
  });

  it('seals under session_replication_role = replica (DMS on RDS applies with it)', async () => {
    const install = await installWithHistory();
    const before = await verify(install);
    await inTransaction(install.targetUrl, async (dms, client) => {
      await client.query('SET LOCAL session_replication_role = replica');
      await dms.insert({ id: '50' }, cdc('INSERT', '2026-11-22 12:00:00', 50));
      await dms.insert({ id: '51' }, cdc('INSERT', '2026-11-22 12:00:01', 51));
    });
    expect(await verify(install)).toMatchObject({
      ok: true,
      findingCount: 0,
      rows: before.rows + 2,
      blocks: before.blocks + 1,
    });
  });

  it('a trigger planted on the chain after a capture in the same transaction never runs as the capture role', async () => {
    const install = await installWithHistory();
    const login = await createLogin(install.targetUrl, 'writer');
    const who = quoteIdent(login.name);
    // A writer (DMS's login) that a careless DBA also granted ALL on the chain table.
    await withClient(install.targetUrl, (client) =>
      client.query(`GRANT audit_writer TO ${who}; GRANT ALL ON audit.audit_chain TO ${who};
        CREATE SCHEMA AUTHORIZATION ${who}`),
    );
    const before = await auditRows(install.targetUrl);
    const outcome = await attempt(() =>
      asLogin(login.url, async (client) => {
        await client.query(`CREATE FUNCTION ${who}.steal() RETURNS trigger LANGUAGE plpgsql AS $$
          BEGIN
            INSERT INTO audit.audit_log (source_schema, source_table, row_key, operation,
              commit_timestamp, change_seq, new_row)
            VALUES ('public', 'items', '{"id": 666}', 'INSERT', now(), 'forged', '{}');
            EXECUTE 'CREATE FUNCTION audit.backdoor() RETURNS int LANGUAGE sql SECURITY DEFINER AS ''SELECT 1''';
            RETURN NEW;
          END $$`);
        await client.query(`GRANT EXECUTE ON FUNCTION ${who}.steal() TO PUBLIC`);
        await client.query('BEGIN');
        await new DmsApplier(client, 'audit', 'items', ['id']).insert(
          { id: '60', name: 'applied' },
          cdc('INSERT', '2026-11-22 12:00:00', 60),
        );
        // Its own transaction holds the lock that keeps other sessions' DDL out.
        await client.query(`CREATE TRIGGER zz_steal BEFORE INSERT ON audit.audit_chain
          FOR EACH ROW EXECUTE FUNCTION ${who}.steal()`);
        await client.query('COMMIT');
      }),
    );
    expect(outcome?.message).toMatch(
      /foreign trigger zz_steal on audit\.audit_chain would run inside the capture path/,
    );
    expect(await auditFunctions(install.targetUrl)).not.toContain('backdoor');
    expect(await auditRows(install.targetUrl)).toEqual(before);
    expect(await verify(install)).toMatchObject({ ok: true, findingCount: 0 });
  });

  it('the setting a caller may set changes nothing: every row is sealed at commit or at once', async () => {
    const install = await installWithHistory();
    const before = await verify(install);
    // "off" before one-row statements: their rows are still sealed at commit.
    await inTransaction(install.targetUrl, async (dms, client) => {
      await client.query(`SET LOCAL audit_trail.seal_at_commit = 'off'`);
      await dms.insert({ id: '70' }, cdc('INSERT', '2026-11-22 12:00:00', 70));
      await client.query(`SELECT set_config('audit_trail.seal_at_commit', 'off', true)`);
      await dms.insert({ id: '71' }, cdc('INSERT', '2026-11-22 12:00:01', 71));
    });
    // "on" before a multi-row statement: it seals its rows itself, as before.
    await inTransaction(install.targetUrl, async (_dms, client) => {
      await client.query(`SET LOCAL audit_trail.seal_at_commit = 'on'`);
      await client.query(
        `INSERT INTO audit.items_staging (id, ar_h_operation, ar_h_commit_timestamp,
           ar_h_change_seq, ar_h_transaction_id, ar_h_stream_position, ar_h_indicator)
         VALUES (72, 'INSERT', '2026-11-22 12:00:02', $1, '72', '0/1', 'I'),
                (73, 'INSERT', '2026-11-22 12:00:03', $2, '73', '0/2', 'I')`,
        [changeSeq('2026-11-22 12:00:02'), changeSeq('2026-11-22 12:00:03')],
      );
    });
    expect(await verify(install)).toMatchObject({
      ok: true,
      findingCount: 0,
      rows: before.rows + 4,
      blocks: before.blocks + 2,
    });
  });

  /**
   * The seal is queued by the first audit row of a transaction that no seal covers yet
   * (seal_queued), not by every row: a transaction of ten one-row statements fires
   * seal_at_commit once. Counted by the server (track_functions) as SET CONSTRAINTS ALL
   * IMMEDIATE fires the queued events.
   */
  it('queues one seal per transaction of one-row statements, not one per audit row', async () => {
    const install = await installWithHistory();
    const before = await verify(install);
    let firings = -1;
    const settingsAfter: (string | null)[] = [];
    await inTransaction(install.targetUrl, async (dms, client) => {
      await client.query(`SET LOCAL track_functions = 'pl'`);
      const setting = async () =>
        (
          await client.query<{ value: string | null }>(
            `SELECT pg_catalog.current_setting('audit_trail.seal_at_commit', true) AS value`,
          )
        ).rows[0]!.value;
      for (let id = 80; id < 85; id += 1) {
        await dms.insert({ id: String(id), name: 'new' }, cdc('INSERT', '2026-11-22 12:00:00', id));
        settingsAfter.push(await setting());
        await dms.update(
          { id: String(id) },
          { name: 'newer' },
          cdc('UPDATE', '2026-11-22 12:00:01', id),
        );
        settingsAfter.push(await setting());
      }
      await client.query('SET CONSTRAINTS ALL IMMEDIATE');
      const { rows } = await client.query<{ calls: string }>(
        `SELECT calls::text FROM pg_catalog.pg_stat_xact_user_functions
          WHERE schemaname = 'audit' AND funcname = 'seal_at_commit'`,
      );
      firings = Number(rows[0]?.calls ?? 0);
    });
    expect(firings).toBe(1);
    // The first statement set the setting on for its insert; none leaves it on after it.
    expect(settingsAfter).toEqual(Array(10).fill('off'));
    expect(await verify(install)).toMatchObject({
      ok: true,
      findingCount: 0,
      rows: before.rows + 10,
      blocks: before.blocks + 1,
    });
  });

  /**
   * A later row queues no seal while an earlier row of the transaction waits for one, so
   * that wait must outlive whatever a subtransaction undoes: the row that queued the seal
   * rolled back, a seal fired early and then rolled back, rows of a subtransaction kept.
   * Every row is sealed at commit, in one chain that verify finds clean.
   */
  it('seals every row whatever savepoints undo around the row that queued the seal', async () => {
    const install = await installWithHistory();
    const before = await verify(install);
    await inTransaction(install.targetUrl, async (dms, client) => {
      // The row that queued the seal is rolled back with its event.
      await client.query('SAVEPOINT s1');
      await dms.insert({ id: '90' }, cdc('INSERT', '2026-11-22 12:00:00', 90));
      await client.query('ROLLBACK TO SAVEPOINT s1');
      await dms.insert({ id: '91' }, cdc('INSERT', '2026-11-22 12:00:01', 91));
      // The seal fired early inside a subtransaction that is then rolled back.
      await client.query('SAVEPOINT s2');
      await client.query('SET CONSTRAINTS ALL IMMEDIATE');
      await client.query('SET CONSTRAINTS ALL DEFERRED');
      await client.query('ROLLBACK TO SAVEPOINT s2');
      await dms.insert({ id: '92' }, cdc('INSERT', '2026-11-22 12:00:02', 92));
      // Rows of a released subtransaction, then more at the top level.
      await client.query('SAVEPOINT s3');
      await dms.insert({ id: '93' }, cdc('INSERT', '2026-11-22 12:00:03', 93));
      await client.query('RELEASE SAVEPOINT s3');
      await dms.insert({ id: '94' }, cdc('INSERT', '2026-11-22 12:00:04', 94));
    });
    const after = await verify(install);
    expect(after).toMatchObject({ ok: true, findingCount: 0, rows: before.rows + 4 });
    expect(await blockSizes(install, before.head!.blockNo)).toEqual([4]);
  });

  it('cannot be borrowed: refused on a table of the caller, even with EXECUTE granted by mistake', async () => {
    const install = await installWithHistory();
    const login = await createLogin(install.targetUrl, 'borrower');
    const who = quoteIdent(login.name);
    await withClient(install.targetUrl, (client) =>
      client.query(`GRANT USAGE ON SCHEMA audit TO ${who}`),
    );
    const borrow = () =>
      attempt(() =>
        asLogin(login.url, async (client) => {
          await client.query('CREATE TEMP TABLE fake (id bigint)');
          await client.query(`CREATE CONSTRAINT TRIGGER borrowed AFTER INSERT ON fake
            DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION audit.seal_at_commit()`);
          await client.query('INSERT INTO fake VALUES (1)');
        }),
      );
    const before = await auditRows(install.targetUrl);
    expect((await borrow())?.message).toMatch(
      /permission denied for function audit\.seal_at_commit/,
    );
    await withClient(install.targetUrl, (client) =>
      client.query(`GRANT EXECUTE ON FUNCTION audit.seal_at_commit() TO ${who}`),
    );
    expect((await borrow())?.message).toMatch(
      /seal_at_commit runs only as the audit log's deferred insert trigger/,
    );
    expect(await auditRows(install.targetUrl)).toEqual(before);
    expect(await verify(install)).toMatchObject({ ok: true, findingCount: 0 });
  });
});

/** The row count of every chain block after `afterBlock`, in chain order. */
async function blockSizes(install: Install, afterBlock: number): Promise<number[]> {
  return withClient(install.targetUrl, async (client) => {
    const { rows } = await client.query<{ n: number }>(
      `SELECT cardinality(row_ids) AS n FROM audit.audit_chain WHERE block_no > $1 ORDER BY block_no`,
      [afterBlock],
    );
    return rows.map((row) => row.n);
  });
}

/**
 * A block's ids and hashes are one chain row, built in one query: a statement of a
 * million rows must not make one block of a million (verify reads a block's arrays, and
 * sealing hashes the block's rows in one query). Every block holds at most 10,000 rows,
 * whatever wrote them.
 */
describe('no block holds more than 10,000 rows', () => {
  it('a 25,001-row statement seals three blocks; its replay seals none; verify is clean', async () => {
    const install = await installWithHistory();
    const before = await verify(install);
    const seq = (expression: string) =>
      `'2026112212000000' || lpad((${expression})::text, 19, '0')`;
    await withClient(install.targetUrl, (client) =>
      client.query(`INSERT INTO audit.items_staging (id, name, ar_h_operation, ar_h_commit_timestamp,
           ar_h_change_seq, ar_h_transaction_id, ar_h_stream_position, ar_h_indicator)
         SELECT n, 'bulk', 'INSERT', '2026-11-22 12:00:00', ${seq('n')}, '900', '0/1', 'I'
           FROM generate_series(1000, 26000) AS n`),
    );
    const sealed = await verify(install);
    expect(sealed).toMatchObject({ ok: true, findingCount: 0, rows: before.rows + 25_001 });
    expect(await blockSizes(install, before.head!.blockNo)).toEqual([10_000, 10_000, 5_001]);
    // DMS re-applies the same changes after a restart: nothing is written, no block.
    const rowsBefore = await auditRows(install.targetUrl);
    await withClient(install.targetUrl, (client) =>
      client.query(`UPDATE audit.items_staging SET name = 'bulk', ar_h_operation = 'INSERT',
           ar_h_change_seq = ${seq('id')} WHERE id BETWEEN 1000 AND 26000`),
    );
    expect(await auditRows(install.targetUrl)).toEqual(rowsBefore);
    expect(await verify(install)).toMatchObject({
      ok: true,
      findingCount: 0,
      blocks: sealed.blocks,
      head: sealed.head,
    });
  });

  it('so does a transaction of one-row statements, sealed at commit', async () => {
    const install = await installWithHistory();
    const before = await verify(install);
    // 10,001 one-row statements in one transaction (a DO block keeps the round trips out).
    await withClient(install.targetUrl, (client) =>
      client.query(`DO $$ BEGIN FOR n IN 30000..40000 LOOP
          INSERT INTO audit.items_staging (id, ar_h_operation, ar_h_commit_timestamp,
            ar_h_change_seq, ar_h_transaction_id, ar_h_stream_position, ar_h_indicator)
          VALUES (n, 'INSERT', '2026-11-22 12:00:00', '2026112212000000' || lpad(n::text, 19, '0'),
            '901', '0/1', 'I');
        END LOOP; END $$`),
    );
    expect(await blockSizes(install, before.head!.blockNo)).toEqual([10_000, 1]);
    expect(await verify(install)).toMatchObject({ ok: true, rows: before.rows + 10_001 });
  });
});

/** Inserts one audit row straight into the log, as a role that may (no seal is queued for it). */
async function insertAuditRowDirectly(client: pg.Client, id: number): Promise<void> {
  await client.query(
    `INSERT INTO audit.audit_log (source_schema, source_table, row_key, operation,
       commit_timestamp, change_seq, new_row)
     VALUES ('public', 'items', jsonb_build_object('id', $1::int), 'INSERT', now(), $2,
             jsonb_build_object('id', $1::int, 'name', 'direct'))`,
    [id, changeSeq('2026-11-22 13:00:00')],
  );
}

/** The ids of the audit rows `verify --integrity` finds in no block. */
const unsealedIds = (report: Awaited<ReturnType<typeof verify>>) =>
  report.findings.filter((finding) => finding.kind === 'extra').map((finding) => finding.rowId);

/**
 * seal_queued() lets a one-row capture skip queuing the seal when the first unsealed audit
 * row was inserted at this transaction's top level. A role that may write the audit log
 * (a superuser, a member of the capture role) can put an unsealed row there that queued no
 * seal, so its transaction's captures queue none either. That is never silent, and never
 * lasts past the next capture: verify --integrity names every unsealed row, and the next
 * transaction's capture seals them all (its first unsealed row is not its own).
 */
describe('an audit row written outside the capture path', () => {
  it('in the applying transaction, before its captures: verify names the unsealed rows, the next capture seals them', async () => {
    const install = await installWithHistory();
    const before = await verify(install);
    await inTransaction(install.targetUrl, async (dms, client) => {
      await insertAuditRowDirectly(client, 200);
      await dms.insert({ id: '201', name: 'applied' }, cdc('INSERT', '2026-11-22 13:00:01', 201));
      await dms.insert({ id: '202', name: 'applied' }, cdc('INSERT', '2026-11-22 13:00:02', 202));
    });
    const poisoned = await verify(install);
    expect(poisoned).toMatchObject({ ok: false, blocks: before.blocks, rows: before.rows + 3 });
    expect(unsealedIds(poisoned)).toHaveLength(3);
    await inTransaction(install.targetUrl, async (dms) => {
      await dms.insert({ id: '203', name: 'applied' }, cdc('INSERT', '2026-11-22 13:00:03', 203));
    });
    expect(await verify(install)).toMatchObject({
      ok: true,
      findingCount: 0,
      rows: before.rows + 4,
      blocks: before.blocks + 1,
    });
  });

  it('committed before the capture, in a transaction of its own: sealed with the next capture', async () => {
    const install = await installWithHistory();
    const before = await verify(install);
    await withClient(install.targetUrl, (client) => insertAuditRowDirectly(client, 210));
    expect(unsealedIds(await verify(install))).toHaveLength(1);
    await inTransaction(install.targetUrl, async (dms) => {
      await dms.insert({ id: '211', name: 'applied' }, cdc('INSERT', '2026-11-22 13:00:01', 211));
      await dms.insert({ id: '212', name: 'applied' }, cdc('INSERT', '2026-11-22 13:00:02', 212));
    });
    expect(await verify(install)).toMatchObject({
      ok: true,
      findingCount: 0,
      rows: before.rows + 3,
      blocks: before.blocks + 1,
    });
  });

  /**
   * Inserted without the chain lock, its id is taken before a capture's and it commits
   * after that capture sealed: it lies below the chain head, where no seal looks. verify
   * names it from then on; captures after it are sealed as ever.
   */
  it('committed after a capture that took a later id: verify keeps naming it, later captures are sealed', async () => {
    const install = await installWithHistory();
    const before = await verify(install);
    await withClient(install.targetUrl, async (direct) => {
      await direct.query('BEGIN');
      await insertAuditRowDirectly(direct, 220);
      await inTransaction(install.targetUrl, async (dms) => {
        await dms.insert({ id: '221', name: 'applied' }, cdc('INSERT', '2026-11-22 13:00:01', 221));
      });
      await direct.query('COMMIT');
    });
    const orphaned = await verify(install);
    expect(orphaned).toMatchObject({ ok: false, rows: before.rows + 2, blocks: before.blocks + 1 });
    const [orphan] = unsealedIds(orphaned);
    expect(unsealedIds(orphaned)).toEqual([orphan]);
    await inTransaction(install.targetUrl, async (dms) => {
      await dms.insert({ id: '222', name: 'applied' }, cdc('INSERT', '2026-11-22 13:00:02', 222));
      await dms.insert({ id: '223', name: 'applied' }, cdc('INSERT', '2026-11-22 13:00:03', 223));
    });
    const after = await verify(install);
    expect(after).toMatchObject({ rows: before.rows + 4, blocks: before.blocks + 2 });
    expect(unsealedIds(after)).toEqual([orphan]);
    expect(after.findingCount).toBe(1);
  });

  it('with seal_at_commit disabled by the owner: verify names every row captured meanwhile; enabled again, the next capture seals them', async () => {
    const install = await installWithHistory();
    const before = await verify(install);
    await withClient(install.targetUrl, (client) =>
      client.query('ALTER TABLE audit.audit_log DISABLE TRIGGER seal_at_commit'),
    );
    await inTransaction(install.targetUrl, async (dms) => {
      await dms.insert({ id: '230', name: 'applied' }, cdc('INSERT', '2026-11-22 13:00:00', 230));
      await dms.insert({ id: '231', name: 'applied' }, cdc('INSERT', '2026-11-22 13:00:01', 231));
    });
    const unsealed = await verify(install);
    expect(unsealed).toMatchObject({ ok: false, blocks: before.blocks, rows: before.rows + 2 });
    expect(unsealedIds(unsealed)).toHaveLength(2);
    await withClient(install.targetUrl, (client) =>
      client.query('ALTER TABLE audit.audit_log ENABLE ALWAYS TRIGGER seal_at_commit'),
    );
    await inTransaction(install.targetUrl, async (dms) => {
      await dms.insert({ id: '232', name: 'applied' }, cdc('INSERT', '2026-11-22 13:00:02', 232));
    });
    expect(await verify(install)).toMatchObject({
      ok: true,
      findingCount: 0,
      rows: before.rows + 3,
      blocks: before.blocks + 1,
    });
  });
});

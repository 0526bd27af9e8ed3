import { mkdtemp, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { appendAnchor, readAnchors, readChainHead } from '../../src/trust/anchors';
import { migrateTarget } from '../../src/migrate/migrate-target';
import { verifyIntegrity } from '../../src/trust/integrity';
import { withClient } from '../support/databases';
import { cdc, DmsApplier } from '../support/dms-apply';
import { connectionArgs, runCli } from '../support/cli';
import { enableKitTriggers } from '../support/kit-triggers';
import { installWithHistory, type Install } from './support';

/** Tampering as the database owner (or a superuser) can: guards off, change, guards on. */
async function tamper(install: Install, statement: string): Promise<void> {
  await withClient(install.targetUrl, (client) =>
    client.query(`ALTER TABLE audit.audit_log DISABLE TRIGGER USER;
      ${statement};
      ${enableKitTriggers('audit_log')}`),
  );
}

const verify = (install: Install, anchors: Parameters<typeof verifyIntegrity>[0]['anchors'] = []) =>
  verifyIntegrity({ targetUrl: install.targetUrl, auditSchema: 'audit', anchors });

/** Triggers in the audit schema not enabled ALWAYS, as 'table.trigger state'. */
async function triggerStates(install: Install): Promise<string[]> {
  return withClient(install.targetUrl, async (client) => {
    const { rows } = await client.query<{ line: string }>(
      `SELECT c.relname || '.' || t.tgname || ' ' || t.tgenabled::text AS line
         FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid
        WHERE c.relnamespace = 'audit'::regnamespace AND NOT t.tgisinternal AND t.tgenabled <> 'A'
        ORDER BY 1`,
    );
    return rows.map((row) => row.line);
  });
}

async function rowIds(install: Install): Promise<string[]> {
  return withClient(install.targetUrl, async (client) => {
    const { rows } = await client.query<{ id: string }>(
      'SELECT id::text FROM audit.audit_log ORDER BY id',
    );
    return rows.map((row) => row.id);
  });
}

describe('verify --integrity', () => {
  it('is clean after capture, replays and retention, and writes no block for a replay', async () => {
    const install = await installWithHistory();
    const before = await verify(install);
    expect(before).toMatchObject({ ok: true, findingCount: 0, rows: 3 });
    await withClient(install.targetUrl, async (client) => {
      const dms = new DmsApplier(client, 'audit', 'items', ['id']);
      const again = cdc('UPDATE', '2026-11-22 10:00:03', 4);
      await dms.update({ id: '2' }, { name: 'dos' }, again);
      // DMS re-applies the same change after a restart.
      await dms.update({ id: '2' }, { name: 'dos' }, again);
    });
    const after = await verify(install);
    expect(after).toMatchObject({ ok: true, rows: 4, blocks: before.blocks + 1 });
    // Retention: the owner prunes everything recorded so far; the chain records it.
    await withClient(install.targetUrl, (client) =>
      client.query(`SELECT audit.prune_audit_log(clock_timestamp())`),
    );
    const pruned = await verify(install);
    expect(pruned).toMatchObject({ ok: true, rows: 0, prunedThroughBlock: after.head!.blockNo });
  });

  it('names an altered, a deleted, an out-of-band and a re-ordered row', async () => {
    const install = await installWithHistory();
    const [first] = await rowIds(install);
    await tamper(
      install,
      `UPDATE audit.audit_log SET new_row = '{"id": 1, "name": "forged"}' WHERE id = ${first}`,
    );
    let report = await verify(install);
    expect(report.ok).toBe(false);
    expect(report.findings[0]).toMatchObject({ kind: 'altered', rowId: first });

    const install2 = await installWithHistory();
    const ids2 = await rowIds(install2);
    await tamper(install2, `DELETE FROM audit.audit_log WHERE id = ${ids2[1]}`);
    report = await verify(install2);
    expect(report.findings).toEqual([expect.objectContaining({ kind: 'missing', rowId: ids2[1] })]);

    const install3 = await installWithHistory();
    await tamper(
      install3,
      `INSERT INTO audit.audit_log (source_schema, source_table, row_key, operation, commit_timestamp, new_row)
       VALUES ('public', 'items', '{"id": 9}', 'INSERT', '2026-11-22 09:00:00+00', '{"id": 9}')`,
    );
    report = await verify(install3);
    expect(report.findings).toEqual([expect.objectContaining({ kind: 'extra' })]);

    // Re-order: two rows of one statement (one block) trade places.
    const install4 = await installWithHistory();
    await withClient(install4.targetUrl, (client) =>
      client.query(`INSERT INTO audit.items_staging (id, name, ar_h_operation, ar_h_commit_timestamp,
          ar_h_change_seq, ar_h_transaction_id, ar_h_stream_position, ar_h_indicator)
        VALUES (7, 'seven', 'INSERT', '2026-11-22 10:00:05', '20261122100005000000000000000000071', '7', '0/1', 'I'),
               (8, 'eight', 'INSERT', '2026-11-22 10:00:05', '20261122100005000000000000000000072', '7', '0/1', 'I')`),
    );
    const ids4 = (await rowIds(install4)).slice(-3);
    const columns = `source_schema, source_table, row_key, operation, commit_timestamp, change_seq,
      transaction_id, stream_position, old_row, new_row, changed_columns, recorded_at`;
    await tamper(
      install4,
      `CREATE TEMP TABLE gone AS SELECT * FROM audit.audit_log WHERE id IN (${ids4[1]}, ${ids4[2]});
       DELETE FROM audit.audit_log WHERE id IN (${ids4[1]}, ${ids4[2]});
       INSERT INTO audit.audit_log (id, ${columns}) OVERRIDING SYSTEM VALUE
       SELECT CASE WHEN id = ${ids4[1]} THEN ${ids4[2]} ELSE ${ids4[1]} END, ${columns} FROM gone`,
    );
    report = await verify(install4);
    expect(report.findings.map((f) => [f.kind, f.rowId])).toEqual([
      ['out-of-order', ids4[1]],
      ['out-of-order', ids4[2]],
    ]);
  });

  it('names a trigger from outside the kit planted on a kit table', async () => {
    const install = await installWithHistory();
    // A superuser's (or the owner's) planted trigger runs its code inside every capture.
    await withClient(install.targetUrl, (client) =>
      client.query(`CREATE FUNCTION public."spy fn"() RETURNS trigger LANGUAGE plpgsql AS 'BEGIN RETURN NEW; END';
        CREATE TRIGGER "spy" BEFORE INSERT ON audit.audit_log FOR EACH ROW EXECUTE FUNCTION public."spy fn"()`),
    );
    const report = await verify(install);
    expect(report.ok).toBe(false);
    const line = '"spy" on "audit"."audit_log" runs public."spy fn"()';
    expect(report.findings).toEqual([
      expect.objectContaining({ kind: 'foreign-trigger', detail: line }),
    ]);
    // migrate would run it with the migrating login's rights: it refuses, naming the
    // trigger and the statement that removes it, and changes nothing.
    const migrating = migrateTarget({
      config: install.config,
      sourceUrl: install.sourceUrl,
      targetUrl: install.targetUrl,
    });
    await expect(migrating).rejects.toMatchObject({ code: 'FOREIGN_TRIGGER' });
    await expect(migrating).rejects.toThrow(line);
    await expect(migrating).rejects.toThrow('DROP TRIGGER "spy" ON "audit"."audit_log";');
  });

  /**
   * A DBA's maintenance (DISABLE TRIGGER USER, then ENABLE TRIGGER USER) leaves the kit's
   * triggers firing only when session_replication_role is origin: DMS on RDS applies as
   * replica, so its one-row captures are then never sealed (and the append-only guards
   * do not run for it). verify names each such trigger, and a disabled or missing one.
   */
  it('names a kit trigger on the audit log that is missing, disabled, or no longer fires in every replication role', async () => {
    const install = await installWithHistory();
    expect(await verify(install)).toMatchObject({ ok: true, findingCount: 0 });
    expect(await triggerStates(install)).toEqual([]);
    await withClient(install.targetUrl, (client) =>
      client.query(`ALTER TABLE audit.audit_log DISABLE TRIGGER USER;
        ALTER TABLE audit.audit_log ENABLE TRIGGER USER`),
    );
    await withClient(install.targetUrl, async (client) => {
      await client.query('BEGIN');
      await client.query('SET LOCAL session_replication_role = replica');
      await new DmsApplier(client, 'audit', 'items', ['id']).insert(
        { id: '30', name: 'applied' },
        cdc('INSERT', '2026-11-22 11:00:00', 30),
      );
      await client.query('COMMIT');
    });
    const origin = await verify(install);
    const kitTriggers = (report: typeof origin) =>
      report.findings.filter((f) => f.kind === 'kit-trigger').map((f) => f.detail);
    expect(kitTriggers(origin)).toContain(
      '"seal_at_commit" on "audit"."audit_log" fires only while session_replication_role is origin ' +
        '(DMS may apply as replica): ALTER TABLE "audit"."audit_log" ENABLE ALWAYS TRIGGER "seal_at_commit"',
    );
    expect(kitTriggers(origin)).toContain(
      '"audit_log_append_only" on "audit"."audit_log" fires only while session_replication_role is origin ' +
        '(DMS may apply as replica): ALTER TABLE "audit"."audit_log" ENABLE ALWAYS TRIGGER "audit_log_append_only"',
    );
    // The replica transaction's row was captured but never sealed.
    expect(origin.findings.filter((f) => f.kind === 'extra')).toHaveLength(1);
    await withClient(install.targetUrl, (client) =>
      client.query(`${enableKitTriggers('audit_log')};
        ALTER TABLE audit.audit_log DISABLE TRIGGER seal_at_commit`),
    );
    expect(kitTriggers(await verify(install))).toEqual([
      '"seal_at_commit" on "audit"."audit_log" is disabled: ALTER TABLE "audit"."audit_log" ENABLE ALWAYS TRIGGER "seal_at_commit"',
    ]);
    // migrate puts the kit's triggers back as installed, on the staging tables too.
    await withClient(install.targetUrl, (client) =>
      client.query(`ALTER TABLE audit.audit_log DISABLE TRIGGER USER;
        ALTER TABLE audit.audit_log ENABLE TRIGGER USER;
        ALTER TABLE audit.items_staging DISABLE TRIGGER USER;
        ALTER TABLE audit.items_staging ENABLE TRIGGER USER;
        ALTER TABLE audit.audit_chain DISABLE TRIGGER USER`),
    );
    await migrateTarget({
      config: install.config,
      sourceUrl: install.sourceUrl,
      targetUrl: install.targetUrl,
    });
    expect(kitTriggers(await verify(install))).toEqual([]);
    expect(await triggerStates(install)).toEqual([]);
    await withClient(install.targetUrl, (client) =>
      client.query('DROP TRIGGER seal_at_commit ON audit.audit_log'),
    );
    expect(kitTriggers(await verify(install))).toEqual([
      '"seal_at_commit" on "audit"."audit_log" is missing',
    ]);
  });

  it('with anchors, catches a truncated tail and a rewritten chain', async () => {
    const install = await installWithHistory();
    const dir = await mkdtemp(path.join(os.tmpdir(), 'anchors-'));
    const file = path.join(dir, 'anchors.jsonl');
    await appendAnchor(file, (await readChainHead(install.targetUrl, 'audit'))!);
    const anchors = await readAnchors(file);
    expect((await verify(install, anchors)).ok).toBe(true);
    // The owner drops the newest block and its rows: the chain alone still links.
    await withClient(install.targetUrl, (client) =>
      client.query(`ALTER TABLE audit.audit_log DISABLE TRIGGER USER; ALTER TABLE audit.audit_chain DISABLE TRIGGER USER;
        DELETE FROM audit.audit_log WHERE id > (SELECT last_row_id FROM audit.audit_chain ORDER BY block_no DESC OFFSET 1 LIMIT 1);
        DELETE FROM audit.audit_chain WHERE block_no = (SELECT max(block_no) FROM audit.audit_chain);
        ${enableKitTriggers('audit_log')}; ${enableKitTriggers('audit_chain')}`),
    );
    expect((await verify(install)).ok).toBe(true);
    const report = await verify(install, anchors);
    expect(report.findings).toEqual([expect.objectContaining({ kind: 'anchor-missing' })]);
  });

  it('CLI: exit 0 clean, 1 naming the first broken row, 2 for a bad anchors file; anchor --append', async () => {
    const install = await installWithHistory();
    const dir = await mkdtemp(path.join(os.tmpdir(), 'anchors-'));
    const config = path.join(dir, 'audit-trail.config.json');
    await writeFile(config, JSON.stringify({ tables: [{ table: 'items' }] }));
    const anchors = path.join(dir, 'anchors.jsonl');
    const base = connectionArgs({ configFile: config, targetUrl: install.targetUrl });
    const anchored = await runCli(['anchor', '--append', anchors, ...base]);
    expect(anchored.code).toBe(0);
    const clean = await runCli(['verify', '--integrity', '--anchors', anchors, '--json', ...base]);
    expect(clean.code).toBe(0);
    expect(JSON.parse(clean.stdout)).toMatchObject({ ok: true, anchorsChecked: 1 });
    const [first] = await rowIds(install);
    await tamper(install, `UPDATE audit.audit_log SET operation = 'DELETE' WHERE id = ${first}`);
    const broken = await runCli(['verify', '--integrity', ...base]);
    expect(broken.code).toBe(1);
    expect(broken.stdout).toContain(`altered: audit row ${first} was altered`);
    await writeFile(anchors, 'not json\n');
    const bad = await runCli(['verify', '--integrity', '--anchors', anchors, ...base]);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('line 1: not JSON');
  });
});

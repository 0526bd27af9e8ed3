import { verifyIntegrity } from '../../src/trust/integrity';
import { withClient } from '../support/databases';
import { cdc, changeSeq, DmsApplier } from '../support/dms-apply';
import { asLogin, attempt, createLogin, installWithHistory, type Install } from './support';

const verify = (install: Install) =>
  verifyIntegrity({ targetUrl: install.targetUrl, auditSchema: 'audit' });

async function commitTimes(install: Install): Promise<string[]> {
  return withClient(install.targetUrl, async (client) => {
    const { rows } = await client.query<{ at: string }>(
      `SELECT to_char(commit_timestamp AT TIME ZONE 'UTC', 'HH24:MI:SS.US') AS at
         FROM audit.audit_log ORDER BY id`,
    );
    return rows.map((row) => row.at);
  });
}

/**
 * Retention is stated in source time ("keep seven years of changes"), and rows can be
 * applied long after they were committed (a DMS backlog, a late engine): pruning by
 * commit time removes whole blocks whose rows were all committed before the cutoff,
 * records the checkpoint in the chain, and never removes a row committed at or after it.
 */
describe('retention by commit time: prune_audit_log_committed_before', () => {
  it('prunes whole blocks committed before the cutoff; verify tells it from tampering', async () => {
    // Committed 10:00:00, 10:00:01, 10:00:02 on 22 Nov (one block each), applied today.
    const install = await installWithHistory();
    await withClient(install.targetUrl, async (client) => {
      // One statement (one block) with rows committed on either side of 10:00:04.
      await client.query(
        `INSERT INTO audit.items_staging
           (id, name, ar_h_operation, ar_h_commit_timestamp, ar_h_change_seq,
            ar_h_transaction_id, ar_h_stream_position, ar_h_indicator)
         VALUES (3, 'three', 'INSERT', '2026-11-22 10:00:03', $1, '5', '0/1', 'I'),
                (4, 'four', 'INSERT', '2026-11-22 10:00:05', $2, '6', '0/2', 'I')`,
        [changeSeq('2026-11-22 10:00:03'), changeSeq('2026-11-22 10:00:05')],
      );
      const dms = new DmsApplier(client, 'audit', 'items', ['id']);
      await dms.update({ id: '2' }, { name: 'dos' }, cdc('UPDATE', '2026-11-22 10:00:06', 7));
    });
    // By apply time (the older function) nothing was recorded before 23 Nov.
    const byApplyTime = await withClient(install.targetUrl, (client) =>
      client.query<{ n: string }>(`SELECT audit.prune_audit_log('2026-11-23') AS n`),
    );
    expect(byApplyTime.rows[0]!.n).toBe('0');

    const pruned = await withClient(install.targetUrl, (client) =>
      client.query<{ n: string }>(
        `SELECT audit.prune_audit_log_committed_before('2026-11-22 10:00:04+00') AS n`,
      ),
    );
    // The first three rows go; the mixed block (10:00:03 and 10:00:05) stays whole.
    expect(pruned.rows[0]!.n).toBe('3');
    expect(await commitTimes(install)).toEqual([
      '10:00:03.000000',
      '10:00:05.000000',
      '10:00:06.000000',
    ]);
    const report = await verify(install);
    expect(report).toMatchObject({ ok: true, findingCount: 0, rows: 3 });
    expect(report.prunedThroughBlock).not.toBeNull();

    // Again with the same cutoff: nothing more, and no second checkpoint.
    const again = await withClient(install.targetUrl, (client) =>
      client.query<{ n: string }>(
        `SELECT audit.prune_audit_log_committed_before('2026-11-22 10:00:04+00') AS n`,
      ),
    );
    expect(again.rows[0]!.n).toBe('0');
    expect((await verify(install)).blocks).toBe(report.blocks);

    // A cutoff after every commit: everything goes, the chain still verifies.
    await withClient(install.targetUrl, (client) =>
      client.query(`SELECT audit.prune_audit_log_committed_before('2026-11-23')`),
    );
    expect(await verify(install)).toMatchObject({ ok: true, findingCount: 0, rows: 0 });
  });

  it('is owner only: a reader, the writer and a login granted ALL cannot run it', async () => {
    const install = await installWithHistory();
    const login = await createLogin(install.targetUrl, 'pruner');
    await withClient(install.targetUrl, (client) =>
      client.query(`GRANT audit_reader, audit_writer TO ${login.name};
        GRANT ALL ON ALL TABLES IN SCHEMA audit TO ${login.name}`),
    );
    const error = await attempt(() =>
      asLogin(login.url, (client) =>
        client.query(`SELECT audit.prune_audit_log_committed_before('2030-01-01')`),
      ),
    );
    expect(error?.message).toMatch(
      /permission denied for function prune_audit_log_committed_before/,
    );
    expect(await commitTimes(install)).toHaveLength(3);
  });
});

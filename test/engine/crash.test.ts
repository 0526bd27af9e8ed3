import { verifyAuditTrail } from '../../src/verify';
import { replicateArgs, runCli, writeConfig } from '../support/cli';
import { createPipeline, type Pipeline } from './helpers';

const config = { tables: [{ schema: 'bank', table: 'acct' }] };
const SOURCE_DDL = `
  CREATE SCHEMA bank;
  CREATE TABLE bank.acct (id int PRIMARY KEY, balance numeric(14, 2) NOT NULL, note text);
  INSERT INTO bank.acct SELECT g, g * 1.01, 'n' || g FROM generate_series(1, 3000) AS g;`;

/**
 * Kills the engine (SIGKILL) at chosen points and restarts it: after every restart
 * the audit log must hold every change exactly once and match the source.
 */
describe('engine: crash (kill -9) and restart', () => {
  let p: Pipeline;
  let configFile: string;
  /** Audit rows the source's history so far must have produced. */
  let expectedAuditRows = 3000;

  const replicate = (crashAt?: string, extra: string[] = []) =>
    runCli(
      replicateArgs(configFile, p, '--until-idle', ...extra),
      crashAt ? { AUDIT_TRAIL_ENGINE_CRASH_AT: crashAt } : {},
    );

  const expectExactlyOnce = async () => {
    const report = await verifyAuditTrail({
      config: p.config,
      sourceUrl: p.sourceUrl,
      targetUrl: p.targetUrl,
    });
    expect(report.mismatches).toEqual([]);
    expect(report.ok).toBe(true);
    const { rows } = await p.target(
      `SELECT count(*)::int AS total, count(DISTINCT change_seq)::int AS seqs,
              count(*) FILTER (WHERE change_seq IS NULL)::int AS snapshots
         FROM audit.audit_log`,
    );
    expect(rows[0]).toEqual({
      total: expectedAuditRows,
      seqs: expectedAuditRows - 3000,
      snapshots: 3000,
    });
  };

  beforeAll(async () => {
    p = await createPipeline(SOURCE_DDL, config);
    configFile = await writeConfig(config);
  });
  afterAll(async () => p?.dispose());

  it('a crash in the middle of the initial load leaves nothing; the restart reloads', async () => {
    const crashed = await replicate('load-batch:1', ['--batch-size', '500']);
    expect(crashed.signal).toBe('SIGKILL');
    const { rows } = await p.target('SELECT count(*)::int AS n FROM audit.acct_staging');
    expect(rows[0].n).toBe(0);
    // Committed before the reload's new snapshot: part of the SNAPSHOT rows, not versions.
    await p.source(`UPDATE bank.acct SET balance = balance + 1 WHERE id <= 5`);
    const restarted = await replicate();
    expect(restarted.code).toBe(0);
    expect(restarted.stderr).toContain('initial load copied');
    await expectExactlyOnce();
  });

  it('a crash after the target commit but before the slot is told replays nothing twice', async () => {
    for (let i = 1; i <= 10; i++)
      await p.source(`UPDATE bank.acct SET balance = balance + 1 WHERE id = ${i}`);
    expectedAuditRows += 10;
    const crashed = await replicate('after-commit:1');
    expect(crashed.signal).toBe('SIGKILL');
    expect((await replicate()).code).toBe(0);
    await expectExactlyOnce();
  });

  it('a crash in the middle of a big source transaction applies it once, whole', async () => {
    await p.source(`UPDATE bank.acct SET balance = balance * 2`);
    await p.source(`DELETE FROM bank.acct WHERE id % 100 = 0`);
    await p.source(`INSERT INTO bank.acct VALUES (5000, 1, 'late')`);
    expectedAuditRows += 3000 + 30 + 1;
    const crashed = await replicate('apply-batch:3', ['--batch-size', '500']);
    expect(crashed.signal).toBe('SIGKILL');
    const { rows } = await p.target(
      `SELECT count(*)::int AS n FROM audit.acct_staging WHERE ar_h_operation = 'UPDATE' AND id > 10`,
    );
    expect(rows[0].n).toBe(0); // rolled back with the target transaction
    expect((await replicate()).code).toBe(0);
    await expectExactlyOnce();
  });

  it('a crash right after the slot ack resumes after that point', async () => {
    await p.source(`INSERT INTO bank.acct VALUES (6000, 6, 'x')`);
    await p.source(`UPDATE bank.acct SET note = NULL WHERE id = 6000`);
    expectedAuditRows += 2;
    expect((await replicate('after-ack:1')).signal).toBe('SIGKILL');
    await p.source(`DELETE FROM bank.acct WHERE id = 6000`);
    expectedAuditRows += 1;
    expect((await replicate()).code).toBe(0);
    await expectExactlyOnce();
  });
});

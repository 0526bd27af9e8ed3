import { connectionArgs, runCli, writeConfig } from '../support/cli';
import { createPipeline, type Pipeline } from './helpers';

describe('verify', () => {
  let p: Pipeline;
  beforeAll(async () => {
    p = await createPipeline(
      `CREATE TABLE public.t (a int, b text, c numeric, at timestamptz(6), PRIMARY KEY (a, b));
       INSERT INTO public.t VALUES (1, 'x', 1.10, '2026-01-01 00:00:00.000001+00'), (2, 'y', 2, NULL), (3, 'z', 3, NULL);`,
      { tables: [{ table: 't' }] },
    );
    await p.replicate();
  });
  afterAll(async () => p?.dispose());

  it('is clean when the audit log matches the source exactly', async () => {
    const report = await p.verify();
    expect(report).toEqual({
      ok: true,
      tables: [{ table: 'public.t', sourceRows: 3, auditRows: 3, stagingRows: 3, mismatches: 0 }],
      mismatches: [],
    });
  });

  it('lists rows that differ, source rows without audit and audit rows without source; the CLI exits 1', async () => {
    // Source changes the engine has not applied yet: exactly what verify must catch.
    await p.source(`UPDATE public.t SET c = 1.25 WHERE a = 1; DELETE FROM public.t WHERE a = 2;
                    INSERT INTO public.t VALUES (4, 'w', 4, NULL)`);
    const report = await p.verify();
    expect(report.ok).toBe(false);
    expect(report.mismatches.map((m) => [m.kind, m.key, m.columns])).toEqual([
      ['different', { a: 1, b: 'x' }, ['c']],
      ['missing-in-source', { a: 2, b: 'y' }, undefined],
      ['missing-in-audit', { a: 4, b: 'w' }, undefined],
    ]);
    const configFile = await writeConfig({ tables: [{ table: 't' }] });
    const cli = await runCli([
      'verify',
      ...connectionArgs({ configFile, sourceUrl: p.sourceUrl, targetUrl: p.targetUrl }),
      '--json',
    ]);
    expect(cli.code).toBe(1);
    expect(JSON.parse(cli.stdout).tables[0].mismatches).toBe(3);
    expect(cli.stderr).toContain('verify found 3 mismatches');
    await p.replicate();
    const after = await p.verify();
    expect(after.mismatches).toEqual([]);
    expect(after.ok).toBe(true);
  });

  it('reports a staging row edited directly, which left no audit row', async () => {
    const { rows: auditBefore } = await p.target('SELECT count(*)::int AS n FROM audit.audit_log');
    await p.target(`UPDATE audit.t_staging SET c = 99 WHERE a = 1`); // the triggers see no new change
    await p.target(`UPDATE audit.t_staging SET ar_h_indicator = 'D' WHERE a = 4`);
    await p.target(`DELETE FROM audit.t_staging WHERE a = 3`); // no DELETE trigger fires
    const { rows: auditAfter } = await p.target('SELECT count(*)::int AS n FROM audit.audit_log');
    expect(auditAfter).toEqual(auditBefore);
    const report = await p.verify();
    expect(report.ok).toBe(false);
    expect(report.mismatches.map((m) => [m.kind, m.key, m.columns])).toEqual([
      ['staging-differs', { a: 1, b: 'x' }, ['c']],
      ['staging-differs', { a: 3, b: 'z' }, undefined],
      ['staging-differs', { a: 4, b: 'w' }, undefined],
    ]);
    expect(report.mismatches[0]).toMatchObject({
      stagingRow: { a: 1, b: 'x', c: 99 },
      auditRow: { a: 1, b: 'x', c: 1.25 },
    });
    expect(report.mismatches[2]).toMatchObject({ auditRow: { a: 4 } });
    expect(report.mismatches[2]).not.toHaveProperty('stagingRow');
    expect(report.tables).toEqual([
      { table: 'public.t', sourceRows: 3, auditRows: 3, stagingRows: 1, mismatches: 3 },
    ]);
  });
});

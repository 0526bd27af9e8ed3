import { migrateTarget } from '../../src/migrate/migrate-target';
import { createPipeline, type Pipeline } from '../engine/helpers';
import { connectionArgs, runCli, writeConfig } from '../support/cli';

/**
 * A staging table's capture triggers are what turns DMS's writes into history. One
 * disabled, dropped, or switched back with ENABLE TRIGGER USER (then it fires only while
 * session_replication_role is origin, and DMS may apply as replica) records nothing, and
 * nothing else says so: verify names it, and migrate puts it back.
 */
describe('verify: the staging capture triggers', () => {
  let p: Pipeline;
  beforeAll(async () => {
    p = await createPipeline(
      `CREATE TABLE public.t (id int PRIMARY KEY, v text); INSERT INTO public.t VALUES (1, 'a')`,
      {
        tables: [{ table: 't' }],
      },
    );
    await p.replicate();
  });
  afterAll(async () => p?.dispose());

  it('reports none on an installed pipeline', async () => {
    const report = await p.verify();
    expect(report.ok).toBe(true);
    expect(report.tables[0]!.captureTriggers).toBeUndefined();
  });

  it('names a capture trigger disabled, firing only at origin, or dropped, with what puts it back', async () => {
    await p.target(`ALTER TABLE audit.t_staging DISABLE TRIGGER capture_insert`);
    await p.target(`ALTER TABLE audit.t_staging DISABLE TRIGGER capture_update`);
    await p.target(`ALTER TABLE audit.t_staging ENABLE TRIGGER capture_update`); // origin only
    await p.target(`DROP TRIGGER skip_applied_change ON audit.t_staging`);
    const report = await p.verify();
    expect(report.ok).toBe(false);
    expect(report.tables[0]!.captureTriggers).toEqual([
      '"capture_insert" on "audit"."t_staging" is disabled: ALTER TABLE "audit"."t_staging" ENABLE ALWAYS TRIGGER "capture_insert"',
      '"capture_update" on "audit"."t_staging" fires only while session_replication_role is origin (DMS may apply as replica): ALTER TABLE "audit"."t_staging" ENABLE ALWAYS TRIGGER "capture_update"',
      '"skip_applied_change" on "audit"."t_staging" is missing: run audit-trail migrate',
    ]);
    const configFile = await writeConfig({ tables: [{ table: 't' }] });
    const cli = await runCli([
      'verify',
      ...connectionArgs({ configFile, sourceUrl: p.sourceUrl, targetUrl: p.targetUrl }),
    ]);
    expect(cli.code).toBe(1);
    expect(cli.stdout).toContain('FAIL public.t');
    expect(cli.stdout).toContain('"capture_insert" on "audit"."t_staging" is disabled');
    expect(cli.stderr).toContain('3 capture trigger problems');
  });

  it('is clean again after migrate, which puts every capture trigger back as installed', async () => {
    await migrateTarget({ config: p.config, sourceUrl: p.sourceUrl, targetUrl: p.targetUrl });
    const report = await p.verify();
    expect(report.tables[0]!.captureTriggers).toBeUndefined();
    expect(report.ok).toBe(true);
  });
});

import { setTimeout as sleep } from 'node:timers/promises';
import { AuditTrailError } from '../../src/errors';
import { connectionArgs, runCli, writeConfig } from '../support/cli';
import { createPipeline, type Pipeline } from './helpers';

// The engine's publication is the one thing on the source that decides which changes it
// is sent. Whoever owns it (the engine's source login, or a superuser) can narrow it
// while the engine is stopped: a row filter, a column list, or fewer operations. pgoutput
// decodes each change with the publication as it was when the change was written, so
// the changes made meanwhile are never sent, and restoring the publication at the next
// start (as the engine used to, silently) cannot bring them back.
describe('a narrowed publication', () => {
  let p: Pipeline;
  const config = { tables: [{ table: 'kv' }] };

  beforeEach(async () => {
    p = await createPipeline('CREATE TABLE kv (k int PRIMARY KEY, v text)', config);
    await p.source(`INSERT INTO kv VALUES (1, 'a')`);
    await p.replicate();
  });
  afterEach(async () => p?.dispose());

  const publication = () => `"${p.slotName}"`;
  // Row filters and column lists exist from PostgreSQL 15 on; leaving an operation out
  // of publish is narrowing on every version.
  const hasRowFilters = async () =>
    (await p.source(`SELECT current_setting('server_version_num')::int AS v`)).rows[0].v >= 150000;
  const stagingKeys = async () =>
    (await p.target('SELECT k FROM audit.kv_staging ORDER BY k')).rows.map((row) => row.k);

  it('stops the engine with PUBLICATION_NARROWED on a row filter, and doctor fails it', async (context) => {
    if (!(await hasRowFilters())) context.skip();
    await p.source(`ALTER PUBLICATION ${publication()} SET TABLE public.kv WHERE (k < 100)`);
    await p.source(`INSERT INTO kv VALUES (2, 'b'), (500, 'hidden')`);

    const refused = await p.replicate().catch((error: unknown) => error);
    expect(refused).toBeInstanceOf(AuditTrailError);
    expect(refused).toMatchObject({ code: 'PUBLICATION_NARROWED', exitCode: 1 });
    expect((refused as Error).message).toMatch(/"public"\."kv" has a row filter/);
    expect((refused as AuditTrailError).hint).toContain(
      `ALTER PUBLICATION ${publication()} SET TABLE "public"."kv"`,
    );
    expect(await stagingKeys()).toEqual([1]);

    const doctor = await runCli([
      'doctor',
      ...connectionArgs({
        configFile: await writeConfig(config),
        sourceUrl: p.sourceUrl,
        targetUrl: p.targetUrl,
        slotName: p.slotName,
      }),
      '--json',
    ]);
    expect(doctor.code).toBe(1);
    const checks = JSON.parse(doctor.stdout) as { side: string; check: string; status: string }[];
    expect(checks.find((c) => c.check === `publication ${p.slotName}`)).toMatchObject({
      side: 'source',
      status: 'fail',
    });

    // The hint's statements put the publication back; the engine goes on, and verify
    // names the row whose change was never sent: what a reload must repair.
    await p.source(`ALTER PUBLICATION ${publication()} SET TABLE public.kv`);
    await p.replicate();
    expect(await stagingKeys()).toEqual([1, 2]);
    const report = await p.verify();
    expect(report.ok).toBe(false);
    expect(JSON.stringify(report)).toContain('500');
  });

  it('refuses a publication that no longer publishes every operation', async () => {
    await p.source(`ALTER PUBLICATION ${publication()} SET (publish = 'insert')`);
    await p.source(`UPDATE kv SET v = 'changed' WHERE k = 1`);
    const refused = await p.replicate().catch((error: unknown) => error);
    expect(refused).toMatchObject({ code: 'PUBLICATION_NARROWED' });
    expect((refused as Error).message).toMatch(/does not publish update, delete, truncate/);
  });

  it('refuses a column list', async (context) => {
    if (!(await hasRowFilters())) context.skip();
    await p.source(`ALTER PUBLICATION ${publication()} SET TABLE public.kv (k)`);
    const refused = await p.replicate().catch((error: unknown) => error);
    expect(refused).toMatchObject({ code: 'PUBLICATION_NARROWED' });
    expect((refused as Error).message).toMatch(/"public"\."kv" has a column list/);
  });

  it('stops a running engine at the next change the narrowed publication still sends', async (context) => {
    if (!(await hasRowFilters())) context.skip();
    const engine = p.engine();
    const running = engine.run().then(
      () => 'stopped',
      (error: unknown) => error,
    );
    try {
      while (engine.status().phase !== 'streaming') await sleep(50);
      await p.source(`ALTER PUBLICATION ${publication()} SET TABLE public.kv WHERE (k < 100)`);
      await p.source(`INSERT INTO kv VALUES (500, 'hidden')`);
      await p.source(`INSERT INTO kv VALUES (3, 'sent')`);
      const outcome = await running;
      expect(outcome).toMatchObject({ code: 'PUBLICATION_NARROWED' });
      // The change that revealed it was not applied either: nothing after the narrowing.
      expect(await stagingKeys()).toEqual([1]);
    } finally {
      await engine.stop();
    }
  });

  // A narrowing that filters every change it is asked about sends nothing at all: no
  // announcement to check at. The engine checks its publication on a timer while it
  // streams too (every 10 s by default; here every 100 ms). On every version: publish
  // without update, then an update.
  it('stops a running engine whose narrowed publication sends nothing at all', async () => {
    const engine = p.engine({ publicationCheckMs: 100 });
    const running = engine.run().then(
      () => 'stopped',
      (error: unknown) => error,
    );
    try {
      while (engine.status().phase !== 'streaming') await sleep(50);
      await p.source(`ALTER PUBLICATION ${publication()} SET (publish = 'insert')`);
      await p.source(`UPDATE kv SET v = 'unsent' WHERE k = 1`);
      const outcome = await running;
      expect(outcome).toBeInstanceOf(AuditTrailError);
      expect(outcome).toMatchObject({ code: 'PUBLICATION_NARROWED', exitCode: 1 });
      expect((outcome as Error).message).toMatch(/does not publish update, delete, truncate/);
    } finally {
      await engine.stop();
    }
  });
});

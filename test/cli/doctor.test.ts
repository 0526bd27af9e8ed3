import { migrateTarget } from '../../src/migrate/migrate-target';
import { findFreePort } from '../../src/postgres/local-server';
import { connectionArgs, runCli, writeConfig } from '../support/cli';
import { createPipeline, type Pipeline } from '../engine/helpers';

interface Check {
  side: string;
  check: string;
  status: string;
  detail: string;
}

describe('audit-trail doctor and slot', () => {
  let p: Pipeline;
  const config = { tables: [{ table: 'kv' }] };

  beforeAll(async () => {
    p = await createPipeline('CREATE TABLE kv (k int PRIMARY KEY, v text)', config);
    await p.replicate();
  });
  afterAll(async () => p?.dispose());

  const doctor = (configFile: string, ...args: string[]) =>
    runCli(['doctor', ...connectionArgs({ configFile, sourceUrl: p.sourceUrl }), ...args]);

  it('passes a migrated pair and reports the engine slot; exit 0', async () => {
    const result = await doctor(
      await writeConfig(config),
      ...connectionArgs({ targetUrl: p.targetUrl, slotName: p.slotName }),
      '--json',
    );
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    const checks = JSON.parse(result.stdout) as Check[];
    const status = (side: string, check: string) =>
      checks.find((c) => c.side === side && c.check === check)?.status;
    expect(status('source', 'wal_level')).toBe('ok');
    expect(status('source', 'replication privilege')).toBe('ok');
    expect(status('source', 'audited tables')).toBe('ok');
    expect(status('source', `slot ${p.slotName} (the engine’s)`)).toBe('ok');
    expect(status('target', 'kit schema')).toBe('ok');
    expect(status('target', 'staging tables')).toBe('ok');
    expect(checks.every((c) => c.status !== 'fail')).toBe(true);
  });

  it('names a staging capture trigger disabled, firing only at origin, or dropped, with its fix: exit 1; clean once back ALWAYS', async () => {
    const configFile = await writeConfig(config);
    const target = ['--target-url', p.targetUrl];
    await p.target(`ALTER TABLE audit.kv_staging DISABLE TRIGGER capture_insert`);
    await p.target(`ALTER TABLE audit.kv_staging DISABLE TRIGGER capture_update`);
    await p.target(`ALTER TABLE audit.kv_staging ENABLE TRIGGER capture_update`); // origin only
    await p.target(`DROP TRIGGER skip_applied_change ON audit.kv_staging`);
    try {
      const result = await doctor(configFile, ...target);
      expect(result.code).toBe(1);
      const failures = result.stdout.split('\n').filter((line) => line.startsWith('FAIL'));
      expect(failures).toEqual([
        'FAIL  target capture triggers: "capture_insert" on "audit"."kv_staging" is disabled: ALTER TABLE "audit"."kv_staging" ENABLE ALWAYS TRIGGER "capture_insert"',
        'FAIL  target capture triggers: "capture_update" on "audit"."kv_staging" fires only while session_replication_role is origin (DMS may apply as replica): ALTER TABLE "audit"."kv_staging" ENABLE ALWAYS TRIGGER "capture_update"',
        'FAIL  target capture triggers: "skip_applied_change" on "audit"."kv_staging" is missing: run audit-trail migrate',
      ]);
      expect(result.stderr).toMatch(
        /^audit-trail: error \[CHECKS_FAILED\]: 3 of \d+ checks failed\n/,
      );
    } finally {
      // Back as doctor says: the two ALTER TABLEs, and migrate for the dropped one.
      await p.target(`ALTER TABLE audit.kv_staging ENABLE ALWAYS TRIGGER capture_insert`);
      await p.target(`ALTER TABLE audit.kv_staging ENABLE ALWAYS TRIGGER capture_update`);
      await migrateTarget({ config: p.config, sourceUrl: p.sourceUrl, targetUrl: p.targetUrl });
    }
    const clean = await doctor(configFile, ...target, '--json');
    expect(clean.code).toBe(0);
    const checks = JSON.parse(clean.stdout) as Check[];
    expect(checks.filter((c) => c.check === 'capture triggers')).toEqual([
      {
        side: 'target',
        check: 'capture triggers',
        status: 'ok',
        detail: 'every staging table’s capture triggers are installed and ENABLE ALWAYS',
      },
    ]);
  });

  it('finds a table without a primary key and one not migrated: exit 1, each named', async () => {
    await p.source('CREATE TABLE nokey (v text)');
    const result = await doctor(
      await writeConfig({ tables: [{ table: 'kv' }, { table: 'nokey' }] }),
      '--target-url',
      p.targetUrl,
    );
    expect(result.code).toBe(1);
    expect(result.stdout).toMatch(
      /^FAIL {2}source audited tables: .*"public\.nokey" has no primary key/m,
    );
    expect(result.stdout).toMatch(
      /^FAIL {2}target staging tables: not installed for public\.nokey → run audit-trail migrate$/m,
    );
    expect(result.stderr).toMatch(
      /^audit-trail: error \[CHECKS_FAILED\]: 2 of \d+ checks failed\n {2}hint: each FAIL line says what to change\n$/,
    );
  });

  it('warns, on a PostgreSQL 13 or 14 source, that rows attached with a partition need verify (exit 0); says nothing on 15+', async () => {
    await p.source(`CREATE TABLE IF NOT EXISTS pm (region text, id int, PRIMARY KEY (region, id))
                      PARTITION BY LIST (region);
                    CREATE TABLE IF NOT EXISTS pm_eu PARTITION OF pm FOR VALUES IN ('EU')`);
    const result = await doctor(
      await writeConfig({ tables: [{ table: 'kv' }, { table: 'pm', partitions: ['pm_eu'] }] }),
      '--json',
    );
    const checks = JSON.parse(result.stdout) as Check[];
    const warning = checks.filter((c) => c.check === 'attached partitions');
    const { rows } = await p.source(
      `SELECT current_setting('server_version_num')::int / 10000 AS major`,
    );
    const major = (rows[0] as { major: number }).major;
    if (major >= 15) {
      expect(warning).toEqual([]);
    } else {
      expect(warning).toEqual([
        expect.objectContaining({
          side: 'source',
          status: 'warn',
          detail: expect.stringMatching(
            new RegExp(
              `^public\\.pm is partitioned and the source is PostgreSQL ${major}: .*verify`,
            ),
          ),
        }),
      ]);
    }
    expect(checks.find((c) => c.check === 'partitions (DMS mapping)')?.status).toBe('ok');
  });

  it('an unreachable target is a connection error: exit 2, the source still checked', async () => {
    const port = await findFreePort();
    const result = await doctor(
      await writeConfig(config),
      '--target-url',
      `postgres://x@127.0.0.1:${port}/nothing`,
    );
    expect(result.code).toBe(2);
    expect(result.stdout).toMatch(/^OK {4}source wal_level: logical$/m);
    expect(result.stdout).toMatch(/^FAIL {2}target connection: target: cannot connect/m);
  });

  it('slot list shows the engine slot; slot drop needs --yes, then drops slot and publication', async () => {
    const listed = await runCli(['slot', 'list', '--source-url', p.sourceUrl, '--json']);
    expect(listed.code).toBe(0);
    const slots = JSON.parse(listed.stdout) as { name: string; active: boolean }[];
    expect(slots.find((s) => s.name === p.slotName)).toMatchObject({ active: false });
    const configFile = await writeConfig(config);
    const drop = (...extra: string[]) =>
      runCli([
        'slot',
        'drop',
        p.slotName,
        ...connectionArgs({ configFile, sourceUrl: p.sourceUrl }),
        ...extra,
      ]);
    const unconfirmed = await drop();
    expect(unconfirmed.code).toBe(2);
    expect(unconfirmed.stderr).toMatch(/would drop slot .*\n {2}hint: add --yes to drop it\n$/);
    const count = async () =>
      (
        await p.source(
          `SELECT (SELECT count(*) FROM pg_replication_slots WHERE slot_name = $1)::int
                + (SELECT count(*) FROM pg_publication WHERE pubname = $1)::int AS n`,
          [p.slotName],
        )
      ).rows[0].n;
    expect(await count()).toBe(2);
    const dropped = await drop('--yes');
    expect(dropped).toMatchObject({
      code: 0,
      stdout: `dropped slot ${p.slotName} and its publication\n`,
    });
    expect(await count()).toBe(0);
  });
});

describe('audit-trail doctor: capture triggers of hostile names', () => {
  // Quotes, a dot and a non-ASCII letter in the audit schema and the table: each FAIL line
  // names the table as SQL would, and its fix runs as printed.
  const auditSchema = 'Au"dit.x';
  const table = 'kv"ü.d';
  const config = { auditSchema, tables: [{ schema: 'S"c.h', table }] };
  let p: Pipeline;

  beforeAll(async () => {
    p = await createPipeline(
      'CREATE SCHEMA "S""c.h"; CREATE TABLE "S""c.h"."kv""ü.d" (k int PRIMARY KEY, v text)',
      config,
    );
  });
  afterAll(async () => p?.dispose());

  it('quotes them in the FAIL line, and the fix it prints puts the trigger back', async () => {
    const configFile = await writeConfig(config);
    const staging = '"Au""dit.x"."kv""ü.d_staging"';
    await p.target(`ALTER TABLE ${staging} DISABLE TRIGGER capture_insert`);
    const result = await runCli([
      'doctor',
      ...connectionArgs({ configFile, sourceUrl: p.sourceUrl }),
      '--target-url',
      p.targetUrl,
    ]);
    expect(result.code).toBe(1);
    const failures = result.stdout.split('\n').filter((line) => line.startsWith('FAIL'));
    const fix = `ALTER TABLE ${staging} ENABLE ALWAYS TRIGGER "capture_insert"`;
    expect(failures).toEqual([
      `FAIL  target capture triggers: "capture_insert" on ${staging} is disabled: ${fix}`,
    ]);
    await p.target(fix);
    const clean = await runCli([
      'doctor',
      ...connectionArgs({ configFile, sourceUrl: p.sourceUrl }),
      '--target-url',
      p.targetUrl,
      '--json',
    ]);
    expect(clean.code).toBe(0);
    const checks = JSON.parse(clean.stdout) as Check[];
    expect(checks.find((c) => c.check === 'capture triggers')?.status).toBe('ok');
  });
});

describe('audit-trail doctor: tables whose names differ only where a dot falls', () => {
  // "a"."b.c" and "a.b"."c" both read a.b.c: only the first is installed.
  const installed = { tables: [{ schema: 'a', table: 'b.c' }] };
  let p: Pipeline;

  beforeAll(async () => {
    p = await createPipeline(
      'CREATE SCHEMA a; CREATE SCHEMA "a.b"; ' +
        'CREATE TABLE a."b.c" (k int PRIMARY KEY); CREATE TABLE "a.b".c (k int PRIMARY KEY)',
      installed,
    );
  });
  afterAll(async () => p?.dispose());

  it('says the other is not installed', async () => {
    const configFile = await writeConfig({ tables: [{ schema: 'a.b', table: 'c' }] });
    const result = await runCli([
      'doctor',
      ...connectionArgs({ configFile, sourceUrl: p.sourceUrl }),
      '--target-url',
      p.targetUrl,
      '--json',
    ]);
    expect(result.code).toBe(1);
    const checks = JSON.parse(result.stdout) as Check[];
    expect(checks.find((c) => c.check === 'staging tables')).toMatchObject({
      status: 'fail',
      detail: 'not installed for a.b.c',
    });
  });
});

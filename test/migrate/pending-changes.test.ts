import { migrateTarget, PendingChangesError } from '../../src/migrate/migrate-target';
import { auditRows, createPipeline, type Pipeline } from '../engine/helpers';
import { connectionArgs, runCli, writeConfig } from '../support/cli';
import { parseConfig } from '../../src/config';
import { testDecodingColumns } from '../../src/migrate/pending-changes';
import { createTestDatabase, withClient } from '../support/databases';

/**
 * #17 item 4: `migrate` run after an ALTER on the source but before the pipeline applied
 * the changes committed before it gives staging the new shape too early; the engine then
 * stops at an old change staging can no longer take, and no migrate undoes it. Migrate
 * now looks at the source's slots first and refuses, naming the remedy.
 */
describe('migrate refuses a schema change the pipeline has not caught up with', () => {
  let p: Pipeline;
  // Migrate's own catch-up wait (60 s): right after p.replicate() returns, the engine's
  // walsender may hold the slot for a moment, which migrate waits out (a slot not in use
  // is read at once). A shorter wait made these tests depend on how busy the server was.
  const migrate = (extra: { allowPendingChanges?: boolean } = {}) =>
    migrateTarget({ config: p.config, sourceUrl: p.sourceUrl, targetUrl: p.targetUrl, ...extra });
  const stagingColumns = async () =>
    (
      await p.target(
        `SELECT attname FROM pg_attribute WHERE attrelid = 'audit.t_staging'::regclass
           AND attnum > 0 AND NOT attisdropped AND attname NOT LIKE 'ar_h_%' ORDER BY attnum`,
      )
    ).rows.map((row: { attname: string }) => row.attname);

  beforeAll(async () => {
    p = await createPipeline(`CREATE TABLE t (id int PRIMARY KEY, v text)`, {
      tables: [{ table: 't' }],
    });
    await p.replicate();
  });
  afterAll(async () => p?.dispose());

  it('changes before a DROP COLUMN still in the stopped engine’s slot: refused, nothing changed; after the engine caught up, applied', async () => {
    await p.source(`INSERT INTO t VALUES (1, 'a'), (2, 'b')`);
    await p.source(`UPDATE t SET v = 'c' WHERE id = 1`);
    await p.source(`ALTER TABLE t DROP COLUMN v`);

    const early = migrate();
    await expect(early).rejects.toBeInstanceOf(PendingChangesError);
    await expect(early).rejects.toThrow(
      new RegExp(
        `replication slot ${p.slotName} has 3 change\\(s\\) of public\\.t made before its schema change and not yet applied.*` +
          'Let the pipeline apply every change committed before the ALTER first.*Nothing was changed.*--allow-pending-changes',
      ),
    );
    expect(await stagingColumns()).toEqual(['id', 'v']);

    // The CLI says the same and exits 1.
    const cli = await runCli([
      'migrate',
      '--config',
      await writeConfig({ tables: [{ table: 't' }] }),
      ...connectionArgs({ sourceUrl: p.sourceUrl, targetUrl: p.targetUrl }),
      '--catch-up-timeout',
      '30',
    ]);
    expect(cli.code).toBe(1);
    expect(cli.stderr).toMatch(/has 3 change\(s\) of public\.t made before its schema change/);

    // The safe order: the engine applies what was committed before the DROP, then migrate.
    await p.replicate();
    expect((await auditRows(p, 't')).map((row) => row.operation)).toEqual([
      'INSERT',
      'INSERT',
      'UPDATE',
    ]);
    await migrate();
    expect(await stagingColumns()).toEqual(['id']);
    await p.source(`INSERT INTO t VALUES (3)`);
    await p.replicate();
    expect((await auditRows(p, 't')).map((row) => row.operation)).toEqual([
      'INSERT',
      'INSERT',
      'UPDATE',
      'INSERT',
    ]);
  });

  it('changes of the new shape pending (the engine stopped at the first of them) do not stop migrate, nor one made before an ADD COLUMN; --allow-pending-changes overrides', async () => {
    await p.source(`ALTER TABLE t ADD COLUMN note text`);
    await p.source(`INSERT INTO t VALUES (4, 'new shape')`);
    await expect(p.replicate()).rejects.toThrow(/run "audit-trail migrate"/);
    await migrate();
    await p.replicate();
    expect(await stagingColumns()).toEqual(['id', 'note']);

    // A change made before an ADD COLUMN fits the new shape (applied with it NULL).
    await p.source(`UPDATE t SET note = 'before add' WHERE id = 4`);
    await p.source(`ALTER TABLE t ADD COLUMN extra int`);
    await migrate();
    expect(await stagingColumns()).toEqual(['id', 'note', 'extra']);

    await p.source(`UPDATE t SET note = 'before rename' WHERE id = 4`);
    await p.source(`ALTER TABLE t RENAME note TO remark`);
    await expect(migrate()).rejects.toBeInstanceOf(PendingChangesError);
    await migrate({ allowPendingChanges: true });
    expect(await stagingColumns()).toEqual(['id', 'remark', 'extra']);
  });
});

/**
 * The same guard for AWS DMS, whose slot uses test_decoding: it prints each column as
 * `name[type]:value`, the type without its modifier. A pending change is checked by
 * column name and by that type, so a change made before `int` -> `bigint` (or of an
 * array column) is refused like one before a DROP; values that look like columns are
 * not read as columns.
 */
describe('migrate with a DMS (test_decoding) slot compares column types too', () => {
  let sourceUrl: string;
  let targetUrl: string;
  const slot = `h17_td_${Math.random().toString(16).slice(2, 10)}`;
  const config = parseConfig({ tables: [{ table: 't' }] });
  const migrate = () => migrateTarget({ config, sourceUrl, targetUrl, catchUpTimeoutMs: 1000 });
  const drain = () =>
    withClient(sourceUrl, (c) =>
      c.query('SELECT pg_logical_slot_get_changes($1, NULL, NULL)', [slot]),
    );

  beforeAll(async () => {
    sourceUrl = await createTestDatabase('pendtd');
    targetUrl = await createTestDatabase('pendtdtgt');
    await withClient(sourceUrl, async (c) => {
      await c.query(`CREATE TABLE t (id int PRIMARY KEY, n int, tags int[], note text)`);
      await c.query(`SELECT pg_create_logical_replication_slot($1, 'test_decoding')`, [slot]);
    });
    await migrate();
  });
  afterAll(() =>
    withClient(sourceUrl, (c) => c.query('SELECT pg_drop_replication_slot($1)', [slot])).catch(
      () => undefined,
    ),
  );

  it('a change made before int -> bigint is pending: refused; once DMS has read it, applied', async () => {
    await withClient(sourceUrl, async (c) => {
      await c.query(`INSERT INTO t VALUES (1, 2, '{3}', 'a')`);
      await c.query(`ALTER TABLE t ALTER COLUMN n TYPE bigint`);
    });
    await expect(migrate()).rejects.toThrow(
      new RegExp(
        `replication slot ${slot} has 1 change\\(s\\) of public\\.t made before its schema change`,
      ),
    );
    await drain();
    await expect(migrate()).resolves.toBeDefined();
  });

  it('a change of an array column made before int[] -> bigint[] is pending: refused', async () => {
    await withClient(sourceUrl, async (c) => {
      await c.query(`UPDATE t SET tags = '{4}' WHERE id = 1`);
      await c.query(`ALTER TABLE t ALTER COLUMN tags TYPE bigint[]`);
    });
    await expect(migrate()).rejects.toThrow(/has 1 change\(s\) of public\.t made before/);
    await drain();
    await expect(migrate()).resolves.toBeDefined();
  });

  it('a text value that looks like a column (x[integer]:1) is a value, not a column: an ADD COLUMN passes', async () => {
    await withClient(sourceUrl, async (c) => {
      await c.query(`INSERT INTO t VALUES (2, 5, NULL, 'x y[integer]:1 "q"[text]:''z''')`);
      await c.query(`ALTER TABLE t ADD COLUMN extra int`);
    });
    await expect(migrate()).resolves.toBeDefined();
    await drain();
  });
});

describe('testDecodingColumns', () => {
  it('reads quoted names, types with brackets, spaces and quotes, bit strings and the new tuple of a key change', () => {
    expect(
      testDecodingColumns(
        `old-key: id[integer]:1 new-tuple: id[integer]:2 "we[ird"" n"[app."My Type"[]]:'{"a b"}' ` +
          `b[bit varying]:B'0101' t[timestamp with time zone]:'2024-01-01 00:00:00+00' ` +
          `v[text]:'it''s x[integer]:1' u[text]:unchanged-toast-datum z[numeric]:null`,
      ),
    ).toEqual([
      { name: 'id', type: 'integer' },
      { name: 'we[ird" n', type: 'app."My Type"[]' },
      { name: 'b', type: 'bit varying' },
      { name: 't', type: 'timestamp with time zone' },
      { name: 'v', type: 'text' },
      { name: 'u', type: 'text' },
      { name: 'z', type: 'numeric' },
    ]);
  });
});

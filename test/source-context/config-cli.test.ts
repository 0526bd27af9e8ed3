import { mkdtemp, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { buildTableMappings } from '../../mappings/table-mappings';
import { ConfigError, parseConfig } from '../../src/config';
import { connectionArgs, runCli } from '../support/cli';
import { createTestDatabase, withClient } from '../support/databases';
import { cdc, DmsApplier } from '../support/dms-apply';

describe('sourceContext in the config', () => {
  it('appends the context table to the audited tables once, so a parsed config parses the same', () => {
    const config = parseConfig({ tables: [{ table: 'items' }], sourceContext: {} });
    expect(config.sourceContext).toEqual({
      schema: 'audit_context',
      table: 'transaction_context',
      require: [],
      grantInsertTo: [],
    });
    expect(config.tables.map((table) => [table.schema, table.table, table.primaryKey])).toEqual([
      ['public', 'items', undefined],
      ['audit_context', 'transaction_context', ['transaction_id']],
    ]);
    expect(parseConfig(config)).toEqual(config);
    expect(parseConfig({ tables: [{ table: 'items' }] }).tables).toHaveLength(1);
  });

  it('puts the context table into the DMS table mappings', () => {
    const mappings = buildTableMappings(
      parseConfig({ tables: [{ table: 'items' }], sourceContext: { schema: 'ctx', table: 'who' } }),
    );
    const selected = mappings.rules
      .filter((rule) => rule['rule-type'] === 'selection')
      .map((rule) => [rule['object-locator']['schema-name'], rule['object-locator']['table-name']]);
    expect(selected).toContainEqual(['ctx', 'who']);
  });

  it('names the field of an invalid sourceContext', () => {
    const invalid = (input: unknown) => () => parseConfig(input);
    expect(
      invalid({ tables: [{ table: 'items' }], sourceContext: { require: ['actor', 'actor'] } }),
    ).toThrow(/sourceContext\.require: must not repeat a field/);
    expect(
      invalid({ tables: [{ table: 'items' }], sourceContext: { require: ['metadata'] } }),
    ).toThrow(/sourceContext\.require\[0\]/);
    expect(invalid({ tables: [{ table: 'items' }], sourceContext: { tabel: 'x' } })).toThrow(
      ConfigError,
    );
    expect(
      invalid({
        tables: [
          { schema: 'audit_context', table: 'transaction_context', ignoreColumns: ['reason'] },
        ],
        sourceContext: {},
      }),
    ).toThrow(/tables\[0\]\.table: .*is the source context table/);
    expect(
      invalid({ tables: [{ schema: 'other', table: 'transaction_context' }], sourceContext: {} }),
    ).toThrow(/would share the staging table transaction_context_staging/);
  });
});

// Nothing here waits for anything but work: four CLI processes, the first migrate
// installing the whole kit on the target. It once took over 60 s at load 11-14, and did
// so again at load 21-25 (each step timed: no lock, no sleep; every run and the install
// simply slower). So the runs go through the built binary (dist/, what `npx audit-trail`
// runs), not the sources (tsx compiled the CLI's TypeScript before each run: about 1.4 s
// of CPU against 0.25 s), and the test has the time a loaded machine needs.
describe('audit-trail migrate --source-context and history output', () => {
  it('installs the context table, migrates, and prints who and why', async () => {
    const sourceUrl = await createTestDatabase('ctxclisrc');
    const targetUrl = await createTestDatabase('ctxclitgt');
    await withClient(sourceUrl, (client) =>
      client.query('CREATE TABLE items (id int PRIMARY KEY, name text)'),
    );
    const dir = await mkdtemp(path.join(os.tmpdir(), 'audit-trail-ctx-'));
    const configFile = path.join(dir, 'audit-trail.config.json');
    await writeFile(
      configFile,
      JSON.stringify({ tables: [{ table: 'items' }], sourceContext: { require: ['actor'] } }),
    );
    const urls = connectionArgs({ configFile, sourceUrl, targetUrl });
    const missing = await runCli(['migrate', ...urls]);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toMatch(
      /audit_context\.transaction_context does not exist: it is the source context table; create it with audit-trail migrate --source-context/,
    );
    const first = await runCli(['migrate', '--source-context', ...urls]);
    expect(first.stderr).toBe('');
    expect(first.stdout).toContain(
      'created source context table audit_context.transaction_context',
    );
    expect(first.stdout).toContain(
      'target migrated (public.items, audit_context.transaction_context)',
    );
    await withClient(sourceUrl, async (client) => {
      const { rows } = await client.query(
        `SELECT attname FROM pg_attribute WHERE attrelid = 'audit_context.transaction_context'::regclass AND attnotnull AND attnum > 0 ORDER BY attnum`,
      );
      expect(rows.map((row) => row.attname)).toEqual(['transaction_id', 'actor', 'recorded_at']);
    });

    const target = new pg.Client({ connectionString: targetUrl });
    await target.connect();
    try {
      const at = '2026-11-22 10:00:01.000001';
      await new DmsApplier(target, 'audit', 'transaction_context', ['transaction_id']).insert(
        { transaction_id: '42', actor: 'alice', reason: 'TICKET-7\nforged line' },
        cdc('INSERT', at, 42),
      );
      await new DmsApplier(target, 'audit', 'items', ['id']).insert(
        { id: '1', name: 'pen' },
        cdc('INSERT', at, 42),
      );
    } finally {
      await target.end();
    }
    const read = connectionArgs({ configFile, targetUrl });
    const json = await runCli(['history', 'public.items', '1', '--json', ...read]);
    expect(JSON.parse(json.stdout)).toMatchObject([
      {
        operation: 'INSERT',
        context: {
          actor: 'alice',
          onBehalfOf: null,
          requestId: null,
          client: null,
          reason: 'TICKET-7\nforged line',
          metadata: null,
        },
      },
    ]);
    const text = await runCli(['history', 'public.items', '1', ...read]);
    expect(text.stdout.split('\n')[0]).toMatch(
      /INSERT +tx 42 {2}by alice \("TICKET-7\\nforged line"\)$/,
    );
  }, 240_000);
});

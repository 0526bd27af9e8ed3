import { mkdtemp, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { cdc, DmsApplier, fullLoad } from '../support/dms-apply';
// The built binary, as users run it: a dozen runs here, each without tsx's start-up.
import { connectionArgs, runCli, writeConfig } from '../support/cli';
import { createTestDatabase, withClient } from '../support/databases';
import { createPipeline, type Pipeline } from '../engine/helpers';

describe('audit-trail migrate and history', () => {
  let configFile: string;
  let sourceUrl: string;
  let targetUrl: string;

  beforeAll(async () => {
    sourceUrl = await createTestDatabase('src');
    targetUrl = await createTestDatabase('tgt');
    await withClient(sourceUrl, (client) =>
      client.query(
        'CREATE TABLE items (id int PRIMARY KEY, name text, price numeric(12,3), updated_at timestamptz)',
      ),
    );
    const dir = await mkdtemp(path.join(os.tmpdir(), 'audit-trail-cli-'));
    configFile = path.join(dir, 'audit-trail.config.json');
    await writeFile(
      configFile,
      JSON.stringify({ tables: [{ table: 'items', ignoreColumns: ['updated_at'] }] }),
    );
  });

  it('migrates once and reports up to date the second time', async () => {
    const args = ['migrate', ...connectionArgs({ configFile, sourceUrl, targetUrl })];
    const first = await runCli(args);
    expect(first.stderr).toBe('');
    expect(first.code).toBe(0);
    expect(first.stdout).toContain('applied migration 0001-audit-log');
    expect(first.stdout).toContain('target migrated (public.items)');
    const second = await runCli(args);
    expect(second.stdout).toBe('target is up to date (public.items)\n');
  });

  it('prints the documented --json history and --as-of answers', async () => {
    const client = new pg.Client({ connectionString: targetUrl });
    await client.connect();
    const dms = new DmsApplier(client, 'audit', 'items', ['id']);
    await dms.insert(
      { id: '42', name: 'lamp', price: '19.990', updated_at: null },
      fullLoad('2026-11-22 09:00:00.5'),
    );
    const update = cdc('UPDATE', '2026-11-22 10:00:00.123456', 5001);
    await dms.update({ id: '42' }, { price: '17.500' }, update);
    await dms.delete({ id: '42' }, cdc('DELETE', '2026-11-22 11:00:00.000001', 5002));
    await client.end();

    const result = await runCli([
      'history',
      'public.items',
      '42',
      ...connectionArgs({ configFile, targetUrl }),
      '--json',
    ]);
    expect(result.code).toBe(0);
    expect(JSON.parse(result.stdout)).toEqual([
      {
        operation: 'SNAPSHOT',
        commitTimestamp: '2026-11-22T09:00:00.500000Z',
        transactionId: null,
        changeSeq: null,
        oldRow: null,
        newRow: { id: 42, name: 'lamp', price: '19.990' },
        changedColumns: null,
        context: null,
        oldRowJsonNulls: [],
        newRowJsonNulls: [],
      },
      {
        operation: 'UPDATE',
        commitTimestamp: '2026-11-22T10:00:00.123456Z',
        transactionId: '5001',
        changeSeq: update.changeSeq,
        oldRow: { id: 42, name: 'lamp', price: '19.990' },
        newRow: { id: 42, name: 'lamp', price: '17.500' },
        changedColumns: ['price'],
        context: null,
        oldRowJsonNulls: [],
        newRowJsonNulls: [],
      },
      {
        operation: 'DELETE',
        commitTimestamp: '2026-11-22T11:00:00.000001Z',
        transactionId: '5002',
        changeSeq: expect.stringMatching(/^\d{35}$/),
        oldRow: { id: 42, name: 'lamp', price: '17.500' },
        newRow: null,
        changedColumns: null,
        context: null,
        oldRowJsonNulls: [],
        newRowJsonNulls: [],
      },
    ]);

    const asOf = (instant: string) =>
      runCli([
        'history',
        'public.items',
        '42',
        ...connectionArgs({ configFile, targetUrl }),
        '--json',
        '--as-of',
        instant,
      ]);
    expect(JSON.parse((await asOf('2026-11-22T10:00:00.123455Z')).stdout)).toEqual({
      id: 42,
      name: 'lamp',
      price: '19.990',
    });
    expect(JSON.parse((await asOf('2026-11-22T10:00:00.123456Z')).stdout)).toEqual({
      id: 42,
      name: 'lamp',
      price: '17.500',
    });
    expect((await asOf('2026-11-22T12:00:00Z')).stdout).toBe('null\n');

    const human = await runCli([
      'history',
      'public.items',
      '42',
      ...connectionArgs({ configFile, targetUrl }),
    ]);
    expect(human.stdout).toContain('price: "19.990" → "17.500"');
  });

  it('prints one page with --limit and continues with the --after cursor it gives', async () => {
    const base = ['history', 'public.items', '42', ...connectionArgs({ configFile, targetUrl })];
    const first = await runCli([...base, '--json', '--limit', '2']);
    expect(first.code).toBe(0);
    expect(JSON.parse(first.stdout).map((v: { operation: string }) => v.operation)).toEqual([
      'SNAPSHOT',
      'UPDATE',
    ]);
    const cursor = /--after (\S+)/.exec(first.stderr)?.[1];
    expect(cursor).toMatch(/^2026-11-22T10:00:00\.123456Z\/\d{35}\/\d+$/);
    const second = await runCli([...base, '--json', '--limit', '2', '--after', cursor!]);
    expect(JSON.parse(second.stdout).map((v: { operation: string }) => v.operation)).toEqual([
      'DELETE',
    ]);
    expect(second.stderr).toBe(''); // a short page is the last one
    for (const bad of [
      ['--limit', '0'],
      ['--limit', '2x'],
      ['--after', 'not-a-cursor'],
      ['--limit', '1', '--as-of', '2026-11-22T10:00:00Z'],
    ]) {
      const refused = await runCli([...base, ...bad]);
      expect(refused.code).toBe(2);
      expect(refused.stderr).toMatch(/--limit|--after/);
    }
  });

  it('fails with one clear line for a bad URL, an unknown table and a wrong key count', async () => {
    const cases: [string[], RegExp][] = [
      [
        ['history', 'public.items', '1', ...connectionArgs({ configFile, targetUrl: 'mysql://x' })],
        /--target-url must start with postgres:\/\//,
      ],
      [
        ['history', 'public.nope', '1', ...connectionArgs({ configFile, targetUrl })],
        /table public\.nope is not audited/,
      ],
      [
        ['history', 'public.items', '1', '2', ...connectionArgs({ configFile, targetUrl })],
        /has a key of 1 column\(s\) \(id\), got 2 value/,
      ],
      [
        [
          'history',
          'public.items',
          '1',
          ...connectionArgs({ configFile, targetUrl }),
          '--as-of',
          'yesterday',
        ],
        /--as-of must be ISO-8601/,
      ],
      [
        [
          'history',
          'public.items',
          '1',
          ...connectionArgs({ configFile: '/nonexistent.json', targetUrl }),
        ],
        /cannot read config/,
      ],
    ];
    for (const [args, message] of cases) {
      const result = await runCli(args);
      expect(result.code).not.toBe(0);
      expect(result.stderr).toMatch(message);
      // One line with the code, and at most a hint after it.
      const [first, ...rest] = result.stderr.trim().split('\n');
      expect(first).toMatch(/^audit-trail: error \[[A-Z_0-9]+\]: /);
      expect(rest.filter((line) => !line.startsWith('  hint: '))).toEqual([]);
    }
  });

  it('prints the schema-change log of a table (`history schema`)', async () => {
    await withClient(sourceUrl, (client) =>
      client.query('ALTER TABLE items RENAME COLUMN name TO title'),
    );
    const migrated = await runCli([
      'migrate',
      ...connectionArgs({ configFile, sourceUrl, targetUrl }),
    ]);
    expect(migrated.stdout).toContain('public.items: renamed column name to title');
    const args = ['history', 'schema', 'public.items', '--config', configFile];
    const json = await runCli([...args, '--target-url', targetUrl, '--json']);
    expect(json.stderr).toBe('');
    expect(JSON.parse(json.stdout)).toMatchObject([
      {
        change: 'RENAME',
        column: 'title',
        before: { name: 'name', type: 'text', attnum: 2 },
        after: { name: 'title', type: 'text', attnum: 2 },
        detectedBy: 'migrate',
      },
    ]);
    const human = await runCli([...args, '--target-url', targetUrl]);
    expect(human.stdout).toMatch(
      /RENAME name text -> title text {2}\(seen by migrate at or before LSN/,
    );
  });
});

describe('audit-trail history: the JSON null literal', () => {
  const CONFIG = { tables: [{ table: 'docs' }] };
  let p: Pipeline;
  let configFile: string;
  let literalAt: string;

  beforeAll(async () => {
    p = await createPipeline(`CREATE TABLE docs (id int PRIMARY KEY, jb jsonb, j json)`, CONFIG);
    configFile = await writeConfig(CONFIG);
    await p.replicate();
    await p.source(`INSERT INTO docs VALUES (1, NULL, NULL)`);
    await p.source(`UPDATE docs SET jb = 'null'`);
    await p.source(`UPDATE docs SET j = 'null'`);
    await p.source(`DELETE FROM docs`);
    await p.replicate();
    const { rows } = await p.target(
      `SELECT to_char(commit_timestamp AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') AS at
         FROM audit.audit_log WHERE source_table = 'docs' AND operation = 'UPDATE' ORDER BY id DESC`,
    );
    literalAt = rows[0].at;
  });
  afterAll(async () => p?.dispose());

  const history = (...args: string[]) =>
    runCli([
      'history',
      'public.docs',
      '1',
      ...args,
      ...connectionArgs({ configFile, targetUrl: p.targetUrl }),
    ]);

  it('marks a jsonb JSON null apart from SQL NULL in the text output', async () => {
    const human = await history();
    expect(human.code).toBe(0);
    expect(human.stdout).toContain('    jb: null → null (JSON)\n');
    // A json value is its exact text: the literal is the string "null".
    expect(human.stdout).toContain('    j: null → "null"\n');
    // A whole row (here the DELETE's) names its JSON nulls on a line of its own.
    expect(human.stdout).toMatch(
      /DELETE.*\n {4}\{"j":"null","id":1,"jb":null\}\n {4}null \(JSON\): "jb"\n$/,
    );
    const asOf = await history('--as-of', literalAt);
    expect(asOf.stdout).toMatch(/"jb": null[\s\S]*\}\nnull \(JSON\): "jb"\n$/);
  });

  it('lists them in the --json output', async () => {
    const json = await history('--json');
    const versions = JSON.parse(json.stdout) as {
      oldRowJsonNulls: string[];
      newRowJsonNulls: string[];
    }[];
    expect(versions.map((v) => [v.oldRowJsonNulls, v.newRowJsonNulls])).toEqual([
      [[], []],
      [[], ['jb']],
      [['jb'], ['jb']],
      [['jb'], []],
    ]);
    // --as-of --json keeps its documented shape: the row.
    expect(JSON.parse((await history('--json', '--as-of', literalAt)).stdout)).toEqual({
      id: 1,
      jb: null,
      j: 'null',
    });
  });
});

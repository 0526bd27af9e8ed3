import { mkdtemp, readFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { loadConfig } from '../../src/config';
import { runCli } from '../support/cli';
import { createTestDatabase, withClient } from '../support/databases';

describe('audit-trail init', () => {
  let sourceUrl: string;
  let dir: string;

  beforeAll(async () => {
    sourceUrl = await createTestDatabase('init');
    await withClient(sourceUrl, (client) =>
      client.query(`CREATE TABLE a (id int PRIMARY KEY);
                    CREATE TABLE b (v text);
                    CREATE SCHEMA sales;
                    CREATE TABLE sales.orders (id int PRIMARY KEY);`),
    );
    dir = await mkdtemp(path.join(os.tmpdir(), 'audit-trail-init-'));
  });

  it('writes a valid config of the source tables that have a primary key, and never overwrites silently', async () => {
    const file = path.join(dir, 'audit-trail.config.json');
    const result = await runCli(['init', '--source-url', sourceUrl, '--output', file]);
    expect(result.code).toBe(0);
    expect(result.stdout).toBe(`wrote ${file} with 2 tables\n`);
    expect(result.stderr).toBe('skipped public.b: no primary key\n');
    const config = await loadConfig(file);
    expect(config.tables.map((t) => `${t.schema}.${t.table}`)).toEqual([
      'public.a',
      'sales.orders',
    ]);

    const again = await runCli(['init', '--tables', 'a', '--output', file]);
    expect(again.code).toBe(2);
    expect(again.stderr).toMatch(/exists\n {2}hint: add --force to overwrite it\n$/);
    expect(JSON.parse(await readFile(file, 'utf8')).tables).toHaveLength(2);
  });

  it('checks --tables against the source: a table without a key or missing is refused by name', async () => {
    const file = path.join(dir, 'other.json');
    const result = await runCli([
      'init',
      '--source-url',
      sourceUrl,
      '--tables',
      'b,sales.nope',
      '--output',
      file,
    ]);
    expect(result.code).toBe(1);
    expect(result.stderr).toBe(
      'audit-trail: error [TABLE_NOT_AUDITABLE]: public.b has no primary key (add one to audit it); sales.nope does not exist on the source\n' +
        '  hint: audit-trail init --source-url URL without --tables lists the tables that can be audited\n',
    );
  });
});

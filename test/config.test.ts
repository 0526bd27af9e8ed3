import { mkdtemp, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { ConfigError, loadConfig, parseConfig } from '../src/config';

async function tempFile(name: string, content: string): Promise<string> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'audit-trail-config-'));
  const file = path.join(dir, name);
  await writeFile(file, content);
  return file;
}

describe('config', () => {
  it('applies defaults to a minimal config', () => {
    const config = parseConfig({ tables: [{ table: 'items' }] });
    expect(config.auditSchema).toBe('audit');
    expect(config.tables[0]).toEqual({ schema: 'public', table: 'items', ignoreColumns: [] });
  });

  it('names the invalid field', () => {
    expect(() => parseConfig({ tables: [{ schema: 'public', table: '' }] })).toThrow(
      /tables\[0\]\.table: must not be empty/,
    );
    expect(() => parseConfig({ tables: [{ table: 'items', primaryKey: [] }] })).toThrow(
      /tables\[0\]\.primaryKey/,
    );
    expect(() => parseConfig({ tables: [] })).toThrow(/tables: must list at least one table/);
    expect(() => parseConfig({ tables: [{ table: 'items', colour: 'red' }] })).toThrow(
      /tables\[0\]/,
    );
  });

  it('refuses a table listed twice and an ignored key column', () => {
    expect(() => parseConfig({ tables: [{ table: 'a' }, { table: 'a' }] })).toThrow(
      /tables\[1\]\.table: "public\.a" is listed twice/,
    );
    expect(() =>
      parseConfig({ tables: [{ table: 'a', primaryKey: ['id'], ignoreColumns: ['id'] }] }),
    ).toThrow(/tables\[0\]\.ignoreColumns/);
  });

  it('refuses two tables that would share a staging table', () => {
    expect(() =>
      parseConfig({
        tables: [
          { schema: 'a', table: 'items' },
          { schema: 'b', table: 'items' },
        ],
      }),
    ).toThrow(
      /tables\[1\]\.table: "b\.items" and "a\.items" would share the staging table items_staging/,
    );
  });

  it('accepts hostile identifiers as data', () => {
    const config = parseConfig({ tables: [{ schema: 'we"ird', table: "it'ems; drop table x" }] });
    expect(config.tables[0]?.table).toBe("it'ems; drop table x");
  });

  it('loads a JSON file and a TypeScript module with the same shape', async () => {
    const shape = {
      auditSchema: 'history',
      tables: [{ schema: 'public', table: 'items', primaryKey: ['id'] }],
    };
    const json = await loadConfig(await tempFile('audit-trail.config.json', JSON.stringify(shape)));
    const ts = await loadConfig(
      await tempFile(
        'audit-trail.config.ts',
        `const config = ${JSON.stringify(shape)} as const;\nexport default config;\n`,
      ),
    );
    expect(ts).toEqual(json);
    expect(json.auditSchema).toBe('history');
  });

  it('reports a missing file and broken JSON as ConfigError', async () => {
    await expect(loadConfig('/nonexistent/audit-trail.config.json')).rejects.toBeInstanceOf(
      ConfigError,
    );
    await expect(loadConfig(await tempFile('bad.json', '{"tables": ['))).rejects.toThrow(
      /not valid JSON/,
    );
  });
});

import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { buildTableMappings, buildTaskSettings } from '../../mappings';
import { parseConfig } from '../../src/config';
import { runCliInProcess } from '../support/cli';

const input = {
  auditSchema: 'history',
  tables: [
    { table: 'orders' },
    { schema: 'sales', table: 'order_items', primaryKey: ['order_id', 'line_no'] },
  ],
};
const file = path.join(mkdtempSync(path.join(tmpdir(), 'mappings-')), 'audit-trail.config.json');
writeFileSync(file, JSON.stringify(input));

/** The mappings command's output; its error, if it failed, is thrown. */
async function run(...args: string[]): Promise<string> {
  const { stdout, error } = await runCliInProcess(args);
  if (error) throw error;
  return stdout;
}

describe('audit-trail mappings', () => {
  it('prints the table mappings for the config', async () => {
    expect(JSON.parse(await run('mappings', '--config', file))).toEqual(
      buildTableMappings(parseConfig(input)),
    );
  });

  it('prints the task settings with --settings', async () => {
    const settings = JSON.parse(
      await run('mappings', '--config', file, '--settings'),
    ) as ReturnType<typeof buildTaskSettings>;
    expect(settings).toEqual(buildTaskSettings(parseConfig(input)));
    // DMS's control tables live in its login's own schema, never in the audit schema.
    expect(settings.ControlTablesSettings.ControlSchema).toBe('history_dms');
  });

  it('fails with the config error for a bad file', async () => {
    const bad = path.join(path.dirname(file), 'bad.json');
    writeFileSync(bad, JSON.stringify({ tables: [] }));
    await expect(run('mappings', '--config', bad)).rejects.toThrow(
      /tables: must list at least one table/,
    );
  });
});

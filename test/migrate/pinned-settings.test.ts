import { readFileSync } from 'node:fs';
import path from 'node:path';
import { parseConfig } from '../../src/config';
import { migrateTarget } from '../../src/migrate/migrate-target';
import { pinnedSettingsClauses, TRIGGER_SQL_FILES } from '../../src/migrate/sql-files';
import { PINNED_OUTPUT_SETTINGS } from '../../src/postgres/connect';
import { createTestDatabase, withClient } from '../support/databases';

/**
 * The functions that render row or key values as text on the target. The kit pins how
 * values print on its own connections (PINNED_OUTPUT_SETTINGS); DMS's sessions on the
 * target take the database's and role's settings instead, so these functions pin the
 * same settings themselves, rendered from that one list through
 * `{{pinned_output_settings}}` (#17 item 2: with IntervalStyle sql_standard on the
 * target, DMS-shaped writes recorded '1 day 02:00:00' as "1 2:00:00").
 */
const VALUE_RENDERERS = ['capture_insert', 'capture_update', 'row_key_of'];

/** Names of the functions whose SET clauses hold the placeholder, from triggers/. */
function functionsWithPlaceholder(): string[] {
  return TRIGGER_SQL_FILES.flatMap((file) => {
    const text = readFileSync(path.join(__dirname, '../../triggers', file), 'utf8');
    const headers = text.matchAll(
      /CREATE OR REPLACE FUNCTION \S+?\.(\w+)\(([\s\S]*?)AS \$function\$/g,
    );
    return [...headers]
      .filter((header) => header[2]!.includes('{{pinned_output_settings}}'))
      .map((header) => header[1]!);
  });
}

describe('functions that render values pin every output setting the kit pins', () => {
  let targetUrl: string;
  beforeAll(async () => {
    const sourceUrl = await createTestDatabase('pinsrc');
    targetUrl = await createTestDatabase('pintgt');
    await withClient(sourceUrl, (client) =>
      client.query('CREATE TABLE items (id int PRIMARY KEY, v text)'),
    );
    await migrateTarget({
      config: parseConfig({ tables: [{ table: 'items' }] }),
      sourceUrl,
      targetUrl,
    });
  }, 120_000);

  it('each of them takes its SET clauses from PINNED_OUTPUT_SETTINGS', () => {
    expect(functionsWithPlaceholder().sort()).toEqual([...VALUE_RENDERERS].sort());
  });

  it.each(VALUE_RENDERERS)('%s is installed with every pinned setting and value', async (name) => {
    const { rows } = await withClient(targetUrl, (client) =>
      client.query<{ name: string; value: string }>(
        `SELECT lower(split_part(setting, '=', 1)) AS name,
                substr(setting, strpos(setting, '=') + 1) AS value
           FROM pg_catalog.pg_proc p, unnest(p.proconfig) AS setting
          WHERE p.pronamespace = 'audit'::regnamespace AND p.proname = $1`,
        [name],
      ),
    );
    const installed = Object.fromEntries(rows.map((row) => [row.name, row.value]));
    for (const [setting, value] of Object.entries(PINNED_OUTPUT_SETTINGS))
      expect(installed[setting.toLowerCase()], `${name} pins ${setting}`).toBe(value);
  });

  it('renders plain setting names only', () => {
    expect(pinnedSettingsClauses({ TimeZone: 'UTC', lc_monetary: "it's" })).toBe(
      "SET TimeZone = 'UTC'\nSET lc_monetary = 'it''s'",
    );
    expect(() => pinnedSettingsClauses({ 'jit = on; SET x': 'off' })).toThrow(/not a setting name/);
  });
});

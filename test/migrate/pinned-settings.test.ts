import { parseConfig } from '../../src/config';
import { migrateTarget } from '../../src/migrate/migrate-target';
import {
  pinnedSettingsClauses,
  renderTriggerSql,
  TRIGGER_SQL_FILES,
} from '../../src/migrate/sql-files';
import { PINNED_OUTPUT_SETTINGS } from '../../src/postgres/connect';
import {
  CAPTURE_FUNCTIONS,
  HISTORY_FUNCTIONS,
  OWNER_ONLY_FUNCTIONS,
  RELOAD_FUNCTIONS,
} from '../../src/trust/secure-install';
import { canonicalBlockHeaderSql, canonicalRowSql } from '../../src/trust/canonical';
import { createTestDatabase, withClient } from '../support/databases';

/**
 * The kit pins how values print on its own connections (PINNED_OUTPUT_SETTINGS); DMS's
 * sessions on the target, and the roles that call the kit's functions, take the
 * database's and role's settings instead. So every function that prints values runs
 * under the same settings: its own SET clauses, rendered from that one list through
 * `{{pinned_output_settings}}` (#17 item 2: with IntervalStyle sql_standard on the
 * target, DMS-shaped writes recorded '1 day 02:00:00' as "1 2:00:00"), or, for a helper
 * only the kit's functions call, its callers'. Which functions print is read from the
 * SQL migrate installs, so a new one is checked without being listed here.
 */

/** A function as the rendered SQL defines it. */
interface DefinedFunction {
  readonly name: string;
  /** What stands between its name and its body: arguments, return type, SET clauses. */
  readonly header: string;
  readonly body: string;
}

/** Every function the kit's SQL files define, from the text migrate installs. */
function definedFunctions(): DefinedFunction[] {
  return TRIGGER_SQL_FILES.flatMap((file) =>
    [
      ...renderTriggerSql(file, 'audit').matchAll(
        /CREATE OR REPLACE FUNCTION "audit"\.(\w+)\(([\s\S]*?)\bAS \$function\$([\s\S]*?)\$function\$/g,
      ),
    ].map(([, name, header, body]) => ({ name: name!, header: header!, body: body! })),
  );
}

/**
 * What in a body prints values as the session's settings say (or reads them back):
 * PostgreSQL's renderers of values and rows as JSON or record text, and conversions
 * between time zones, timestamps and intervals. The hash chain's canonical texts are
 * left out: they print every timestamp with to_char in UTC and nothing else a setting
 * changes (src/trust/canonical.ts), and verify recomputes them outside the database.
 */
function printsValues(fn: DefinedFunction): boolean {
  const body = fn.body
    .replaceAll(canonicalRowSql('a'), '')
    .replaceAll(canonicalBlockHeaderSql('b'), '');
  return /\b(?:to_jsonb?|row_to_json|record_out|array_to_json|jsonb?_build_(?:object|array)|jsonb?_(?:object_)?agg)\s*\(|\bAT\s+TIME\s+ZONE\b|::\s*(?:pg_catalog\.)?(?:timestamp|timestamptz|date|interval)\b/i.test(
    body,
  );
}

/**
 * Printers whose output no pinned setting changes, each with why; run per captured row,
 * where a SET clause would save and restore every setting on each call.
 */
const SETTINGS_CANNOT_CHANGE: Record<string, string> = {
  key_of: 'jsonb in, jsonb out: a key number goes through numeric, whose text no setting changes',
  key_value:
    'jsonb in, jsonb out: a key number goes through numeric, whose text no setting changes',
};

/** Called from outside the kit's SQL: triggers, and the functions granted to a role. */
function isEntryPoint(fn: DefinedFunction): boolean {
  const granted: readonly string[] = [
    ...CAPTURE_FUNCTIONS,
    ...HISTORY_FUNCTIONS,
    ...[...RELOAD_FUNCTIONS, ...OWNER_ONLY_FUNCTIONS].map((signature) => signature.split('(')[0]!),
  ];
  return /\bRETURNS\s+trigger\b/i.test(fn.header) || granted.includes(fn.name);
}

const pins = (fn: DefinedFunction) => fn.header.includes(pinnedSettingsClauses());

/**
 * The functions that print values without running under the pinned settings: neither
 * their own SET clauses nor, for one only kit functions call, all its callers'.
 */
function unpinnedPrinters(functions: readonly DefinedFunction[]): string[] {
  const callers = (fn: DefinedFunction) =>
    functions.filter(
      (other) => other !== fn && new RegExp(`\\.${fn.name}\\s*\\(`).test(other.body),
    );
  const runsPinned = (fn: DefinedFunction, path: ReadonlySet<string>): boolean => {
    if (pins(fn)) return true;
    if (isEntryPoint(fn) || path.has(fn.name)) return false;
    const from = callers(fn);
    return (
      from.length > 0 && from.every((caller) => runsPinned(caller, new Set([...path, fn.name])))
    );
  };
  return functions
    .filter((fn) => printsValues(fn) && !(fn.name in SETTINGS_CANNOT_CHANGE))
    .filter((fn) => !runsPinned(fn, new Set()))
    .map((fn) => fn.name);
}

describe('functions that print values run under every output setting the kit pins', () => {
  const functions = definedFunctions();
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

  it('finds the printers in the rendered SQL', () => {
    expect(functions.filter(printsValues).map((fn) => fn.name)).toEqual(
      expect.arrayContaining([
        'capture_insert',
        'capture_update',
        'row_key_of',
        'exact_row',
        'exact_document',
        'bounded_arrays',
        'finish_reload',
        'reload_on_change',
        'key_of',
      ]),
    );
  });

  it('each runs under them: its own SET clauses, or all its callers’ for a helper', () => {
    expect(unpinnedPrinters(functions)).toEqual([]);
  });

  it('a new function that prints values without the placeholder fails the check', () => {
    const printer = (name: string, header: string, body: string) => ({ name, header, body });
    expect(
      unpinnedPrinters([
        ...functions,
        printer(
          'new_api',
          'p jsonb) RETURNS text LANGUAGE sql ',
          `SELECT (p ->> 't')::timestamptz::text`,
        ),
        printer(
          'new_trigger',
          ') RETURNS trigger LANGUAGE plpgsql ',
          'BEGIN PERFORM to_jsonb(NEW); END',
        ),
        // A helper called by one unpinned function is not covered by a pinned one.
        printer(
          'new_helper',
          'r record) RETURNS text LANGUAGE sql ',
          'SELECT row_to_json(r)::text',
        ),
        printer(
          'new_caller',
          ') RETURNS trigger LANGUAGE plpgsql ',
          'BEGIN PERFORM "audit".new_helper(NEW); END',
        ),
      ]),
    ).toEqual(['new_api', 'new_trigger', 'new_helper']);
  });

  it('what is exempt still prints, and is exempt for a reason', () => {
    for (const [name, why] of Object.entries(SETTINGS_CANNOT_CHANGE)) {
      const fn = functions.find((candidate) => candidate.name === name);
      expect(fn && printsValues(fn), `${name} still prints`).toBe(true);
      expect(why.length).toBeGreaterThan(20);
    }
  });

  it('every function with the placeholder is installed with every pinned setting and value', async () => {
    const pinned = functions.filter(pins).map((fn) => fn.name);
    expect(pinned.length).toBeGreaterThanOrEqual(6);
    const { rows } = await withClient(targetUrl, (client) =>
      client.query<{ fn: string; name: string; value: string }>(
        `SELECT p.proname AS fn, lower(split_part(setting, '=', 1)) AS name,
                substr(setting, strpos(setting, '=') + 1) AS value
           FROM pg_catalog.pg_proc p, unnest(p.proconfig) AS setting
          WHERE p.pronamespace = 'audit'::regnamespace AND p.proname = ANY ($1)`,
        [pinned],
      ),
    );
    for (const name of pinned) {
      const installed = Object.fromEntries(
        rows.filter((row) => row.fn === name).map((row) => [row.name, row.value]),
      );
      for (const [setting, value] of Object.entries(PINNED_OUTPUT_SETTINGS))
        expect(installed[setting.toLowerCase()], `${name} pins ${setting}`).toBe(value);
    }
  });

  it('renders plain setting names only', () => {
    expect(pinnedSettingsClauses({ TimeZone: 'UTC', lc_monetary: "it's" })).toBe(
      "SET TimeZone = 'UTC'\nSET lc_monetary = 'it''s'",
    );
    expect(() => pinnedSettingsClauses({ 'jit = on; SET x': 'off' })).toThrow(/not a setting name/);
  });
});

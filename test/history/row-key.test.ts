import { Kysely, PostgresDialect } from 'kysely';
import pg from 'pg';
import { createHistory } from '../../src/history';
import { canonicalKeyValueJson, clientRowKey } from '../../src/history/row-key';
import { createDmsTarget, type DmsTarget } from '../support/dms-target';
import { cdc, DmsApplier } from '../support/dms-apply';

const TYPES = ['smallint', 'integer', 'bigint', 'text', 'uuid'] as const;

const SOURCE_DDL = `
  CREATE TABLE public.k_smallint (k smallint PRIMARY KEY, v text);
  CREATE TABLE public.k_integer (k integer PRIMARY KEY, v text);
  CREATE TABLE public.k_bigint (k bigint PRIMARY KEY, v text);
  CREATE TABLE public.k_text (k text PRIMARY KEY, v text);
  CREATE TABLE public.k_uuid (k uuid PRIMARY KEY, v text);
  CREATE TABLE public.k_numeric (k numeric(10, 2) PRIMARY KEY, v text);
  CREATE TABLE public.k_pair (region text, id bigint, v text, PRIMARY KEY (region, id));`;

/** Values a caller (or an adversary) may pass, canonical or not, for every type. */
const CANDIDATES = [
  '0',
  '-0',
  '+0',
  '00',
  '1',
  '-1',
  '007',
  ' 42',
  '42 ',
  '+42',
  '1e3',
  '1.0',
  '4.5',
  '0x10',
  '32767',
  '32768',
  '-32768',
  '-32769',
  '2147483647',
  '2147483648',
  '-2147483648',
  '-2147483649',
  '9007199254740993',
  '9223372036854775807',
  '9223372036854775808',
  '-9223372036854775808',
  '-9223372036854775809',
  '99999999999999999999',
  '',
  'a',
  'it\'s "quoted",\nwith\ttabs\\ and a \u0001 control',
  'Zürich ẞ 東京 🦆',
  'e\u0301', // decomposed: kept as is, not normalised
  '\u00e9',
  '\ud83e', // lone high surrogate
  '\udd86', // lone low surrogate
  'nul \u0000 inside',
  'x'.repeat(100_000),
  '{"id": 1}',
  'NULL',
  '0e1a1b4c-5d6e-4f70-8a9b-0c1d2e3f4a5b',
  '0E1A1B4C-5D6E-4F70-8A9B-0C1D2E3F4A5B',
  '{0e1a1b4c-5d6e-4f70-8a9b-0c1d2e3f4a5b}',
  '0e1a1b4c5d6e4f708a9b0c1d2e3f4a5b',
  '00000000-0000-0000-0000-000000000000',
];

describe('row keys built in the client', () => {
  let dmsTarget: DmsTarget;
  let target: pg.Client;
  let db: Kysely<unknown>;

  beforeAll(async () => {
    dmsTarget = await createDmsTarget(SOURCE_DDL, {
      auditSchema: 'audit',
      tables: [...TYPES, 'numeric', 'pair'].map((type) => ({ table: `k_${type}` })),
    });
    ({ client: target, db } = dmsTarget);
  });

  afterAll(() => dmsTarget?.close());

  /** row_key_of's answer (the oracle), or its error. */
  async function rowKeyOf(table: string, values: string[]): Promise<string | Error> {
    try {
      const { rows } = await target.query<{ key: string }>(
        `SELECT audit.row_key_of('public', $1, $2::text[])::text AS key`,
        [table, values],
      );
      return rows[0]!.key;
    } catch (error) {
      return error as Error;
    }
  }

  it('are exactly what row_key_of returns, for every value they accept', async () => {
    const built: Record<string, number> = {};
    for (const type of TYPES) {
      for (const value of CANDIDATES) {
        const client = clientRowKey(['k'], [type], [value]);
        if (client === null) continue;
        built[type] = (built[type] ?? 0) + 1;
        const oracle = await rowKeyOf(`k_${type}`, [value]);
        expect(oracle, `${type} ${JSON.stringify(value.slice(0, 40))}`).not.toBeInstanceOf(Error);
        const { rows } = await target.query<{ same: boolean; text: string }>(
          'SELECT $1::jsonb = $2::jsonb AS same, $1::jsonb::text AS text',
          [client, oracle],
        );
        expect(
          [rows[0]!.same, rows[0]!.text],
          `${type} ${JSON.stringify(value.slice(0, 40))}`,
        ).toEqual([true, oracle]);
      }
    }
    // The canonical values of each type were built in the client, not left to the server.
    expect(built).toEqual({ smallint: 5, integer: 9, bigint: 14, text: 42, uuid: 2 });
  });

  it('leave every other value to row_key_of', () => {
    for (const value of ['-0', '007', ' 42', '+42', '1e3', '32768']) {
      expect(canonicalKeyValueJson('smallint', value), value).toBeNull();
    }
    expect(canonicalKeyValueJson('integer', '2147483648')).toBeNull();
    expect(canonicalKeyValueJson('bigint', '9223372036854775808')).toBeNull();
    expect(canonicalKeyValueJson('bigint', '-9223372036854775809')).toBeNull();
    expect(canonicalKeyValueJson('text', 'nul \u0000 inside')).toBeNull();
    expect(canonicalKeyValueJson('text', 'lone \ud83e')).toBeNull();
    expect(canonicalKeyValueJson('uuid', '0E1A1B4C-5D6E-4F70-8A9B-0C1D2E3F4A5B')).toBeNull();
    expect(canonicalKeyValueJson('numeric(10,2)', '1')).toBeNull();
    expect(canonicalKeyValueJson('character varying(3)', 'abcdef')).toBeNull();
    expect(clientRowKey(['region', 'id'], ['text', 'bigint'], ['EU', '7'])).toBe(
      '{"region":"EU","id":7}',
    );
    expect(clientRowKey(['region', 'id'], ['text', 'bigint'], ['EU'])).toBeNull();
  });

  it('find the same versions as row_key_of, with no row_key_of call in the query', async () => {
    const dms = new DmsApplier(target, 'audit', 'k_pair', ['region', 'id']);
    await dms.insert({ region: 'EU', id: '7', v: 'a' }, cdc('INSERT', '2026-11-22 10:00:00', 1));
    await dms.update(
      { region: 'EU', id: '7' },
      { v: 'b' },
      cdc('UPDATE', '2026-11-22 10:00:01', 2),
    );
    const sent: string[] = [];
    const history = createHistory(db, { auditSchema: 'audit' });
    const logged = loggingKysely(dmsTarget.targetUrl, sent);
    try {
      const viaLog = createHistory(logged, { auditSchema: 'audit' });
      const canonical = await viaLog.history('public.k_pair', { region: 'EU', id: 7 });
      expect(canonical.map((v) => [v.operation, v.newRow?.v])).toEqual([
        ['INSERT', 'a'],
        ['UPDATE', 'b'],
      ]);
      const versionQueries = sent.filter((text) => text.includes('audit_log'));
      expect(versionQueries.length).toBeGreaterThan(0);
      expect(versionQueries.filter((text) => text.includes('row_key_of'))).toEqual([]);
      // Leading zeros: not canonical, so row_key_of decides, and finds the same row.
      sent.length = 0;
      expect(await viaLog.history('public.k_pair', ['EU', '007'])).toEqual(canonical);
      expect(sent.some((text) => text.includes('row_key_of'))).toBe(true);
      expect(await history.history('public.k_pair', { region: 'EU', id: 7n })).toEqual(canonical);
    } finally {
      await logged.destroy();
    }
  });

  it('are checked against the registry inside the query: a changed key type is seen at once', async () => {
    // The table's key was text when the History object read the registry; versions were
    // recorded under the text key, then the key became an integer (the registry says so,
    // as migrate writes it) and versions were recorded under the integer key.
    const dms = new DmsApplier(target, 'audit', 'k_text', ['k']);
    await dms.insert({ k: '42', v: 'as text' }, cdc('INSERT', '2026-11-22 11:00:00', 10));
    const history = createHistory(db, { auditSchema: 'audit' });
    expect((await history.history('public.k_text', ['42'])).map((v) => v.key)).toEqual([
      { k: '42' },
    ]);
    await target.query(`
      INSERT INTO audit.audit_log (source_schema, source_table, row_key, operation, commit_timestamp,
        change_seq, transaction_id, old_row, new_row, recorded_at)
      VALUES ('public', 'k_text', '{"k": 42}', 'INSERT', '2026-11-22 12:00:00+00',
        '20261122120000000000000000000000011', '11', NULL, '{"k": 42, "v": "as integer"}', now());
      UPDATE audit.audited_table SET key_types = ARRAY['integer'] WHERE source_table = 'k_text';`);
    try {
      const oracle = await rowKeyOf('k_text', ['42']);
      expect(oracle).toBe('{"k": 42}');
      const versions = await history.history('public.k_text', ['42']);
      expect(versions.map((v) => [v.key, v.newRow?.v])).toEqual([[{ k: 42 }, 'as integer']]);
    } finally {
      await target.query(
        `UPDATE audit.audited_table SET key_types = ARRAY['text'] WHERE source_table = 'k_text'`,
      );
    }
  });

  it('are checked against the registry inside the query: changed exact-number columns are seen at once', async () => {
    // The History object read k_integer's registry row (no numeric or bigint column) on its
    // first call; then v became numeric (the registry says so, as migrate writes it) and a
    // version with a numeric v was recorded. Its v is the exact text, as for any numeric.
    const dms = new DmsApplier(target, 'audit', 'k_integer', ['k']);
    await dms.insert({ k: '5', v: 'as text' }, cdc('INSERT', '2026-11-22 11:00:00', 20));
    const history = createHistory(db, { auditSchema: 'audit' });
    expect((await history.history('public.k_integer', ['5'])).map((v) => v.newRow)).toEqual([
      { k: 5, v: 'as text' },
    ]);
    expect(
      (
        await history.changesBetween(
          'public.k_integer',
          '2026-11-22T11:00:00Z',
          '2026-11-22T13:00:00Z',
        )
      ).map((v) => v.newRow),
    ).toEqual([{ k: 5, v: 'as text' }]);
    await target.query(`
      INSERT INTO audit.audit_log (source_schema, source_table, row_key, operation, commit_timestamp,
        change_seq, transaction_id, old_row, new_row, recorded_at)
      VALUES ('public', 'k_integer', '{"k": 5}', 'UPDATE', '2026-11-22 12:00:00+00',
        '20261122120000000000000000000000021', '21', '{"k": 5, "v": "as text"}', '{"k": 5, "v": 1.50}', now());
      UPDATE audit.audited_table SET exact_number_columns = ARRAY['v'] WHERE source_table = 'k_integer';`);
    try {
      for (const page of [undefined, {}]) {
        const versions = await history.history('public.k_integer', ['5'], page);
        expect(versions.map((v) => v.newRow)).toEqual([
          { k: 5, v: 'as text' },
          { k: 5, v: '1.50' },
        ]);
      }
      expect(await history.asOf('public.k_integer', ['5'], '2026-11-22T13:00:00Z')).toEqual({
        k: 5,
        v: '1.50',
      });
      const latest = await history.latest('public.k_integer');
      expect(latest.filter((v) => v.key.k === 5).map((v) => v.newRow)).toEqual([
        { k: 5, v: '1.50' },
      ]);
      const between = await history.changesBetween(
        'public.k_integer',
        '2026-11-22T11:00:00Z',
        '2026-11-22T13:00:00Z',
      );
      expect(between.map((v) => v.newRow)).toEqual([
        { k: 5, v: 'as text' },
        { k: 5, v: '1.50' },
      ]);
    } finally {
      await target.query(
        `UPDATE audit.audited_table SET exact_number_columns = '{}' WHERE source_table = 'k_integer'`,
      );
    }
  });
});

/** A kysely instance on `url` that records the SQL of every statement it sends. */
function loggingKysely(url: string, sent: string[]): Kysely<unknown> {
  return new Kysely<unknown>({
    dialect: new PostgresDialect({ pool: new pg.Pool({ connectionString: url, max: 1 }) }),
    log: (event) => {
      sent.push(event.query.sql);
    },
  });
}

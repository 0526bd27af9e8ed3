import { parseConfig } from '../../src/config';
import { createHistory } from '../../src/history';
import { commitTimeText } from '../../src/history/commit-time';
import { migrateTarget } from '../../src/migrate/migrate-target';
import { createKysely } from '../../src/postgres/connect';
import { createTestDatabase, withClient } from '../support/databases';

/** What the history API printed before commit-time.ts: the server's to_char. */
const TO_CHAR = `to_char(t AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')`;

// Instants where a hand-made calendar goes wrong: the range's ends, PostgreSQL's epoch and
// the µs either side of it, the Unix epoch, year and era boundaries (1 BC is year 0),
// leap days of centuries that are and are not leap years, years of 1 to 6 digits.
const EDGES = [
  '4713-11-24 00:00:00+00 BC',
  '4713-11-24 00:00:00.000001+00 BC',
  '4713-12-31 23:59:59.999999+00 BC',
  '0001-12-31 23:59:59.999999+00 BC',
  '0001-01-01 00:00:00+00 BC',
  '0001-01-01 00:00:00+00',
  '0001-02-29 12:00:00+00 BC',
  '0005-02-29 12:00:00+00 BC',
  '0099-12-31 23:59:59.999999+00',
  '0100-03-01 00:00:00+00',
  '0999-12-31 23:59:59.5+00',
  '1000-01-01 00:00:00+00',
  '1582-10-04 23:59:59+00',
  '1582-10-15 00:00:00+00',
  '1600-02-29 00:00:00+00',
  '1900-02-28 23:59:59.999999+00',
  '1900-03-01 00:00:00+00',
  '1969-12-31 23:59:59.999999+00',
  '1970-01-01 00:00:00+00',
  '1999-12-31 23:59:59.999999+00',
  '2000-01-01 00:00:00+00',
  '2000-01-01 00:00:00.000001+00',
  '2000-02-29 23:59:59.999999+00',
  '2026-12-05 21:59:60+00',
  '2100-02-28 12:34:56.789+00',
  '2100-03-01 00:00:00+00',
  '9999-12-31 23:59:59.999999+00',
  '10000-01-01 00:00:00+00',
  '99999-12-31 23:59:59.999999+00',
  '100000-01-01 00:00:00+00',
  '294276-12-31 23:59:59.999999+00',
  '2026-06-01 12:00:00+05:30',
  'infinity',
  '-infinity',
];

describe('commit times printed in the client', () => {
  let url: string;

  beforeAll(async () => {
    url = await createTestDatabase('commit_time');
  });

  // Every instant's text from its 8 bytes is the server's to_char: the edges, and 20,000
  // instants drawn over the whole range (µs since 2000-01-01, 4713 BC to 294276 AD), half
  // of them in the years a log holds, all with µs.
  it("is to_char's text for every timestamptz PostgreSQL holds", async () => {
    const rows = await withClient(url, async (client) => {
      // Days added in UTC: no daylight saving moves an instant past the range's end.
      await client.query("SET TimeZone = 'UTC'");
      await client.query('SELECT setseed(0.25)');
      const { rows } = await client.query<{ expected: string | null; hex: string }>(
        `
        WITH instants AS (
          SELECT t::timestamptz AS t FROM unnest($1::text[]) AS t
          UNION ALL
          -- A random day and µs of it (the range's span overflows an interval's µs).
          SELECT timestamptz '4713-11-24 00:00:00+00 BC'
                 + floor(random() * (date '294276-12-31' - date '4713-11-24 BC' + 1))
                   * interval '1 day'
                 + floor(random() * 86400000000) * interval '1 microsecond'
            FROM generate_series(1, 10000)
          UNION ALL
          SELECT timestamptz '1900-01-01 00:00:00+00' + random() * interval '200 years'
            FROM generate_series(1, 10000))
        SELECT ${TO_CHAR} AS expected,
               pg_catalog.encode(pg_catalog.timestamptz_send(t), 'hex') AS hex
          FROM instants`,
        [EDGES],
      );
      return rows;
    });
    expect(rows).toHaveLength(EDGES.length + 20_000);
    const wrong = rows.filter((row) => commitTimeText(row.hex) !== row.expected);
    expect(wrong.slice(0, 5)).toEqual([]);
    // The edges are in: both infinities print NULL, as to_char does.
    expect(rows.filter((row) => row.expected === null)).toHaveLength(2);
  });

  it('refuses a text that is not 8 bytes', () => {
    expect(() => commitTimeText('00')).toThrow(/8 bytes/);
  });

  // Through the API: versions whose commit times are the edges above (a hostile writer, or a
  // source with such clocks) read as to_char prints them, in every kind of read; one
  // transaction's versions share theirs (copied, not printed again).
  it('reads every version with the commit time to_char gives, in every read', async () => {
    const sourceUrl = await createTestDatabase('commit_time_src');
    const targetUrl = await createTestDatabase('commit_time_tgt');
    await withClient(sourceUrl, (client) =>
      client.query('CREATE TABLE items (id bigint PRIMARY KEY, name text)'),
    );
    await migrateTarget({
      config: parseConfig({ tables: [{ table: 'items' }] }),
      sourceUrl,
      targetUrl,
    });
    const expected = await withClient(targetUrl, async (client) => {
      await client.query(
        `INSERT INTO audit.audit_log (source_schema, source_table, row_key, operation,
           commit_timestamp, change_seq, transaction_id, new_row)
         SELECT 'public', 'items', jsonb_build_object('id', 1), 'INSERT', t::timestamptz,
                lpad(n::text, 35, '0'), (n / 2)::text,
                jsonb_build_object('id', 1, 'name', 'v' || n)
           FROM unnest($1::text[]) WITH ORDINALITY AS e(t, n)`,
        [EDGES],
      );
      const { rows } = await client.query<{ text: string | null }>(
        `SELECT ${TO_CHAR.replace('(t ', '(commit_timestamp ')} AS text FROM audit.audit_log ORDER BY id`,
      );
      return rows.map((row) => row.text);
    });
    expect(expected).toHaveLength(EDGES.length);
    const db = createKysely<unknown>(targetUrl, { max: 1 });
    try {
      const history = createHistory(db);
      const all = await history.history('public.items', { id: 1 });
      expect(all.map((v) => v.commitTimestamp)).toEqual(expected);
      const page = await history.history('public.items', { id: 1 }, { limit: 5 });
      expect(page.map((v) => v.commitTimestamp)).toEqual(expected.slice(0, 5));
      const pair = await history.transaction('1');
      expect(pair.map((v) => v.commitTimestamp)).toEqual(expected.slice(1, 3));
      // The last version applied by then is the -infinity one (the last inserted).
      const at = await history.versionAt('public.items', { id: 1 }, '2000-01-01T00:00:00Z');
      expect(at).toBeDefined();
      expect(at!.commitTimestamp).toBeNull();
      expect(at!.commitTimestamp).toBe(expected[EDGES.length - 1]);
    } finally {
      await db.destroy();
    }
  });
});

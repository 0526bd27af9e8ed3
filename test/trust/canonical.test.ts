import { canonicalRowAsArraySql, canonicalRowSql } from '../../src/trust/canonical';
import { createTestDatabase, withClient } from '../support/databases';

/**
 * The hash chain's rows were hashed from `jsonb_build_array(<columns>)::text`; the seal
 * and verify now build that text element by element (cheaper: no copy of each document
 * into a new jsonb). Every chain sealed before must still verify, so the two forms must
 * print the same bytes: held here on the server over values that exercise every way
 * jsonb prints (escapes, unicode, numbers, nesting, empty containers, JSON null and SQL
 * NULL, arrays of text), in a session whose settings differ from the kit's.
 */
describe('the canonical text of an audit row', () => {
  it('is exactly what jsonb_build_array of its columns prints', async () => {
    const url = await createTestDatabase('canonical');
    await withClient(url, async (client) => {
      await client.query(`SET TimeZone = 'America/St_Johns'; SET DateStyle = 'SQL, DMY';
        SET extra_float_digits = 0; SET IntervalStyle = 'sql_standard'`);
      await client.query(`CREATE TABLE a (
        source_schema text, source_table text, row_key jsonb, operation text,
        commit_timestamp timestamptz(6), change_seq varchar(35), transaction_id text,
        stream_position text, old_row jsonb, new_row jsonb, changed_columns text[],
        recorded_at timestamptz(6), old_json_nulls text[], new_json_nulls text[])`);
      await client.query(`INSERT INTO a (source_schema, source_table, row_key, operation, commit_timestamp,
        change_seq, transaction_id, stream_position, old_row, new_row, changed_columns, recorded_at) VALUES
        ('public', 'items', '{"id": 1}', 'INSERT', '2026-01-01 00:00:00.000001+00',
         '20260101000000000000000000000000001', '42', '0/16B3748', NULL,
         '{"id": 1, "name": "a \\"quoted\\" \\\\ back\\nslash\\ttab \\u0001 é 🎉", "n": 1.10, "big": 123456789012345678901234567890.5, "neg": -0.0, "e": 1e-7}',
         NULL, '2026-01-01 00:00:00+00'),
        ('Schéma "x"', 'T\\ab''le', '{"k": "v", "a": 2}', 'UPDATE', '1999-12-31 23:59:59.999999-08',
         NULL, NULL, NULL, '{"j": {"x": [1, {"y": null}, [], {}], "s": ""}, "t": true, "f": false, "z": null}',
         '{"j": [], "arr": ["a", "b, c", null]}', '{j,arr,"with space","quo\\"te"}', '2026-06-15 12:30:45.5+02'),
        ('s', 't', '"scalar"', 'DELETE', '2026-03-29 01:30:00+00', '', '', '', '[1, "two", 3.0]', 'null',
         '{}', '2026-03-29 01:30:00+00'),
        ('s', 't', '{}', 'SNAPSHOT', '0001-01-01 00:00:00+00', NULL, NULL, NULL, NULL, NULL, NULL,
         '294276-12-31 23:59:59.999999+00')`);
      await client.query(`INSERT INTO a VALUES
        ('s', 't', '{"id": 3}', 'UPDATE', '2026-03-29 01:30:00+00', NULL, NULL, NULL,
         '{"id": 3, "jb": null}', '{"id": 3, "jb": null}', '{jb}', '2026-03-29 01:30:00+00',
         NULL, '{jb,"quo\\"te"}'),
        ('s', 't', '{"id": 3}', 'DELETE', '2026-03-29 01:30:00+00', NULL, NULL, NULL,
         '{"id": 3, "jb": null}', NULL, NULL, '2026-03-29 01:30:00+00', '{jb}', NULL)`);
      // The plain columns (printed through to_json) with every kind of character a string
      // escape treats apart; timestamps at infinity (to_char gives NULL) and before year 1.
      await client.query(`INSERT INTO a VALUES
        (E'sch\\x01\\x1f\\x7f"\\\\ema/', E'tab\\u2028le \\U0001F389 \\u00e9\\r', '{"id": 4}', E'IN\\bS\\fERT',
         'infinity', E'seq\\t"q"', E'x\\\\id', E'\\n/pos', NULL, '{"id": 4}', '{"a\\\\b"}',
         '-infinity', '{"\\\\"}', NULL),
        ('s', 't', '{"id": 5}', 'INSERT', '0044-03-15 12:00:00+00 BC', '', ' ', '"', NULL, '{"id": 5}', '{}',
         '4713-11-24 00:00:00+00 BC', NULL, '{}')`);
      const { rows } = await client.query<{ now: string; then: string }>(
        `SELECT ${canonicalRowSql('a')} AS now, ${canonicalRowAsArraySql('a')} AS then FROM a`,
      );
      expect(rows).toHaveLength(8);
      for (const row of rows) expect(row.now).toBe(row.then);
      // Not vacuous: the forms differ from a row that differs.
      expect(rows[0]!.now).not.toBe(rows[1]!.now);
      // A row with no JSON null list (every row sealed before migration 0024) prints the
      // twelve columns it always did; one with a list prints the lists after them.
      expect(rows[3]!.now).toBe(
        '["s", "t", {}, "SNAPSHOT", "0001-01-01T00:00:00.000000Z", null, null, null, null, null, null, "294276-12-31T23:59:59.999999Z"]',
      );
      expect(rows[4]!.now.endsWith(', null, ["jb", "quo\\"te"]]')).toBe(true);
      expect(rows[5]!.now.endsWith(', ["jb"], null]')).toBe(true);
      // Escaped as JSON escapes them; a timestamp at infinity prints as null.
      expect(rows[6]!.now).toContain('"IN\\bS\\fERT", null, "seq\\t\\"q\\"", ');
      expect(rows[7]!.now).toContain('"0044-03-15T12:00:00.000000Z", "", " ", "\\"", ');
    });
  });
});

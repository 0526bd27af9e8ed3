import { withClient } from '../support/databases';
import { installWithHistory } from '../trust/support';

/**
 * key_value normalises a number in a row key by its scale (numeric 2 and 2.00 are one
 * key): trim_scale, then to_jsonb, which prints the number and parses it again. A number
 * whose scale is 0 already (an integer key, nearly every one) is kept as it is, which
 * must be the very value the round trip gives: the same text, equality, hash (the
 * per-key index and the history readers hash row_key) and size.
 */
describe('key_value', () => {
  it('gives every value what trim_scale and to_jsonb give it', async () => {
    const { targetUrl } = await installWithHistory();
    await withClient(targetUrl, async (client) => {
      const values = [
        '0',
        '-0',
        '2',
        '2.00',
        '2.50',
        '-7',
        '-7.000',
        '1e3',
        '1.0e3',
        '1.50e1',
        '1e-3',
        '0.000',
        '-0.0',
        '9223372036854775807',
        '123456789012345678901234567890',
        '123456789012345678901234567890.000',
        '0.00000000000000000001',
        '"2.00"',
        '"x"',
        'null',
        'true',
        '{"a": 1.0}',
        '[1.0, 2]',
      ];
      const { rows } = await client.query<{
        v: string;
        now: string;
        then: string;
        same: boolean;
        same_hash: boolean;
        same_size: boolean;
      }>(
        `SELECT k.v, k.n::text AS now, k.o::text AS then, k.n = k.o AS same,
                jsonb_hash_extended(k.n, 0) = jsonb_hash_extended(k.o, 0) AS same_hash,
                pg_column_size(k.n) = pg_column_size(k.o) AS same_size
           FROM (SELECT u.v, audit.key_value(u.v::jsonb) AS n,
                        CASE WHEN jsonb_typeof(u.v::jsonb) = 'number'
                             THEN to_jsonb(trim_scale(u.v::jsonb::numeric)) ELSE u.v::jsonb END AS o
                   FROM unnest($1::text[]) WITH ORDINALITY AS u(v, i) ORDER BY u.i) AS k`,
        [values],
      );
      expect(rows).toHaveLength(values.length);
      for (const row of rows) {
        expect([row.now, row.same, row.same_hash, row.same_size], row.v).toEqual([
          row.then,
          true,
          true,
          true,
        ]);
      }
      // Not vacuous: numbers with a scale lose their trailing zeros, the rest stay.
      const byValue = new Map(rows.map((row) => [row.v, row.now]));
      expect(byValue.get('2.00')).toBe('2');
      expect(byValue.get('2.50')).toBe('2.5');
      expect(byValue.get('-7.000')).toBe('-7');
      expect(byValue.get('1e3')).toBe('1000');
      expect(byValue.get('"2.00"')).toBe('"2.00"');
      expect(byValue.get('{"a": 1.0}')).toBe('{"a": 1.0}');
      const { rows: keys } = await client.query<{ key: string }>(
        `SELECT audit.key_of('{"id": 2.00, "region": "EU"}', '{region,id}')::text AS key`,
      );
      expect(keys[0]!.key).toBe('{"id": 2, "region": "EU"}');
    });
  });
});

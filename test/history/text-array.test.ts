import pg from 'pg';
import { inject } from 'vitest';
import { parseTextArray } from '../../src/history/text-array';
import { withClient } from '../support/databases';

/**
 * Each array's text as the server prints it (`::text`, array_out) beside the array
 * node-postgres's text[] parser made of the same value sent as text[]: parseTextArray of
 * the one must be the other.
 */
async function printedAndParsed(
  literals: readonly string[],
): Promise<{ text: string; parsed: unknown }[]> {
  return withClient(inject('pgAdminUrl'), async (client) => {
    const { rows } = await client.query<{ text: string; parsed: unknown }>(
      `SELECT a::text AS text, a AS parsed
         FROM unnest($1::text[]) WITH ORDINALITY AS l(literal, n), LATERAL (SELECT l.literal::text[] AS a) AS x
        ORDER BY n`,
      [literals],
    );
    return rows;
  });
}

/** A text[] literal of `elements`, each quoted (NULL for null). */
const literalOf = (elements: readonly (string | null)[]): string =>
  `{${elements
    .map((e) => (e === null ? 'NULL' : `"${e.replace(/\\/g, '\\\\').replace(/"/g, '\\"')}"`))
    .join(',')}}`;

describe('parseTextArray', () => {
  it('gives what node-postgres gives for a text[], for column names of any kind', async () => {
    const arrays: (string | null)[][] = [
      [],
      ['a'],
      ['price', 'qty', 'updated_at'],
      ['NULL'],
      ['null'],
      ['Null', 'nULL'],
      [null],
      ['a', null, 'b'],
      [''],
      ['x', '', 'y'],
      ['a b'],
      ['c,d'],
      ['{e}'],
      ['q"'],
      ['b\\s'],
      ['tab\there', 'new\nline', 'cr\r', 'vt\u000b', 'ff\f'],
      ['ünï', 'Jb 2', 'j"b)', 'n,u(ll'],
      ['NULLS', 'xNULL'],
    ];
    // Generated: names from an alphabet with every character array_out treats specially.
    let seed = 20261205;
    const next = (n: number) => {
      seed = (seed * 1103515245 + 12345) % 2147483648;
      return seed % n;
    };
    const alphabet = ['a', 'Z', '_', '1', ' ', ',', '"', '\\', '{', '}', '\t', 'é', 'N', 'U', 'L'];
    for (let i = 0; i < 300; i++) {
      arrays.push(
        Array.from({ length: next(5) }, () =>
          next(10) === 0
            ? null
            : Array.from({ length: next(6) }, () => alphabet[next(alphabet.length)]).join(''),
        ),
      );
    }
    const literals = [
      ...arrays.map(literalOf),
      // What array_out prints for other bounds and dimensions.
      '[0:1]={a,b}',
      '{{a,b},{c,d}}',
      '{{"x y",NULL}}',
    ];
    const rows = await printedAndParsed(literals);
    expect(rows).toHaveLength(literals.length);
    for (const [i, row] of rows.entries()) {
      expect(parseTextArray(row.text), `${literals[i]} printed as ${row.text}`).toEqual(row.parsed);
    }
    // The generated arrays came back as they were sent.
    expect(rows.slice(0, arrays.length).map((row) => row.parsed)).toEqual(arrays);
  });

  it('gives what node-postgres gives for texts array_out does not print', () => {
    const parser = pg.types.getTypeParser(1009 as never, 'text') as (text: string) => unknown;
    for (const text of ['{,}', '{a,}', '{,a}', '{a,,b}', '{}', '{ a}']) {
      expect(parseTextArray(text), text).toEqual(parser(text));
    }
  });
});

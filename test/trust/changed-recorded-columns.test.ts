import type pg from 'pg';
import { parseConfig } from '../../src/config';
import { migrateTarget } from '../../src/migrate/migrate-target';
import { quoteIdent } from '../../src/postgres/identifiers';
import { verifyIntegrity } from '../../src/trust/integrity';
import { createTestDatabase, withClient } from '../support/databases';
import { changeSeq, DmsApplier } from '../support/dms-apply';

/**
 * capture_update's set query reads each row's changed columns over the table's column
 * list, taken once per statement (recorded_columns, changed_recorded_columns), comparing
 * a value by its `->>` text except in a jsonb column; the one-row path (DMS) compares the
 * `->>` text of the two documents' keys (text_changed_keys) and, where that list is not
 * proven to be changed_column_list's, asks changed_columns. Both must record the history
 * changed_column_list would: the same changes are applied to twin tables, one in
 * multi-row statements (the set path), one a row per statement (the one-row path), their
 * audit rows are held equal and each UPDATE's changed columns held to a reference computed
 * here from its documents; and the one-row list is held to changed_column_list on drawn
 * document pairs. Values are drawn to collide where the shortcuts could go wrong: a jsonb
 * column's string "1" against its number 1 (the same `->>` text), JSON null against a
 * string "null" and a missing key, numbers of another scale, float -0, NaN and
 * infinities, array bounds, json text with whitespace, and column names that sort
 * otherwise in "C" than in the database's ICU collation (`B`, `a`, `_x`, `é`).
 */

const COLUMNS = ['B', 'a', '_x', 'é', 'doc', 'js', 'tags', 'docs', 'k -> x', 'Z', 'note'] as const;
type Column = (typeof COLUMNS)[number];

/** Values (SQL literals, NULL for NULL) each column is drawn from. */
const POOLS: Record<Column, readonly string[]> = {
  B: [`'1'`, `'null'`, `'"x"'`, `'[1]'`, `'true'`, `''`, 'NULL', `'NaN'`, `'-0'`],
  a: [`1`, `1.0`, `1.00`, `'NaN'`, 'NULL', `-0`, `2`],
  _x: [`0`, `'-0'`, `'NaN'`, `'Infinity'`, `1.5`, 'NULL'],
  é: ['true', 'false', 'NULL'],
  doc: [
    `'1'`,
    `'"1"'`,
    `'null'`,
    `'"null"'`,
    `'1.0'`,
    `'1.00'`,
    `'{"a": 1}'`,
    `'{"a": 1.0}'`,
    `'[1]'`,
    `'"[1]"'`,
    `'true'`,
    `'"true"'`,
    `'""'`,
    'NULL',
  ],
  js: [`'1'`, `' 1'`, `'"1"'`, `'null'`, `' null '`, `'{"a":1}'`, `'{"a": 1}'`, 'NULL'],
  tags: [`'{1,2}'`, `'[0:1]={1,2}'`, `'[2:3]={1,2}'`, `'{}'`, 'NULL', `'{NULL}'`],
  docs: [
    `ARRAY['1'::jsonb]`,
    `ARRAY['"1"'::jsonb]`,
    `ARRAY['null'::jsonb]`,
    `ARRAY['[1]'::jsonb]`,
    'NULL',
    `'{}'`,
  ],
  'k -> x': [`'1'`, `'"1"'`, `'a'`, `'A'`, 'NULL'],
  Z: [`1`, `1.0`, `'NaN'`, 'NULL'],
  note: [`'x'`, `'y'`],
};

const TYPES: Record<Column, string> = {
  B: 'text',
  a: 'numeric',
  _x: 'float8',
  é: 'boolean',
  doc: 'jsonb',
  js: 'json',
  tags: 'int[]',
  docs: 'jsonb[]',
  'k -> x': 'text',
  Z: 'numeric',
  note: 'text',
};

const ROWS = 24;
const ROUNDS = 12;

/** A small seeded generator, so a failure can be run again as it was. */
function random(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
    return state / 2 ** 32;
  };
}

describe('the set path records the changed columns the one-row path records', () => {
  let targetUrl: string;
  beforeAll(async () => {
    const sourceUrl = await createTestDatabase('chgsrc');
    // A database whose collation sorts `B`, `a`, `_x` and `é` otherwise than "C" does.
    targetUrl = await createTestDatabase('chgtgt', { icuLocale: 'en-US' });
    const definition = COLUMNS.map((column) => `${quoteIdent(column)} ${TYPES[column]}`).join(', ');
    await withClient(sourceUrl, (client) =>
      client.query(`CREATE TABLE by_set (id int PRIMARY KEY, ${definition});
        CREATE TABLE by_row (id int PRIMARY KEY, ${definition})`),
    );
    const config = parseConfig({
      tables: [
        { table: 'by_set', ignoreColumns: ['note'] },
        { table: 'by_row', ignoreColumns: ['note'] },
      ],
    });
    await migrateTarget({ config, sourceUrl, targetUrl });
  }, 120_000);

  const HEADERS = [
    'ar_h_operation',
    'ar_h_commit_timestamp',
    'ar_h_change_seq',
    'ar_h_transaction_id',
    'ar_h_stream_position',
    'ar_h_indicator',
  ];

  /** Each column's value as the staging table's text, as DMS would send it. */
  async function asText(client: pg.Client, row: Record<Column, string>) {
    const { rows } = await client.query<Record<Column, string | null>>(
      `SELECT ${COLUMNS.map((column) => `(${row[column]})::${TYPES[column]}::text AS ${quoteIdent(column)}`).join(', ')}`,
    );
    return rows[0]!;
  }

  async function auditRows(client: pg.Client, table: string) {
    const { rows } = await client.query(
      `SELECT row_key::text, operation, commit_timestamp::text, change_seq, changed_columns,
              old_row::text, new_row::text, old_json_nulls, new_json_nulls
         FROM audit.audit_log WHERE source_table = $1 ORDER BY id`,
      [table],
    );
    return rows;
  }

  it('for drawn values that collide, over rounds of multi-row UPDATEs', async () => {
    const next = random(20261206);
    const draw = (column: Column) => POOLS[column][Math.floor(next() * POOLS[column].length)]!;
    await withClient(targetUrl, async (client) => {
      const byRow = new DmsApplier(client, 'audit', 'by_row', ['id']);
      let current = Array.from(
        { length: ROWS },
        () =>
          Object.fromEntries(COLUMNS.map((column) => [column, draw(column)])) as Record<
            Column,
            string
          >,
      );
      let second = 0;
      // The one-row path's calls of changed_columns: only where its list by text is not settled.
      let fallbacks = 0;
      const at = () => `2026-12-06 10:00:${String(second++).padStart(2, '0')}.123456`;

      // The first rows: one multi-row INSERT, and one INSERT per row.
      await client.query('BEGIN');
      const insertAt = at();
      const insertSeqs = current.map(() => changeSeq(insertAt));
      await client.query(
        `INSERT INTO audit.by_set_staging (id, ${COLUMNS.map(quoteIdent).join(', ')}, ${HEADERS.join(', ')})
         VALUES ${current
           .map(
             (row, i) =>
               `(${i}, ${COLUMNS.map((column) => `${row[column]}`).join(', ')}, ` +
               `'INSERT', '${insertAt}', '${insertSeqs[i]}', '700', '0/1', 'I')`,
           )
           .join(', ')}`,
      );
      for (const [i, row] of current.entries()) {
        await byRow.insert(
          { id: String(i), ...(await asText(client, row)) },
          {
            operation: 'INSERT',
            commitTimestamp: insertAt,
            changeSeq: insertSeqs[i]!,
            transactionId: '700',
            streamPosition: '0/1',
          },
        );
      }
      await client.query('COMMIT');

      for (let round = 0; round < ROUNDS; round++) {
        // Each column kept or drawn again; some rows change only the ignored column,
        // some nothing at all.
        const updated = current.map((row) => {
          const keep = next();
          return Object.fromEntries(
            COLUMNS.map((column) => [
              column,
              keep < 0.15 && column !== 'note'
                ? row[column]
                : next() < 0.5
                  ? row[column]
                  : draw(column),
            ]),
          ) as Record<Column, string>;
        });
        const updateAt = at();
        const seqs = updated.map(() => changeSeq(updateAt));
        await client.query('BEGIN');
        await client.query(`SET LOCAL track_functions = 'all'`);
        await client.query(
          `UPDATE audit.by_set_staging AS s SET ${COLUMNS.map((column) => `${quoteIdent(column)} = v.${quoteIdent(column)}`).join(', ')},
             ar_h_operation = 'UPDATE', ar_h_commit_timestamp = '${updateAt}', ar_h_change_seq = v.seq,
             ar_h_transaction_id = '701', ar_h_stream_position = '0/2', ar_h_indicator = 'U'
           FROM (VALUES ${updated
             .map(
               (row, i) =>
                 `(${i}, '${seqs[i]}', ${COLUMNS.map((column) => `(${row[column]})::${TYPES[column]}`).join(', ')})`,
             )
             .join(', ')}) AS v(id, seq, ${COLUMNS.map(quoteIdent).join(', ')})
           WHERE s.id = v.id`,
        );
        for (const [i, row] of updated.entries()) {
          await byRow.update({ id: String(i) }, await asText(client, row), {
            operation: 'UPDATE',
            commitTimestamp: updateAt,
            changeSeq: seqs[i]!,
            transactionId: '701',
            streamPosition: '0/2',
          });
        }
        const { rows: called } = await client.query<{ calls: string }>(
          `SELECT coalesce(sum(calls), 0)::text AS calls FROM pg_catalog.pg_stat_xact_user_functions
            WHERE schemaname = 'audit' AND funcname = 'changed_columns'`,
        );
        fallbacks += Number(called[0]!.calls);
        await client.query('COMMIT');
        current = updated;
      }

      const bySet = await auditRows(client, 'by_set');
      const oneRow = await auditRows(client, 'by_row');
      // Each UPDATE's changed columns as a reference reads them from its documents: keys
      // of either side whose jsonb text differs, or whose JSON null literal came or went,
      // sorted in the database's collation. None is empty (that would be no version).
      const { rows: misread } = await client.query(
        `SELECT a.source_table, a.id, a.changed_columns, r.expected
           FROM audit.audit_log AS a,
                LATERAL (SELECT ARRAY(
                   SELECT u.k FROM (SELECT jsonb_object_keys(a.old_row) UNION SELECT jsonb_object_keys(a.new_row)) AS u(k)
                    WHERE (a.old_row -> u.k)::text IS DISTINCT FROM (a.new_row -> u.k)::text
                       OR (u.k = ANY (coalesce(a.old_json_nulls, '{}'))) <> (u.k = ANY (coalesce(a.new_json_nulls, '{}')))
                    ORDER BY u.k) AS expected) AS r
          WHERE a.operation = 'UPDATE'
            AND (a.changed_columns IS DISTINCT FROM r.expected OR cardinality(r.expected) = 0)`,
      );
      expect(misread).toEqual([]);
      // No change left out: each version's old row is the one its key's version before it
      // recorded (a change read as "nothing changed" would leave a gap).
      const { rows: gaps } = await client.query(
        `SELECT s.source_table, s.id FROM (
           SELECT a.source_table, a.id, a.operation, a.old_row, a.old_json_nulls,
                  lag(a.new_row) OVER w AS before, lag(a.new_json_nulls) OVER w AS nulls_before
             FROM audit.audit_log AS a
           WINDOW w AS (PARTITION BY a.source_table, a.row_key ORDER BY a.id)) AS s
          WHERE s.operation = 'UPDATE'
            AND (s.old_row::text IS DISTINCT FROM s.before::text OR s.old_json_nulls IS DISTINCT FROM s.nulls_before)`,
      );
      expect(gaps).toEqual([]);
      // Enough UPDATE versions with changes of every kind to mean something.
      const updates = bySet.filter((row) => row.operation === 'UPDATE');
      expect(updates.length).toBeGreaterThan(ROWS * ROUNDS * 0.5);
      expect(updates.some((row) => row.changed_columns.includes('doc'))).toBe(true);
      expect(bySet.length).toBeLessThan(ROWS * (ROUNDS + 1)); // rows with no change left none
      expect(bySet).toEqual(oneRow);
      // Both ways of the one-row path taken: the list by text for most UPDATEs, the
      // fallback where a jsonb value's type changed under the same text.
      const oneRowUpdates = ROWS * ROUNDS;
      expect(fallbacks).toBeGreaterThan(0);
      expect(fallbacks).toBeLessThan(oneRowUpdates / 4);
    });
    expect(await verifyIntegrity({ targetUrl, auditSchema: 'audit' })).toMatchObject({
      ok: true,
      findingCount: 0,
    });
  }, 120_000);
  /** jsonb texts a document's key is drawn from; undefined leaves the key out. */
  const DOCUMENT_VALUES: readonly (string | undefined)[] = [
    undefined,
    '1',
    '"1"',
    '1.0',
    '1.00',
    '-0',
    '0',
    'null',
    '"null"',
    'true',
    '"true"',
    '[1]',
    '"[1]"',
    '[1.0]',
    '{"a": 1}',
    '"{\\"a\\": 1}"',
    '""',
    '"é"',
    '"a\\"b"',
  ];
  const DOCUMENT_KEYS = ['B', 'a', '_x', 'é', 'k -> x', 'Z', 'doc'] as const;

  it('text_changed_keys gives changed_column_list, or says it may not', async () => {
    const next = random(61220261);
    const draw = () => DOCUMENT_VALUES[Math.floor(next() * DOCUMENT_VALUES.length)];
    const document = (values: (string | undefined)[]) =>
      `{${DOCUMENT_KEYS.flatMap((key, i) =>
        values[i] === undefined ? [] : [`${JSON.stringify(key)}: ${values[i]}`],
      ).join(', ')}}`;
    const pairs = Array.from({ length: 600 }, () => {
      const old = DOCUMENT_KEYS.map(() => draw());
      // Most keys kept, as an UPDATE keeps most columns; the rest drawn again.
      const changed = old.map((value) => (next() < 0.6 ? value : draw()));
      return [document(old), document(changed)] as const;
    });
    await withClient(targetUrl, async (client) => {
      const { rows } = await client.query<{
        names: string[];
        settled: boolean;
        reference: string[];
      }>(
        `SELECT t.names, t.settled, (SELECT c.names FROM audit.changed_column_list(p.o, p.n) AS c(names)) AS reference
           FROM unnest($1::jsonb[], $2::jsonb[]) AS p(o, n),
                LATERAL audit.text_changed_keys(p.o, p.n) AS t`,
        [pairs.map(([old]) => old), pairs.map(([, changed]) => changed)],
      );
      expect(rows).toHaveLength(pairs.length);
      const wrong = rows.filter(
        (row) => row.settled && JSON.stringify(row.names) !== JSON.stringify(row.reference),
      );
      expect(wrong).toEqual([]);
      // Each way taken, and the flag needed: some unsettled lists do differ.
      expect(rows.filter((row) => row.settled).length).toBeGreaterThan(pairs.length / 4);
      expect(
        rows.some(
          (row) => !row.settled && JSON.stringify(row.names) !== JSON.stringify(row.reference),
        ),
      ).toBe(true);
      // The keys sort as the database's collation sorts them, not bytewise.
      expect(
        rows.some((row) => row.settled && row.names.join() !== [...row.names].sort().join()),
      ).toBe(true);
    });
  });
});

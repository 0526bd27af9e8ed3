import type pg from 'pg';
import { parseConfig } from '../../src/config';
import { migrateTarget } from '../../src/migrate/migrate-target';
import { quoteIdent } from '../../src/postgres/identifiers';
import { verifyIntegrity } from '../../src/trust/integrity';
import { createTestDatabase, testDatabaseUrl, withClient } from '../support/databases';
import { changeSeq, DmsApplier } from '../support/dms-apply';

/**
 * capture_update's set query reads each row's changed columns over the table's column
 * list, taken once per statement (recorded_columns, changed_recorded_columns), comparing
 * a value by its `->>` text except in a jsonb column; the one-row path lists the keys of
 * both documents and compares their jsonb text (changed_columns). The two must record the
 * same history: the same changes are applied to twin tables, one in multi-row statements
 * (the set path), one a row per statement (the one-row path), and their audit rows are held
 * equal. Values are drawn to collide where the shortcut could go wrong: a jsonb column's
 * string "1" against its number 1 (the same `->>` text), JSON null against a string
 * "null", numbers of another scale, float -0, NaN and infinities, array bounds, json
 * text with whitespace, and column names that sort otherwise in "C" than in the
 * database's ICU collation (`B`, `a`, `_x`, `é`).
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
    const name = `chgtgt_${Date.now().toString(36)}`;
    await withClient(testDatabaseUrl('postgres'), (client) =>
      client.query(
        `CREATE DATABASE ${quoteIdent(name)} TEMPLATE template0 LOCALE_PROVIDER icu ICU_LOCALE 'en-US' LOCALE 'C'`,
      ),
    );
    targetUrl = testDatabaseUrl(name);
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
        await client.query('COMMIT');
        current = updated;
      }

      const bySet = await auditRows(client, 'by_set');
      const oneRow = await auditRows(client, 'by_row');
      // Enough UPDATE versions with changes of every kind to mean something.
      const updates = bySet.filter((row) => row.operation === 'UPDATE');
      expect(updates.length).toBeGreaterThan(ROWS * ROUNDS * 0.5);
      expect(updates.some((row) => row.changed_columns.includes('doc'))).toBe(true);
      expect(bySet.length).toBeLessThan(ROWS * (ROUNDS + 1)); // rows with no change left none
      expect(bySet).toEqual(oneRow);
    });
    expect(await verifyIntegrity({ targetUrl, auditSchema: 'audit' })).toMatchObject({
      ok: true,
      findingCount: 0,
    });
  }, 120_000);
});

import { randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { parseRowJson, stringifyRowJson } from '../../src/history/row-json';
import { connectionArgs, runCli, runBuiltCliOnTerminal, writeConfig } from '../support/cli';
import { createPipeline, type Pipeline } from '../engine/helpers';

const CONFIG = {
  tables: [
    { schema: 'shop', table: 'prices' },
    { schema: 'shop', table: 'größe ✓' },
  ],
};

/** What the JSON-lines export says of one change: the `history changes --json` fields. */
interface Listed {
  table: string;
  key: unknown;
  operation: string;
  commitTimestamp: string;
  transactionId: string | null;
  changeSeq: string | null;
  changedColumns: unknown;
  oldRow: unknown;
  newRow: unknown;
  context: unknown;
  oldRowJsonNulls: unknown;
  newRowJsonNulls: unknown;
}

/** The Parquet column each JSON-lines field is in, and how the field reads there. */
const FIELDS = [
  ['table', 'table', 'string'],
  ['key', 'key', 'json'],
  ['operation', 'operation', 'string'],
  ['commitTimestamp', 'commit_timestamp', 'micros'],
  ['transactionId', 'transaction_id', 'string'],
  ['changeSeq', 'change_seq', 'string'],
  ['changedColumns', 'changed_columns', 'json'],
  ['oldRow', 'old_row', 'json'],
  ['newRow', 'new_row', 'json'],
  ['context', 'context', 'json'],
  ['oldRowJsonNulls', 'old_json_nulls', 'json'],
  ['newRowJsonNulls', 'new_json_nulls', 'json'],
] as const;

/** `2026-11-22T10:00:00.000001Z` as µs since the epoch, without the code under test. */
function micros(iso: string): bigint {
  return BigInt(Date.parse(iso)) * 1000n + BigInt(iso.slice(23, 26));
}

/**
 * The file's rows as hyparquet reads them, every value kept as written: JSON and strings
 * as their text, timestamps as the stored integer.
 */
async function readParquet(file: string) {
  const { parquetMetadata, parquetReadObjects } = await import('hyparquet');
  const bytes = await readFile(file);
  const buffer = bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength);
  const text = (value: Uint8Array) => new TextDecoder().decode(value);
  const rows = await parquetReadObjects({
    file: buffer,
    parsers: {
      timestampFromMicroseconds: (value: bigint) => value,
      jsonFromBytes: text,
      stringFromBytes: text,
    },
  });
  return { rows, metadata: parquetMetadata(buffer) };
}

describe('audit-trail export --format parquet (built binary)', () => {
  let p: Pipeline;
  let configFile: string;
  const dir = os.tmpdir();

  beforeAll(async () => {
    p = await createPipeline(
      `CREATE SCHEMA shop;
       CREATE TABLE shop.prices (id bigint PRIMARY KEY, price numeric, big numeric,
         odd numeric, f float8, doc jsonb, at timestamptz, label text);
       CREATE TABLE shop."größe ✓" ("schlüssel ✓" text PRIMARY KEY, n int);`,
      CONFIG,
    );
    configFile = await writeConfig(CONFIG);
    await p.replicate();
    await p.source(
      `INSERT INTO shop.prices VALUES (9007199254740993, 1.10, 123456789012345678901234567890,
         'NaN', '-0', '{"a": 9007199254740993, "b": 1.10, "c": -0, "d": 1e400, "u": "ü 😀"}',
         '2026-11-22 10:00:00.000001+00', E'ü 😀 "quoted", comma\\nline');
       INSERT INTO shop."größe ✓" VALUES ('ключ 🔑', 1);`,
    );
    await p.source(
      `BEGIN;
       UPDATE shop.prices SET price = 1.100, odd = '-Infinity', f = 'NaN', doc = 'null'
        WHERE id = 9007199254740993;
       UPDATE shop."größe ✓" SET n = 2;
       COMMIT;`,
    );
    await p.source(`DELETE FROM shop.prices`);
    await p.replicate();
  }, 120_000);
  afterAll(async () => p?.dispose());

  const cli = (...args: string[]) =>
    runCli([...args, ...connectionArgs({ configFile, targetUrl: p.targetUrl })]);

  it('holds every value of the JSON-lines export exactly, with typed columns', async () => {
    const ndjson = await cli('export');
    expect(ndjson.code).toBe(0);
    const listed = ndjson.stdout
      .trimEnd()
      .split('\n')
      .map((line) => parseRowJson<Listed>(line));
    // Both tables were empty at the load: 2 inserts, 2 updates, 1 delete.
    expect(listed).toHaveLength(5);
    expect(ndjson.stdout).toContain('9007199254740993');
    expect(ndjson.stdout).toContain('123456789012345678901234567890');

    const file = path.join(dir, `export-${randomBytes(4).toString('hex')}.parquet`);
    const parquet = await cli('export', '--format', 'parquet', '--output', file);
    expect(parquet.stderr).toMatch(/^exported 5 changes of 2 tables committed in/);
    expect(parquet.code).toBe(0);
    const { rows, metadata } = await readParquet(file);

    expect(rows).toHaveLength(listed.length);
    rows.forEach((row, i) => {
      const expected = listed[i]!;
      for (const [field, column, kind] of FIELDS) {
        const want = expected[field];
        const got = row[column] as unknown;
        if (kind === 'micros') expect(got, column).toBe(micros(want as string));
        else if (kind === 'json')
          expect(got, column).toBe(want === null ? null : stringifyRowJson(want));
        else expect(got, column).toBe(want);
      }
    });
    // The hostile values are there as text, not as doubles.
    const prices = rows.find((row) => row.operation === 'INSERT' && row.table === 'shop.prices')!;
    for (const exact of [
      '"id":"9007199254740993"',
      '"price":"1.10"',
      '"big":"123456789012345678901234567890"',
      '"odd":"NaN"',
      '"a":9007199254740993',
      '"b":1.10',
      '"ü 😀"',
    ])
      expect(prices.new_row).toContain(exact);
    expect(rows.map((row) => row.table)).toContain('shop.größe ✓');
    // The JSON null literal of a jsonb column: null in the row, named in the list.
    const update = rows.find((row) => row.operation === 'UPDATE' && row.table === 'shop.prices')!;
    expect([update.old_json_nulls, update.new_json_nulls]).toEqual(['[]', '["doc"]']);
    expect(update.new_row).toContain('"doc":null');

    // The commit times are the audit log's, to the microsecond (PostgreSQL's own count).
    const log = await p.target(
      `SELECT (extract(epoch FROM commit_timestamp) * 1000000)::bigint::text AS us
         FROM audit.audit_log ORDER BY 1`,
    );
    expect(rows.map((row) => String(row.commit_timestamp)).sort()).toEqual(
      log.rows.map((row: { us: string }) => row.us).sort(),
    );

    // Typed columns: a µs UTC timestamp, JSON documents, strings; key and time required.
    const schema = Object.fromEntries(metadata.schema.map((element) => [element.name, element]));
    expect(schema.commit_timestamp).toMatchObject({
      type: 'INT64',
      repetition_type: 'REQUIRED',
      logical_type: { type: 'TIMESTAMP', isAdjustedToUTC: true, unit: 'MICROS' },
    });
    for (const column of [
      'key',
      'changed_columns',
      'old_row',
      'new_row',
      'context',
      'old_json_nulls',
      'new_json_nulls',
    ])
      expect(schema[column]).toMatchObject({ type: 'BYTE_ARRAY', logical_type: { type: 'JSON' } });
    for (const column of ['table', 'operation', 'transaction_id', 'change_seq'])
      expect(schema[column]).toMatchObject({ type: 'BYTE_ARRAY', converted_type: 'UTF8' });
  }, 120_000);

  it('writes a valid empty file for an empty range, and refuses to overwrite', async () => {
    const file = path.join(dir, `export-${randomBytes(4).toString('hex')}.parquet`);
    const empty = await cli(
      'export',
      '--format',
      'parquet',
      '--from',
      '2999-01-01T00:00:00Z',
      '--to',
      '2999-01-02T00:00:00Z',
      '-o',
      file,
    );
    expect(empty.code).toBe(0);
    const { rows, metadata } = await readParquet(file);
    expect(rows).toEqual([]);
    expect(metadata.schema.map((element) => element.name)).toContain('commit_timestamp');
    const again = await cli('export', '--format', 'parquet', '-o', file);
    expect(again.code).toBe(2);
    expect(again.stderr).toContain('exists');
  }, 120_000);

  it('refuses to write Parquet to a terminal (exit 2)', async () => {
    const args = ['export', '--format', 'parquet', '--target-url', p.targetUrl];
    const result = await runBuiltCliOnTerminal([...args, '--config', configFile]);
    expect(result.code).toBe(2);
    expect(result.output).toContain('Parquet is binary: not written to a terminal');
  }, 120_000);
});

import type pg from 'pg';
import { parseConfig } from '../../src/config';
import { migrateTarget } from '../../src/migrate/migrate-target';
import { verifyIntegrity } from '../../src/trust/integrity';
import { createTestDatabase, withClient } from '../support/databases';
import { changeSeq } from '../support/dms-apply';

/**
 * The engine applies many rows per staging statement: the capture's set query then
 * records them with no function call per row (#14: a PL/pgSQL call, and changed_columns'
 * query through SPI, cost more than the expression it evaluates). Counted by the server
 * (track_functions) on a table with a one-column key and no array column; the same
 * statements record the same history as the helpers do (numeric key scale, a numeric
 * scale change as an UPDATE, an ignored column's change as no version, array bounds kept
 * on a table that has an array column), and the chain verifies.
 */
describe('the set path of the capture triggers', () => {
  let targetUrl: string;
  beforeAll(async () => {
    const sourceUrl = await createTestDatabase('setsrc');
    targetUrl = await createTestDatabase('settgt');
    await withClient(sourceUrl, (client) =>
      client.query(`CREATE TABLE plain (id numeric PRIMARY KEY, name text, price numeric, note text);
        CREATE TABLE tagged (id int PRIMARY KEY, tags int[]);
        CREATE TABLE exact (id int PRIMARY KEY, doc json, f float8);
        CREATE TABLE documents (id int PRIMARY KEY, attrs jsonb, payload json, tags text[])`),
    );
    const config = parseConfig({
      tables: [
        { table: 'plain', ignoreColumns: ['note'] },
        { table: 'tagged' },
        { table: 'exact' },
        { table: 'documents' },
      ],
    });
    await migrateTarget({ config, sourceUrl, targetUrl });
  }, 120_000);

  const headers = (operation: string, at: string) =>
    `'${operation}', '${at}', '${changeSeq(at)}', '700', '0/1', '${operation[0]}'`;
  const header = `ar_h_operation, ar_h_commit_timestamp, ar_h_change_seq, ar_h_transaction_id,
    ar_h_stream_position, ar_h_indicator`;

  /**
   * The helpers of the set queries: the PL/pgSQL ones, and the SQL ones that are inlined
   * (a SQL function the planner does not inline runs as a call per row, counted here).
   */
  const ROW_HELPERS = [
    'key_of',
    'bounded_arrays',
    'changed_columns',
    'captured_key',
    'key_value',
    'changed_column_list',
    'changed_recorded_columns',
    'recorded_columns',
    'text_changed_keys',
    'version_operation',
    'update_version_operation',
    'array_columns',
    'json_null_columns',
    'json_null_texts',
    'jsonb_nulls',
    'with_null_changes',
    'json_spaced_texts',
    'may_hold_json_null',
    'may_hold_spaced_json',
    'may_hold_array_text',
    'recorded_document',
    'json_array_columns',
  ];

  /** Runs `statements` in one transaction; returns the calls of the per-row helpers. */
  async function helperCalls(statements: string[]): Promise<Record<string, number>> {
    return withClient(targetUrl, async (client: pg.Client) => {
      await client.query('BEGIN');
      await client.query(`SET LOCAL track_functions = 'all'`);
      for (const statement of statements) await client.query(statement);
      const { rows } = await client.query<{ funcname: string; calls: string }>(
        `SELECT funcname, calls::text FROM pg_catalog.pg_stat_xact_user_functions
          WHERE schemaname = 'audit' AND funcname = ANY ($1)`,
        [ROW_HELPERS],
      );
      await client.query('COMMIT');
      return Object.fromEntries(rows.map((row) => [row.funcname, Number(row.calls)]));
    });
  }

  async function versions(table: string) {
    const { rows } = await withClient(targetUrl, (client) =>
      client.query<{
        key: string;
        operation: string;
        changed: string[] | null;
        new_row: unknown;
      }>(
        `SELECT row_key::text AS key, operation, changed_columns AS changed, new_row
           FROM audit.audit_log WHERE source_table = $1 ORDER BY id`,
        [table],
      ),
    );
    return rows;
  }

  /** A table's audit rows in order, without their keys: operation, changed columns, row. */
  async function changesOf(table: string) {
    return (await versions(table)).map(({ operation, changed, new_row }) => ({
      operation,
      changed,
      new_row,
    }));
  }

  it('calls no helper per row, and records what the helpers would', async () => {
    const calls = await helperCalls([
      `INSERT INTO audit.plain_staging (id, name, price, note, ${header}) VALUES
         (1, 'a', 1.10, 'x', ${headers('INSERT', '2026-12-01 10:00:00')}),
         (2.00, 'b', 2, 'x', ${headers('INSERT', '2026-12-01 10:00:00')}),
         (3, 'c', 3, 'x', ${headers('INSERT', '2026-12-01 10:00:00')})`,
      `UPDATE audit.plain_staging AS s SET price = v.price::numeric, note = v.note,
         ar_h_operation = 'UPDATE', ar_h_commit_timestamp = '2026-12-01 10:00:01',
         ar_h_change_seq = v.seq, ar_h_indicator = 'U'
       FROM (VALUES (1, 1.100, 'x', '${changeSeq('2026-12-01 10:00:01')}'),
                    (2, 2, 'y', '${changeSeq('2026-12-01 10:00:01')}'),
                    (3, 4, 'x', '${changeSeq('2026-12-01 10:00:01')}')) AS v(id, price, note, seq)
       WHERE s.id = v.id`,
    ]);
    expect(calls).toEqual({});
    expect(await versions('plain')).toEqual([
      expect.objectContaining({ key: '{"id": 1}', operation: 'INSERT', changed: null }),
      expect.objectContaining({ key: '{"id": 2}', operation: 'INSERT', changed: null }),
      expect.objectContaining({ key: '{"id": 3}', operation: 'INSERT', changed: null }),
      // 1.10 -> 1.100 is a change of the stored value; key 2 changed only its ignored note.
      {
        key: '{"id": 1}',
        operation: 'UPDATE',
        changed: ['price'],
        new_row: { id: 1, name: 'a', price: 1.1 },
      },
      {
        key: '{"id": 3}',
        operation: 'UPDATE',
        changed: ['price'],
        new_row: { id: 3, name: 'c', price: 4 },
      },
    ]);
    const { rows } = await withClient(targetUrl, (client) =>
      client.query<{ price: string }>(
        `SELECT new_row ->> 'price' AS price FROM audit.audit_log
          WHERE source_table = 'plain' AND operation = 'UPDATE' ORDER BY id LIMIT 1`,
      ),
    );
    expect(rows[0]!.price).toBe('1.100');
  });

  it('keeps array bounds on a table with an array column', async () => {
    await helperCalls([
      `INSERT INTO audit.tagged_staging (id, tags, ${header}) VALUES
         (1, '[0:1]={5,6}', ${headers('INSERT', '2026-12-01 11:00:00')}),
         (2, '{1,2}', ${headers('INSERT', '2026-12-01 11:00:00')})`,
      `UPDATE audit.tagged_staging AS s SET tags = v.tags::int[],
         ar_h_operation = 'UPDATE', ar_h_commit_timestamp = '2026-12-01 11:00:01',
         ar_h_change_seq = v.seq, ar_h_indicator = 'U'
       FROM (VALUES (1, '[0:1]={5,7}', '${changeSeq('2026-12-01 11:00:01')}'),
                    (2, '[2:3]={1,2}', '${changeSeq('2026-12-01 11:00:01')}')) AS v(id, tags, seq)
       WHERE s.id = v.id`,
    ]);
    expect(await changesOf('tagged')).toEqual([
      { operation: 'INSERT', changed: null, new_row: { id: 1, tags: '[0:1]={5,6}' } },
      { operation: 'INSERT', changed: null, new_row: { id: 2, tags: [1, 2] } },
      { operation: 'UPDATE', changed: ['tags'], new_row: { id: 1, tags: '[0:1]={5,7}' } },
      // Only the bounds changed: a change of the stored value.
      { operation: 'UPDATE', changed: ['tags'], new_row: { id: 2, tags: '[2:3]={1,2}' } },
    ]);
    expect(await verifyIntegrity({ targetUrl, auditSchema: 'audit' })).toMatchObject({
      ok: true,
      findingCount: 0,
    });
  });

  /**
   * A json column is recorded as its exact text and a float -0 as "-0" (exact_document),
   * which the set query reads row_to_json for only on a table that has such columns.
   */
  it('records json columns exactly and keeps a float -0 on a table with such columns', async () => {
    const calls = await helperCalls([
      `INSERT INTO audit.exact_staging (id, doc, f, ${header}) VALUES
         (1, '{"a": 1,  "a": 2}', '-0', ${headers('INSERT', '2026-12-01 12:00:00')}),
         (2, '[1, 2]', 1.5, ${headers('INSERT', '2026-12-01 12:00:00')})`,
      `UPDATE audit.exact_staging AS s SET doc = v.doc::json,
         ar_h_operation = 'UPDATE', ar_h_commit_timestamp = '2026-12-01 12:00:01',
         ar_h_change_seq = v.seq, ar_h_indicator = 'U'
       FROM (VALUES (1, '{"a": 1, "a": 2}', '${changeSeq('2026-12-01 12:00:01')}'),
                    (2, '[1,2]', '${changeSeq('2026-12-01 12:00:01')}')) AS v(id, doc, seq)
       WHERE s.id = v.id`,
    ]);
    // No row here holds a `null` field or a json value with whitespace around it: the
    // JSON null and json whitespace helpers are not called for them (their test is
    // written out in the set query).
    expect(calls).toEqual({});
    expect(await changesOf('exact')).toEqual([
      { operation: 'INSERT', changed: null, new_row: { id: 1, doc: '{"a": 1,  "a": 2}', f: '-0' } },
      { operation: 'INSERT', changed: null, new_row: { id: 2, doc: '[1, 2]', f: 1.5 } },
      // Only whitespace changed: a change of the stored json text.
      {
        operation: 'UPDATE',
        changed: ['doc'],
        new_row: { id: 1, doc: '{"a": 1, "a": 2}', f: '-0' },
      },
      { operation: 'UPDATE', changed: ['doc'], new_row: { id: 2, doc: '[1,2]', f: 1.5 } },
    ]);
    expect(await verifyIntegrity({ targetUrl, auditSchema: 'audit' })).toMatchObject({
      ok: true,
      findingCount: 0,
    });
  });

  /**
   * A one-row UPDATE (DMS) reads row_to_json in capture_update's own one-row path only on
   * a table with json or float columns: a change of only a json column's whitespace is
   * still a change, with the exact texts on both sides.
   */
  it('a one-row UPDATE of a json column records its exact text', async () => {
    await helperCalls([
      `INSERT INTO audit.exact_staging (id, doc, f, ${header}) VALUES
         (4, '{"c": 1}', '-0', ${headers('INSERT', '2026-12-01 14:00:00')})`,
      // Only whitespace changes: a change of the stored json text.
      `UPDATE audit.exact_staging SET doc = '{"c":  1}', ar_h_operation = 'UPDATE',
         ar_h_commit_timestamp = '2026-12-01 14:00:01',
         ar_h_change_seq = '${changeSeq('2026-12-01 14:00:01')}', ar_h_indicator = 'U'
       WHERE id = 4`,
    ]);
    const { rows } = await withClient(targetUrl, (client) =>
      client.query<{
        operation: string;
        changed: string[] | null;
        old_row: unknown;
        new_row: unknown;
      }>(
        `SELECT operation, changed_columns AS changed, old_row, new_row FROM audit.audit_log
          WHERE source_table = 'exact' AND row_key = '{"id": 4}' ORDER BY id`,
      ),
    );
    expect(rows).toEqual([
      {
        operation: 'INSERT',
        changed: null,
        old_row: null,
        new_row: { id: 4, doc: '{"c": 1}', f: '-0' },
      },
      {
        operation: 'UPDATE',
        changed: ['doc'],
        old_row: { id: 4, doc: '{"c": 1}', f: '-0' },
        new_row: { id: 4, doc: '{"c":  1}', f: '-0' },
      },
    ]);
  });

  /**
   * DMS's one-row statements: a one-column key, and a row whose text holds no array
   * text, are settled by the capture functions' own (inlined) expressions, with no
   * PL/pgSQL helper call (#14: a call per row side), and an UPDATE's changed columns by
   * the inlined text_changed_keys, with no changed_columns call (a call per UPDATE before).
   */
  it('a one-row INSERT and UPDATE call no key or array helper, and record what the set query records', async () => {
    const calls = await helperCalls([
      `INSERT INTO audit.plain_staging (id, name, price, note, ${header}) VALUES
         (8.0, 'p', 1.10, 'x', ${headers('INSERT', '2026-12-01 15:00:00')})`,
      `UPDATE audit.plain_staging SET price = 1.100, note = 'y', ar_h_operation = 'UPDATE',
         ar_h_commit_timestamp = '2026-12-01 15:00:01',
         ar_h_change_seq = '${changeSeq('2026-12-01 15:00:01')}', ar_h_indicator = 'U'
       WHERE id = 8`,
      // Only the ignored column changes: no version.
      `UPDATE audit.plain_staging SET note = 'z', ar_h_operation = 'UPDATE',
         ar_h_commit_timestamp = '2026-12-01 15:00:02',
         ar_h_change_seq = '${changeSeq('2026-12-01 15:00:02')}', ar_h_indicator = 'U'
       WHERE id = 8`,
      // A key change: the old key's DELETE and the new key's UPDATE.
      `UPDATE audit.plain_staging SET id = 9.00, name = 'q', ar_h_operation = 'UPDATE',
         ar_h_commit_timestamp = '2026-12-01 15:00:03',
         ar_h_change_seq = '${changeSeq('2026-12-01 15:00:03')}', ar_h_indicator = 'U'
       WHERE id = 8`,
    ]);
    expect(calls).toEqual({});
    const { rows } = await withClient(targetUrl, (client) =>
      client.query<{ key: string; operation: string; changed: string[] | null; new_row: unknown }>(
        `SELECT row_key::text AS key, operation, changed_columns AS changed, new_row
           FROM audit.audit_log
          WHERE source_table = 'plain' AND commit_timestamp >= '2026-12-01 15:00:00+00' ORDER BY id`,
      ),
    );
    expect(rows).toEqual([
      {
        key: '{"id": 8}',
        operation: 'INSERT',
        changed: null,
        new_row: { id: 8.0, name: 'p', price: 1.1 },
      },
      {
        key: '{"id": 8}',
        operation: 'UPDATE',
        changed: ['price'],
        new_row: { id: 8.0, name: 'p', price: 1.1 },
      },
      { key: '{"id": 8}', operation: 'DELETE', changed: null, new_row: null },
      {
        key: '{"id": 9}',
        operation: 'UPDATE',
        changed: ['id', 'name'],
        new_row: { id: 9, name: 'q', price: 1.1 },
      },
    ]);
    expect(await verifyIntegrity({ targetUrl, auditSchema: 'audit' })).toMatchObject({
      ok: true,
      findingCount: 0,
    });
  });

  it('a multi-row UPDATE with one key change pairs the moved row, as the one-row path does', async () => {
    const at = '2026-12-01 16:00:00';
    const later = '2026-12-01 16:00:01';
    await helperCalls([
      `INSERT INTO audit.plain_staging (id, name, price, note, ${header}) VALUES
         (20, 'm', 1, 'x', ${headers('INSERT', at)}), (21, 'n', 2, 'x', ${headers('INSERT', at)}),
         (22, 'o', 3, 'x', ${headers('INSERT', at)})`,
      // Key 20 moves to 25 (and renames), 21 changes its price, 22 nothing recorded.
      `UPDATE audit.plain_staging AS s SET id = v.new_id, name = v.name, price = v.price, note = 'y',
         ar_h_operation = 'UPDATE', ar_h_commit_timestamp = '${later}', ar_h_change_seq = v.seq,
         ar_h_indicator = 'U'
       FROM (VALUES (20, 25, 'moved', 1, '${changeSeq(later)}'), (21, 21, 'n', 2.5, '${changeSeq(later)}'),
                    (22, 22, 'o', 3, '${changeSeq(later)}')) AS v(id, new_id, name, price, seq)
       WHERE s.id = v.id`,
    ]);
    const { rows } = await withClient(targetUrl, (client) =>
      client.query(
        `SELECT row_key::text AS key, operation, changed_columns AS changed, old_row, new_row
           FROM audit.audit_log
          WHERE source_table = 'plain' AND commit_timestamp = '${later}+00' ORDER BY id`,
      ),
    );
    const old20 = { id: 20, name: 'm', price: 1 };
    expect(rows).toEqual([
      // In change sequence order: 20's two rows carry its change's sequence.
      { key: '{"id": 20}', operation: 'DELETE', changed: null, old_row: old20, new_row: null },
      {
        key: '{"id": 25}',
        operation: 'UPDATE',
        changed: ['id', 'name'],
        old_row: old20,
        new_row: { id: 25, name: 'moved', price: 1 },
      },
      {
        key: '{"id": 21}',
        operation: 'UPDATE',
        changed: ['price'],
        old_row: { id: 21, name: 'n', price: 2 },
        new_row: { id: 21, name: 'n', price: 2.5 },
      },
    ]);
    expect(await verifyIntegrity({ targetUrl, auditSchema: 'audit' })).toMatchObject({
      ok: true,
      findingCount: 0,
    });
  });

  /**
   * JSON holds arrays: a json or jsonb value's `[` in a row's text is common, and only a
   * bounds decoration, a JSON array element of a json[] or jsonb[] value, or an element
   * spelled null is recorded as array text. Such rows, and rows with no json value that
   * has whitespace around it, call neither bounded_arrays nor json_spaced_texts, on the
   * set path or the one-row path (#14: a PL/pgSQL call per row side); a bounded array
   * still is recorded as its text on both.
   */
  it('calls no array or json whitespace helper for json that holds arrays', async () => {
    const calls = await helperCalls([
      `INSERT INTO audit.documents_staging (id, attrs, payload, tags, ${header}) VALUES
         (1, '{"sizes": [1, [2, 3]]}', '{"lines": [[1, 2], [3]]}', '{a,"b c"}', ${headers('INSERT', '2026-12-01 16:00:00')}),
         (2, '[1, 2]', '[1, [2]]', '{}', ${headers('INSERT', '2026-12-01 16:00:00')})`,
      `UPDATE audit.documents_staging AS s SET payload = v.payload::json,
         ar_h_operation = 'UPDATE', ar_h_commit_timestamp = '2026-12-01 16:00:01',
         ar_h_change_seq = v.seq, ar_h_indicator = 'U'
       FROM (VALUES (1, '{"lines": [[1, 2], [4]]}', '${changeSeq('2026-12-01 16:00:01')}'),
                    (2, '[1,  [2]]', '${changeSeq('2026-12-01 16:00:01')}')) AS v(id, payload, seq)
       WHERE s.id = v.id`,
      `INSERT INTO audit.documents_staging (id, attrs, payload, tags, ${header}) VALUES
         (3, '{"sizes": [1, 2]}', '[[1], [2]]', '{x}', ${headers('INSERT', '2026-12-01 16:00:02')})`,
      `UPDATE audit.documents_staging SET attrs = '{"sizes": [[1], 2]}', ar_h_operation = 'UPDATE',
         ar_h_commit_timestamp = '2026-12-01 16:00:03',
         ar_h_change_seq = '${changeSeq('2026-12-01 16:00:03')}', ar_h_indicator = 'U'
       WHERE id = 3`,
    ]);
    expect(calls).toEqual({});
    await helperCalls([
      `UPDATE audit.documents_staging AS s SET tags = v.tags::text[],
         ar_h_operation = 'UPDATE', ar_h_commit_timestamp = '2026-12-01 16:00:04',
         ar_h_change_seq = v.seq, ar_h_indicator = 'U'
       FROM (VALUES (1, '[0:0]={a}', '${changeSeq('2026-12-01 16:00:04')}'),
                    (2, '{b}', '${changeSeq('2026-12-01 16:00:04')}')) AS v(id, tags, seq)
       WHERE s.id = v.id`,
      `UPDATE audit.documents_staging SET tags = '[2:2]={y}', ar_h_operation = 'UPDATE',
         ar_h_commit_timestamp = '2026-12-01 16:00:05',
         ar_h_change_seq = '${changeSeq('2026-12-01 16:00:05')}', ar_h_indicator = 'U'
       WHERE id = 3`,
    ]);
    const one = { attrs: { sizes: [1, [2, 3]] }, tags: ['a', 'b c'] };
    const two = { attrs: [1, 2], tags: [] };
    expect(await versions('documents')).toEqual([
      {
        key: '{"id": 1}',
        operation: 'INSERT',
        changed: null,
        new_row: { id: 1, ...one, payload: '{"lines": [[1, 2], [3]]}' },
      },
      {
        key: '{"id": 2}',
        operation: 'INSERT',
        changed: null,
        new_row: { id: 2, ...two, payload: '[1, [2]]' },
      },
      {
        key: '{"id": 1}',
        operation: 'UPDATE',
        changed: ['payload'],
        new_row: { id: 1, ...one, payload: '{"lines": [[1, 2], [4]]}' },
      },
      // Only whitespace changed: a change of the stored json text.
      {
        key: '{"id": 2}',
        operation: 'UPDATE',
        changed: ['payload'],
        new_row: { id: 2, ...two, payload: '[1,  [2]]' },
      },
      {
        key: '{"id": 3}',
        operation: 'INSERT',
        changed: null,
        new_row: { id: 3, attrs: { sizes: [1, 2] }, payload: '[[1], [2]]', tags: ['x'] },
      },
      {
        key: '{"id": 3}',
        operation: 'UPDATE',
        changed: ['attrs'],
        new_row: { id: 3, attrs: { sizes: [[1], 2] }, payload: '[[1], [2]]', tags: ['x'] },
      },
      {
        key: '{"id": 1}',
        operation: 'UPDATE',
        changed: ['tags'],
        new_row: { id: 1, ...one, payload: '{"lines": [[1, 2], [4]]}', tags: '[0:0]={a}' },
      },
      {
        key: '{"id": 2}',
        operation: 'UPDATE',
        changed: ['tags'],
        new_row: { id: 2, ...two, payload: '[1,  [2]]', tags: ['b'] },
      },
      {
        key: '{"id": 3}',
        operation: 'UPDATE',
        changed: ['tags'],
        new_row: { id: 3, attrs: { sizes: [[1], 2] }, payload: '[[1], [2]]', tags: '[2:2]={y}' },
      },
    ]);
    expect(await verifyIntegrity({ targetUrl, auditSchema: 'audit' })).toMatchObject({
      ok: true,
      findingCount: 0,
    });
  });

  /**
   * A one-row INSERT (DMS applies one row per statement) has a path of its own in
   * capture_insert: it records the same documents and keys as the set query.
   */
  it('a one-row INSERT records what the set query records', async () => {
    await helperCalls([
      `INSERT INTO audit.exact_staging (id, doc, f, ${header}) VALUES
         (3, '{"b":  [1]}', '-0', ${headers('INSERT', '2026-12-01 13:00:00')})`,
      `INSERT INTO audit.tagged_staging (id, tags, ${header}) VALUES
         (3, '[0:1]={5,6}', ${headers('INSERT', '2026-12-01 13:00:00')})`,
      `INSERT INTO audit.plain_staging (id, name, price, note, ${header}) VALUES
         (7.50, 'x', 1.10, 'ignored', ${headers('INSERT', '2026-12-01 13:00:00')})`,
    ]);
    const { rows } = await withClient(targetUrl, (client) =>
      client.query<{ source_table: string; key: string; operation: string; new_row: unknown }>(
        `SELECT source_table, row_key::text AS key, operation, new_row FROM audit.audit_log
          WHERE commit_timestamp = '2026-12-01 13:00:00+00' ORDER BY id`,
      ),
    );
    expect(rows).toEqual([
      {
        source_table: 'exact',
        key: '{"id": 3}',
        operation: 'INSERT',
        new_row: { id: 3, doc: '{"b":  [1]}', f: '-0' },
      },
      {
        source_table: 'tagged',
        key: '{"id": 3}',
        operation: 'INSERT',
        new_row: { id: 3, tags: '[0:1]={5,6}' },
      },
      {
        source_table: 'plain',
        key: '{"id": 7.5}',
        operation: 'INSERT',
        new_row: { id: 7.5, name: 'x', price: 1.1 },
      },
    ]);
    expect(await verifyIntegrity({ targetUrl, auditSchema: 'audit' })).toMatchObject({
      ok: true,
      findingCount: 0,
    });
  });
});

import { readFile, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { splitCsv } from '../../src/access-audit/csv';
import { connectionArgs, runCli, writeConfig } from '../support/cli';
import { createPipeline, type Pipeline } from '../engine/helpers';

const CONFIG = {
  tables: [
    { schema: 'shop', table: 'orders' },
    { schema: 'shop', table: 'lines' },
  ],
};

describe('audit-trail history transaction / history changes', () => {
  let p: Pipeline;
  let configFile: string;
  let xid: string;
  let between: { from: string; to: string };

  beforeAll(async () => {
    p = await createPipeline(
      `CREATE SCHEMA shop;
       CREATE TABLE shop.orders (id int PRIMARY KEY, total numeric(30, 10));
       CREATE TABLE shop.lines (order_id int, n int, qty int, PRIMARY KEY (order_id, n));`,
      CONFIG,
    );
    configFile = await writeConfig(CONFIG);
    await p.replicate();
    const { rows } = await p
      .source(
        `BEGIN;
       INSERT INTO shop.orders VALUES (1, 12345678901234567890.1234567890);
       INSERT INTO shop.lines VALUES (1, 1, 2), (1, 2, 5);
       SELECT txid_current()::text AS xid, clock_timestamp() AS at;
       COMMIT;`,
      )
      .then((results) => (results as unknown as { rows: { xid: string }[] }[])[3]!);
    xid = rows[0]!.xid;
    await p.source(`UPDATE shop.lines SET qty = 3 WHERE n = 1`);
    await p.replicate();
    const range = await p.target(
      `SELECT to_char(min(commit_timestamp) AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') AS first,
              to_char(max(commit_timestamp) AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') AS last
         FROM audit.audit_log WHERE source_table = 'lines'`,
    );
    between = { from: range.rows[0].first, to: range.rows[0].last };
  });
  afterAll(async () => p?.dispose());

  const cli = (...args: string[]) =>
    runCli([...args, ...connectionArgs({ configFile, targetUrl: p.targetUrl })]);

  it('lists every change of one source transaction across tables, numbers exact', async () => {
    const result = await cli('history', 'transaction', xid, '--json');
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    // The raw text: the numeric's 30 digits survive (no double rounding).
    expect(result.stdout).toContain('12345678901234567890.1234567890');
    const changes = JSON.parse(result.stdout) as {
      table: string;
      key: unknown;
      operation: string;
      transactionId: string;
    }[];
    expect(changes.map((c) => [c.table, c.key, c.operation, c.transactionId])).toEqual([
      ['shop.orders', { id: 1 }, 'INSERT', xid],
      ['shop.lines', { order_id: 1, n: 1 }, 'INSERT', xid],
      ['shop.lines', { order_id: 1, n: 2 }, 'INSERT', xid],
    ]);
    const text = await cli('history', 'transaction', xid);
    expect(text.stdout).toMatch(/^shop\.orders \{"id":1\}\n {2}\S+ {2}INSERT/);
    const none = await cli('history', 'transaction', '1');
    expect(none).toMatchObject({ code: 0, stdout: 'no changes recorded for transaction 1\n' });
  });

  it('lists a table’s changes committed in [--from, --to)', async () => {
    const result = await cli(
      'history',
      'changes',
      'shop.lines',
      '--from',
      between.from,
      '--to',
      between.to,
      '--json',
    );
    expect(result.code).toBe(0);
    // --to excludes the UPDATE committed at exactly that instant.
    expect(JSON.parse(result.stdout).map((c: { operation: string }) => c.operation)).toEqual([
      'INSERT',
      'INSERT',
    ]);
    const all = await cli(
      'history',
      'changes',
      'shop.lines',
      '--from',
      between.from,
      '--to',
      '2999-01-01T00:00:00Z',
      '--json',
    );
    expect(JSON.parse(all.stdout).map((c: { operation: string }) => c.operation)).toEqual([
      'INSERT',
      'INSERT',
      'UPDATE',
    ]);
  });

  it('refuses bad input with exit 2 and one line', async () => {
    for (const args of [
      ['history', 'transaction', 'abc'],
      ['history', 'changes', 'shop.lines', '--from', 'yesterday', '--to', between.to],
    ]) {
      const result = await cli(...args);
      expect(result.code).toBe(2);
      expect(result.stderr).not.toMatch(/\n\s+at /);
    }
    const unknown = await cli(
      'history',
      'changes',
      'shop.nope',
      '--from',
      between.from,
      '--to',
      between.to,
    );
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toBe(
      'audit-trail: error [HISTORY_QUERY]: shop.nope is not an audited table on this target\n' +
        '  hint: audit it by listing it in the config and running audit-trail migrate\n',
    );
  });

  it('exports every change as JSON lines and as CSV, numbers exact; refuses to overwrite a file', async () => {
    const { rows } = await p.target('SELECT count(*)::int AS n FROM audit.audit_log');
    const ndjson = await cli('export');
    expect(ndjson.code).toBe(0);
    const lines = ndjson.stdout.trim().split('\n');
    expect(lines).toHaveLength(rows[0].n);
    expect(ndjson.stderr).toMatch(
      new RegExp(`^exported ${rows[0].n} changes of 2 tables committed in`),
    );
    const order = lines.find((line) => line.includes('"shop.orders"'))!;
    expect(order).toContain('"total":"12345678901234567890.1234567890"');

    const file = path.join(os.tmpdir(), `export-${randomBytes(4).toString('hex')}.csv`);
    const csv = await cli('export', '--format', 'csv', '--table', 'shop.orders', '--output', file);
    expect(csv.code).toBe(0);
    const records = (await readFile(file, 'utf8'))
      .split('\r\n')
      .filter(Boolean)
      .map((l) => splitCsv(l));
    expect(records[0]).toEqual([
      'table',
      'key',
      'operation',
      'commit_timestamp',
      'transaction_id',
      'change_seq',
      'changed_columns',
      'old_row',
      'new_row',
      'context',
      'old_json_nulls',
      'new_json_nulls',
    ]);
    // The transaction set no context: an empty field, not the text "null".
    expect(records.slice(1).map((r) => [r[0], r[1], r[2], r[4], r[8], r[9]])).toEqual([
      [
        'shop.orders',
        '{"id":1}',
        'INSERT',
        xid,
        '{"id":1,"total":"12345678901234567890.1234567890"}',
        '',
      ],
    ]);

    await writeFile(file, 'keep me');
    const refused = await cli('export', '--output', file);
    expect(refused.code).toBe(2);
    expect(await readFile(file, 'utf8')).toBe('keep me');
  });
});

import type { Kysely } from 'kysely';
import pg from 'pg';
import { parseConfig } from '../../src/config';
import { createHistory, HistoryQueryError, LosslessNumber } from '../../src/history';
import { exactNumbers } from '../../src/history/exact-numbers';
import { parseRowJson, stringifyRowJson } from '../../src/history/row-json';
import { createDmsTarget, type DmsTarget } from '../support/dms-target';
import { cdc, DmsApplier, fullLoad } from '../support/dms-apply';

const SOURCE_DDL = `
  CREATE SCHEMA shop;
  CREATE TABLE shop.orders (
    region text NOT NULL,
    id bigint NOT NULL,
    amount numeric(30, 9),
    note text,
    attributes jsonb,
    placed_at timestamptz,
    updated_at timestamptz,
    PRIMARY KEY (region, id)
  );`;

const config = parseConfig({
  auditSchema: 'audit',
  tables: [{ schema: 'shop', table: 'orders', ignoreColumns: ['updated_at'] }],
});

describe('history of DMS-applied changes', () => {
  let dmsTarget: DmsTarget;
  let target: pg.Client;
  let db: Kysely<unknown>;
  let dms: DmsApplier;

  beforeAll(async () => {
    dmsTarget = await createDmsTarget(SOURCE_DDL, config);
    ({ client: target, db } = dmsTarget);
    dms = new DmsApplier(target, 'audit', 'orders', ['region', 'id']);
  });

  afterAll(() => dmsTarget?.close());

  const key = { region: 'EU', id: '9007199254740993' };
  const tricky = 'it\'s "quoted",\nwith a newline and a, comma';

  it('records snapshot, insert, update, delete and re-insert exactly, with microseconds', async () => {
    await dms.insert(
      {
        ...key,
        amount: '12345678901234567890.123456789',
        note: tricky,
        attributes: '{"tags": ["a", "b"], "n": 1.50}',
        placed_at: '2026-01-02 03:04:05.123456+00',
        updated_at: null,
      },
      fullLoad('2026-11-22 10:00:00.000001'),
    );
    await dms.update(
      key,
      { amount: '1.000000001', note: null },
      cdc('UPDATE', '2026-11-22 10:00:01.000002', 700),
    );
    await dms.delete(key, cdc('DELETE', '2026-11-22 10:00:02.000003', 701));
    await dms.insertRecord(
      { ...key, amount: '3', note: 'back', attributes: null, placed_at: null, updated_at: null },
      cdc('INSERT', '2026-11-22 10:00:03.000004', 702),
    );

    const history = createHistory(db, { auditSchema: 'audit' });
    const versions = await history.history('shop.orders', { region: 'EU', id: 9007199254740993n });
    expect(versions.map((v) => [v.operation, v.commitTimestamp])).toEqual([
      ['SNAPSHOT', '2026-11-22T10:00:00.000001Z'],
      ['UPDATE', '2026-11-22T10:00:01.000002Z'],
      ['DELETE', '2026-11-22T10:00:02.000003Z'],
      ['INSERT', '2026-11-22T10:00:03.000004Z'],
    ]);
    const [snapshot, update, deletion, reinsert] = versions;
    expect(snapshot?.changeSeq).toBeNull();
    expect(snapshot?.newRow).toEqual({
      region: 'EU',
      id: '9007199254740993',
      amount: '12345678901234567890.123456789',
      note: tricky,
      attributes: { tags: ['a', 'b'], n: new LosslessNumber('1.50') }, // exact, not 1.5
      placed_at: '2026-01-02T03:04:05.123456+00:00',
    });
    expect(update?.oldRow?.amount).toBe('12345678901234567890.123456789');
    expect(update?.newRow?.amount).toBe('1.000000001');
    expect(update?.changedColumns).toEqual(['amount', 'note']);
    expect(update?.transactionId).toBe('700');
    expect(deletion?.newRow).toBeNull();
    expect(deletion?.oldRow?.amount).toBe('1.000000001');
    expect(reinsert?.oldRow).toBeNull();
    expect(reinsert?.newRow?.note).toBe('back');
    expect(versions[0]?.key).toEqual({ region: 'EU', id: '9007199254740993' });
  });

  it("gives each version rows of its own: changing one version's row changes no other's", async () => {
    const history = createHistory(db, { auditSchema: 'audit' });
    const read = () => history.history('shop.orders', ['EU', '9007199254740993']);
    const [snapshot, update] = await read();
    // Captured by the kit, the update's old row is the snapshot's new row, text for text.
    expect(update?.oldRow).toStrictEqual(snapshot?.newRow);
    const attributes = (row: unknown) =>
      (row as { attributes: { tags: string[]; n: LosslessNumber } }).attributes;
    attributes(snapshot?.newRow).tags.push('changed');
    attributes(snapshot?.newRow).n.value = '2';
    (snapshot?.newRow as { note: string }).note = 'changed';
    expect(attributes(update?.oldRow)).toStrictEqual({
      tags: ['a', 'b'],
      n: new LosslessNumber('1.50'),
    });
    expect(update?.oldRow?.note).toBe(tricky);
    const [, again] = await read();
    expect(again?.oldRow).toStrictEqual(update?.oldRow);
  });

  it("gives each version a key and changed columns of its own: changing one's changes no other's", async () => {
    const other = { region: 'US', id: '7' };
    const row = { amount: '1', note: 'a', attributes: null, placed_at: null, updated_at: null };
    await dms.insert({ ...other, ...row }, cdc('INSERT', '2026-11-21 08:00:00.000001', 690));
    await dms.update(other, { amount: '2' }, cdc('UPDATE', '2026-11-21 08:00:01.000001', 691));
    await dms.update(other, { amount: '3' }, cdc('UPDATE', '2026-11-21 08:00:02.000001', 692));
    const history = createHistory(db, { auditSchema: 'audit' });
    const [insert, first, second] = await history.history('shop.orders', other, { limit: 10 });
    // The same texts, version after version.
    expect([insert?.key, first?.key, second?.key]).toEqual([other, other, other]);
    expect([first?.changedColumns, second?.changedColumns]).toEqual([['amount'], ['amount']]);
    (insert?.key as { region: string }).region = 'changed';
    (first?.key as { region: string }).region = 'changed';
    (first?.changedColumns as string[]).push('note');
    expect(second?.key).toEqual(other);
    expect(second?.changedColumns).toEqual(['amount']);
  });

  it('answers as-of questions at microsecond boundaries', async () => {
    const history = createHistory(db, { auditSchema: 'audit' });
    const at = (instant: string) =>
      history.asOf('shop.orders', ['EU', '9007199254740993'], instant);
    expect(await at('2026-11-22T09:59:59Z')).toBeNull();
    expect((await at('2026-11-22T10:00:01.000001Z'))?.amount).toBe(
      '12345678901234567890.123456789',
    );
    expect((await at('2026-11-22T10:00:01.000002Z'))?.amount).toBe('1.000000001');
    expect(await at('2026-11-22T10:00:02.5Z')).toBeNull();
    expect((await at('2026-11-22T12:00:00+01:00'))?.note).toBe('back');
  });

  it('records one row when DMS re-applies changes after a restart', async () => {
    const other = { region: 'US', id: '1' };
    const insert = cdc('INSERT', '2026-11-22 11:00:00.000001', 800);
    const update = cdc('UPDATE', '2026-11-22 11:00:01.000001', 801);
    await dms.insert(
      { ...other, amount: '1', note: 'a', attributes: null, placed_at: null, updated_at: null },
      insert,
    );
    await dms.update(other, { amount: '2' }, update);
    // The task restarts from an earlier position: both changes come again.
    await dms.insertRecord(
      { ...other, amount: '1', note: 'a', attributes: null, placed_at: null, updated_at: null },
      insert,
    );
    await dms.update(other, { amount: '2' }, update);
    const versions = await createHistory(db).history('shop.orders', other);
    expect(versions.map((v) => v.operation)).toEqual(['INSERT', 'UPDATE']);
  });

  it('tells a loaded row edited on the target from DMS re-applying or re-loading it (#17 item 10)', async () => {
    const row = { region: 'US', id: '3' };
    const values = {
      amount: '1',
      note: 'loaded',
      attributes: null,
      placed_at: null,
      updated_at: null,
    };
    const load = fullLoad('2026-11-22 11:30:00.000001');
    await dms.insert({ ...row, ...values }, load);
    const operations = async () =>
      (await createHistory(db).history('shop.orders', row)).map((v) => [
        v.operation,
        v.newRow?.note ?? null,
      ]);
    // A direct edit on the target (headers left alone) is no change of the source.
    await target.query(
      `UPDATE audit.orders_staging SET note = 'edited' WHERE region = 'US' AND id = 3`,
    );
    await target.query(
      `UPDATE audit.orders_staging SET ar_h_indicator = 'D' WHERE region = 'US' AND id = 3`,
    );
    expect(await operations()).toEqual([['SNAPSHOT', 'loaded']]);
    // The same full-load row written again (same copy) records nothing either.
    await dms.insertRecord({ ...row, ...values }, load);
    expect(await operations()).toEqual([['SNAPSHOT', 'loaded']]);
    // A CDC change of a loaded row, then DMS re-applying it after a restart: one UPDATE.
    const update = cdc('UPDATE', '2026-11-22 11:30:01.000001', 850);
    await dms.update(row, { note: 'changed' }, update);
    await dms.update(row, { note: 'changed' }, update);
    expect(await operations()).toEqual([
      ['SNAPSHOT', 'loaded'],
      ['UPDATE', 'changed'],
    ]);
    // A re-load (a new copy time) is a new baseline, recorded when it differs.
    await dms.insertRecord(
      { ...row, ...values, note: 'reloaded' },
      fullLoad('2026-11-22 11:31:00'),
    );
    await dms.insertRecord(
      { ...row, ...values, note: 'reloaded' },
      fullLoad('2026-11-22 11:32:00'),
    );
    // reload-table as documented: staging truncated, then the copy inserted again.
    await target.query('TRUNCATE audit.orders_staging');
    await dms.insert({ ...row, ...values, note: 'copied' }, fullLoad('2026-11-22 11:33:00'));
    expect(await operations()).toEqual([
      ['SNAPSHOT', 'loaded'],
      ['UPDATE', 'changed'],
      ['SNAPSHOT', 'reloaded'],
      ['SNAPSHOT', 'copied'],
    ]);
  });

  it('records nothing for an update of ignored columns only, and keeps them out of rows', async () => {
    const row = { region: 'US', id: '2' };
    await dms.insert(
      {
        ...row,
        amount: '5',
        note: null,
        attributes: null,
        placed_at: null,
        updated_at: '2026-01-01 00:00:00+00',
      },
      cdc('INSERT', '2026-11-22 12:00:00', 900),
    );
    await dms.update(
      row,
      { updated_at: '2026-02-01 00:00:00+00' },
      cdc('UPDATE', '2026-11-22 12:00:01', 901),
    );
    const versions = await createHistory(db).history('shop.orders', row);
    expect(versions).toHaveLength(1);
    expect(versions[0]?.newRow).not.toHaveProperty('updated_at');
    expect(versions[0]?.newRow).not.toHaveProperty('ar_h_operation');
  });

  it('lists what one transaction changed and what changed in a time range', async () => {
    const history = createHistory(db);
    const tx = await history.transaction(801);
    expect(tx.map((v) => [v.operation, v.key])).toEqual([['UPDATE', { region: 'US', id: '1' }]]);
    const between = await history.changesBetween(
      'shop.orders',
      '2026-11-22T10:00:01.000002Z',
      '2026-11-22T10:00:03.000004Z',
    );
    expect(between.map((v) => v.operation)).toEqual(['UPDATE', 'DELETE']);
    // A table that is not audited has no changes to list (the CLI refuses it first).
    expect(
      await history.changesBetween('shop.nope', '2026-11-22T00:00:00Z', '2026-11-23T00:00:00Z'),
    ).toEqual([]);
  });

  it('diffs two versions', async () => {
    const history = createHistory(db);
    const [snapshot, update] = await history.history('shop.orders', ['EU', '9007199254740993']);
    expect(history.diff(snapshot!, update!)).toEqual([
      { column: 'amount', from: '12345678901234567890.123456789', to: '1.000000001' },
      { column: 'note', from: tricky, to: null },
    ]);
  });

  it('rejects unknown tables and wrong key shapes clearly', async () => {
    const history = createHistory(db);
    await expect(history.history('shop.nope', [1])).rejects.toThrow(HistoryQueryError);
    await expect(history.history('shop.orders', ['EU'])).rejects.toThrow(
      /key of 2 column\(s\) \(region, id\), got 1 value/,
    );
    await expect(history.history('shop.orders', { region: 'EU' })).rejects.toThrow(/missing id/);
    await expect(history.history('shop.orders', ['EU', 'not-a-number'])).rejects.toThrow(
      HistoryQueryError,
    );
  });

  it('ends the old key with a DELETE and continues under the new key when a key changes', async () => {
    const row = { region: 'US', id: '10' };
    await dms.insert(
      { ...row, amount: '1', note: null, attributes: null, placed_at: null, updated_at: null },
      cdc('INSERT', '2026-11-22 13:00:00', 1000),
    );
    const move = cdc('UPDATE', '2026-11-22 13:00:01', 1001);
    await dms.update(row, { id: '11' }, move);
    await dms.update(row, { id: '11' }, move); // replayed: matches nothing any more
    const history = createHistory(db);
    const oldKey = await history.history('shop.orders', ['US', '10']);
    const newKey = await history.history('shop.orders', ['US', '11']);
    expect(oldKey.map((v) => v.operation)).toEqual(['INSERT', 'DELETE']);
    expect(oldKey[1]?.changeSeq).toBe(move.changeSeq);
    expect(newKey.map((v) => [v.operation, v.oldRow?.id, v.newRow?.id, v.changedColumns])).toEqual([
      ['UPDATE', '10', '11', ['id']],
    ]);
    expect(await history.asOf('shop.orders', ['US', '10'], '2026-11-22T13:00:02Z')).toBeNull();
  });

  it('records a change of numeric scale (1.10 -> 1.100), which jsonb equality would miss', async () => {
    const row = { region: 'US', id: '20' };
    const base = { amount: null, note: null, placed_at: null, updated_at: null };
    await dms.insert(
      { ...row, ...base, attributes: '{"n": 1.10}' },
      cdc('INSERT', '2026-11-22 14:00:00', 1100),
    );
    await dms.update(
      row,
      { attributes: '{"n": 1.100}' },
      cdc('UPDATE', '2026-11-22 14:00:01', 1101),
    );
    const versions = await createHistory(db).history('shop.orders', row);
    expect(versions.map((v) => v.operation)).toEqual(['INSERT', 'UPDATE']);
    expect(versions[1]?.changedColumns).toEqual(['attributes']);
    const { rows } = await target.query<{ text: string }>(
      `SELECT new_row ->> 'attributes' AS text FROM audit.audit_log WHERE change_seq = $1`,
      [versions[1]?.changeSeq],
    );
    expect(rows[0]?.text).toBe('{"n": 1.100}');
  });

  it('audits every row of a multi-row statement, and refuses an ambiguous multi-row key change', async () => {
    const stamp = '2026-11-22 15:00:00';
    const seq = (n: number) => `2026112215000000${String(n).padStart(19, '0')}`;
    await target.query(
      `INSERT INTO audit.orders_staging (region, id, amount, ar_h_operation, ar_h_commit_timestamp, ar_h_change_seq, ar_h_transaction_id, ar_h_stream_position, ar_h_indicator)
       SELECT 'BATCH', g, g, 'INSERT', $1, $2 || lpad(g::text, 4, '0'), '1200', '0/1', 'I' FROM generate_series(1, 500) g`,
      [stamp, seq(0).slice(0, 31)],
    );
    await target.query(
      `UPDATE audit.orders_staging SET amount = amount * 2, ar_h_operation = 'UPDATE', ar_h_indicator = 'U',
         ar_h_change_seq = $1 || lpad(id::text, 4, '0'), ar_h_transaction_id = '1201'
       WHERE region = 'BATCH' AND id <= 300`,
      [seq(1).slice(0, 30) + '1'],
    );
    const { rows } = await target.query<{ operation: string; n: number }>(
      `SELECT operation, count(*)::int AS n FROM audit.audit_log WHERE row_key ->> 'region' = 'BATCH' GROUP BY 1 ORDER BY 1`,
    );
    expect(rows).toEqual([
      { operation: 'INSERT', n: 500 },
      { operation: 'UPDATE', n: 300 },
    ]);
    const history = createHistory(db);
    expect(
      (await history.history('shop.orders', ['BATCH', 7])).map((v) => v.newRow?.amount),
    ).toEqual(['7.000000000', '14.000000000']);
    await expect(
      target.query(
        `UPDATE audit.orders_staging SET id = id + 1000, ar_h_operation = 'UPDATE', ar_h_change_seq = $1 || lpad(id::text, 4, '0')
         WHERE region = 'BATCH' AND id <= 2`,
        [seq(2).slice(0, 30) + '2'],
      ),
    ).rejects.toThrow(/apply key changes one row per statement/);
  });

  it('turns only numeric and bigint values (and arrays of them) into exact strings', async () => {
    const { rows } = await target.query(
      `SELECT audit.exact_row('{"a": 1.50, "b": [1, 2.0, null], "c": 3, "d": {"n": 1.5}}', '{a,b,d}') AS row`,
    );
    expect(rows[0].row).toEqual({ a: '1.50', b: ['1', '2.0', null], c: 3, d: { n: 1.5 } });
  });

  it('makes numbers exact in the client exactly as exact_row does in SQL', async () => {
    // The history API no longer calls exact_row per version: exactNumbers does the same
    // on the losslessly parsed document. exact_row is the oracle.
    const columns = ['a', 'b', 'd', '__proto__', 'big', 'huge', 'neg', 'missing', 's'];
    const documents = [
      '{"a": 1.50, "b": [1, 2.0, null, "x", [3.0]], "c": 3, "d": {"n": 1.5}}',
      '{"__proto__": 1.10, "big": 9007199254740993, "huge": 1e400, "neg": -0.000, "s": "2.0"}',
      '{"a": null, "b": [], "big": -12345678901234567890.123456789012345678901}',
    ];
    for (const document of documents) {
      const { rows } = await target.query(
        `SELECT audit.exact_row($1::jsonb, $2)::text AS oracle, $1::jsonb::text AS stored`,
        [document, columns],
      );
      const client = exactNumbers(parseRowJson(rows[0].stored), columns);
      expect(stringifyRowJson(client)).toEqual(stringifyRowJson(parseRowJson(rows[0].oracle)));
      expect(Object.getPrototypeOf(client)).toBe(Object.prototype);
    }
  });

  it('keeps the audit log append-only; rows leave only through the retention function', async () => {
    await target.query(
      `CREATE ROLE intruder; GRANT USAGE ON SCHEMA audit TO intruder; GRANT UPDATE, DELETE, TRUNCATE ON audit.audit_log TO intruder`,
    );
    const before = (await target.query('SELECT count(*)::int AS n FROM audit.audit_log')).rows[0].n;
    await target.query('SET ROLE intruder');
    try {
      await expect(target.query(`UPDATE audit.audit_log SET operation = 'INSERT'`)).rejects.toThrow(
        /append-only/,
      );
      await expect(target.query('DELETE FROM audit.audit_log')).rejects.toThrow(/append-only/);
      await expect(target.query('TRUNCATE audit.audit_log')).rejects.toThrow(/append-only/);
      // Replica mode silences ordinary triggers; the guard is ENABLE ALWAYS.
      await target.query('RESET ROLE');
      await target.query('SET session_replication_role = replica');
      await target.query('SET ROLE intruder');
      await expect(target.query('DELETE FROM audit.audit_log')).rejects.toThrow(/append-only/);
    } finally {
      await target.query('RESET ROLE');
      await target.query('RESET session_replication_role');
    }
    expect((await target.query('SELECT count(*)::int AS n FROM audit.audit_log')).rows[0].n).toBe(
      before,
    );
    // Retention's path still works (nothing recorded before 2000: nothing pruned).
    const pruned = await target.query(`SELECT audit.prune_audit_log('2000-01-01') AS n`);
    expect(Number(pruned.rows[0].n)).toBe(0);
  });
});

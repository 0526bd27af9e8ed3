import type { Kysely } from 'kysely';
import pg from 'pg';
import { createHistory, diff, type Version } from '../../src/history';
import { createPipeline, type Pipeline } from '../engine/helpers';
import { createDmsTarget, type DmsTarget } from '../support/dms-target';
import { cdc, DmsApplier } from '../support/dms-apply';

/**
 * The JSON null literal (`'null'`) of a json or jsonb column is not SQL NULL: history
 * records the one apart from the other (a json value as its exact text, the string
 * "null"; a jsonb column named in the version's JSON-null list), and verify compares it
 * on every side.
 */
const DDL = `CREATE TABLE public.jn (id int PRIMARY KEY, j json, jb jsonb, "Jb 2" jsonb, t text)`;
const TABLES = [{ table: 'jn' }];

/** What a version says of its values: operation, new row, its JSON nulls, changed columns. */
const summary = (v: Version) => [
  v.operation,
  v.newRow && { j: v.newRow.j, jb: v.newRow.jb },
  v.newRowJsonNulls,
  v.changedColumns,
];

describe('the JSON null literal in history', () => {
  let dmsTarget: DmsTarget;
  let target: pg.Client;
  let db: Kysely<unknown>;

  beforeAll(async () => {
    dmsTarget = await createDmsTarget(DDL, { auditSchema: 'audit', tables: TABLES });
    ({ client: target, db } = dmsTarget);
    const dms = new DmsApplier(target, 'audit', 'jn', ['id']);
    const none = { 'Jb 2': null, t: null };
    await dms.insert(
      { id: '1', j: null, jb: null, ...none },
      cdc('INSERT', '2026-11-22 10:00:00', 1),
    );
    await dms.update({ id: '1' }, { jb: 'null' }, cdc('UPDATE', '2026-11-22 10:00:01', 2));
    await dms.update({ id: '1' }, { jb: null }, cdc('UPDATE', '2026-11-22 10:00:02', 3));
    await dms.update({ id: '1' }, { j: 'null' }, cdc('UPDATE', '2026-11-22 10:00:03', 4));
    await dms.update({ id: '1' }, { j: null }, cdc('UPDATE', '2026-11-22 10:00:04', 5));
    await dms.insert(
      { id: '2', j: 'null', jb: 'null', 'Jb 2': 'null', t: 'x' },
      cdc('INSERT', '2026-11-22 10:00:05', 6),
    );
    await dms.delete({ id: '2' }, cdc('DELETE', '2026-11-22 10:00:06', 7));
  });

  afterAll(() => dmsTarget?.close());

  it('gives an UPDATE NULL -> null -> NULL of a jsonb and of a json column a version each', async () => {
    const versions = await createHistory(db).history('public.jn', [1]);
    expect(versions.map(summary)).toEqual([
      ['INSERT', { j: null, jb: null }, [], null],
      // jsonb: the value reads null either way; the list says which.
      ['UPDATE', { j: null, jb: null }, ['jb'], ['jb']],
      ['UPDATE', { j: null, jb: null }, [], ['jb']],
      // json: its exact text, the string "null".
      ['UPDATE', { j: 'null', jb: null }, [], ['j']],
      ['UPDATE', { j: null, jb: null }, [], ['j']],
    ]);
    expect(versions.map((v) => v.oldRowJsonNulls)).toEqual([[], [], ['jb'], [], []]);
  });

  it('lists the JSON nulls of old and new rows in every query, sorted by name', async () => {
    const history = createHistory(db);
    const inserted = { oldRowJsonNulls: [], newRowJsonNulls: ['Jb 2', 'jb'] };
    const deleted = { oldRowJsonNulls: ['Jb 2', 'jb'], newRowJsonNulls: [] };
    expect(await history.history('public.jn', { id: 2 })).toMatchObject([inserted, deleted]);
    expect(await history.history('public.jn', [2], { limit: 1 })).toMatchObject([inserted]);
    expect(await history.versionAt('public.jn', [2], '2026-11-22T10:00:05.5Z')).toMatchObject(
      inserted,
    );
    const between = await history.changesBetween(
      'public.jn',
      '2026-11-22T10:00:05Z',
      '2026-11-22T10:00:07Z',
    );
    expect(between).toMatchObject([inserted, deleted]);
    const { rows } = await target.query<{ transaction_id: string }>(
      `SELECT transaction_id FROM audit.audit_log WHERE operation = 'DELETE' AND source_table = 'jn'`,
    );
    expect(await history.transaction(rows[0]!.transaction_id)).toMatchObject([deleted]);
    const latest = await history.latest('public.jn');
    expect(latest.map((v) => [v.key, v.oldRowJsonNulls, v.newRowJsonNulls])).toEqual([
      [{ id: 1 }, [], []],
      [{ id: 2 }, ['Jb 2', 'jb'], []],
    ]);
  });

  it('diff reports a jsonb column going between SQL NULL and the JSON null literal', async () => {
    const [insert, toLiteral, back] = await createHistory(db).history('public.jn', [1]);
    expect(diff(insert!, toLiteral!)).toEqual([
      { column: 'jb', from: null, to: null, jsonNull: { from: false, to: true } },
    ]);
    expect(diff(toLiteral!, back!)).toEqual([
      { column: 'jb', from: null, to: null, jsonNull: { from: true, to: false } },
    ]);
    expect(diff(null, toLiteral!)).toContainEqual({
      column: 'jb',
      from: undefined,
      to: null,
      jsonNull: { from: false, to: true },
    });
    // A plain row carries no list: nothing is known, nothing is invented.
    expect(diff(toLiteral!, toLiteral!.newRow)).toEqual([]);
    expect(diff(insert!, insert!)).toEqual([]);
  });
});

describe('the JSON null literal in verify', () => {
  let p: Pipeline;
  beforeAll(async () => {
    p = await createPipeline(
      `${DDL};
       INSERT INTO public.jn VALUES (1, NULL, NULL, NULL, 'a'), (2, 'null', 'null', 'null', 'b'),
                                    (3, 'null', NULL, 'null', 'c');`,
      { tables: TABLES },
    );
    await p.replicate(); // initial load
  });
  afterAll(async () => p?.dispose());

  /** Each mismatch: kind, key, columns, and the JSON nulls of `side`'s row and the audit row. */
  const mismatches = async (side: 'source' | 'staging') =>
    (await p.verify()).mismatches.map((m) => [
      m.kind,
      m.key,
      m.columns,
      m[`${side}JsonNulls`] ?? [],
      m.auditJsonNulls ?? [],
    ]);

  it('agrees with the source on loaded and changed JSON nulls, both ways', async () => {
    await p.source(`UPDATE public.jn SET jb = 'null', j = 'null' WHERE id = 1`);
    await p.source(`UPDATE public.jn SET jb = NULL WHERE id = 2`);
    await p.source(`INSERT INTO public.jn VALUES (4, 'null', 'null', NULL, 'd')`);
    await p.replicate();
    const report = await p.verify();
    expect(report.mismatches).toEqual([]);
    expect(report.ok).toBe(true);
  });

  it('reports a source row whose jsonb went between SQL NULL and the literal', async () => {
    // Not replicated: the audit log still has the row before.
    await p.source(`UPDATE public.jn SET jb = NULL WHERE id = 1`);
    await p.source(`UPDATE public.jn SET jb = 'null' WHERE id = 2`);
    expect(await mismatches('source')).toEqual([
      ['different', { id: 1 }, ['jb'], [], ['jb']],
      ['different', { id: 2 }, ['jb'], ['Jb 2', 'jb'], ['Jb 2']],
    ]);
    await p.replicate();
    expect((await p.verify()).ok).toBe(true);
  });

  it('reports a staging edit between SQL NULL and the literal, json and jsonb', async () => {
    // An insider's edits of staging: no change sequence, so no version.
    await p.target(`UPDATE audit.jn_staging SET jb = NULL WHERE id = 2`);
    await p.target(`UPDATE audit.jn_staging SET "Jb 2" = 'null' WHERE id = 1`);
    await p.target(`UPDATE audit.jn_staging SET j = NULL WHERE id = 3`);
    expect(await mismatches('staging')).toEqual([
      ['staging-differs', { id: 1 }, ['Jb 2'], ['Jb 2'], []],
      ['staging-differs', { id: 2 }, ['jb'], ['Jb 2'], ['Jb 2', 'jb']],
      ['staging-differs', { id: 3 }, ['j'], ['Jb 2'], ['Jb 2']],
    ]);
  });
});

import type { Kysely } from 'kysely';
import pg from 'pg';
import { createHistory, type Version } from '../../src/history';
import { createPipeline, type Pipeline } from '../engine/helpers';
import { createDmsTarget, type DmsTarget } from '../support/dms-target';
import { cdc, DmsApplier } from '../support/dms-apply';

/**
 * Inside a json[] or jsonb[] value, an element that is the JSON null literal and a NULL
 * element are different values: `{"null",NULL}` is not `{NULL,NULL}`. to_jsonb and
 * row_to_json render both as JSON null, so such an array is recorded as its exact text
 * (as an array with bounds is); an array without a JSON null element stays a JSON array.
 */
const DDL = `CREATE TABLE public.ja (id int PRIMARY KEY, jb jsonb[], j json[], t text)`;
const TABLES = [{ table: 'ja' }];

/** Operation, the two array values of the new row, and the changed columns. */
const summary = (v: Version) => [
  v.operation,
  v.newRow && { jb: v.newRow.jb, j: v.newRow.j },
  v.changedColumns,
];

describe('JSON null elements of json[] and jsonb[] in history', () => {
  let dmsTarget: DmsTarget;
  let target: pg.Client;
  let db: Kysely<unknown>;

  beforeAll(async () => {
    dmsTarget = await createDmsTarget(DDL, { auditSchema: 'audit', tables: TABLES });
    ({ client: target, db } = dmsTarget);
    const dms = new DmsApplier(target, 'audit', 'ja', ['id']);
    await dms.insert(
      { id: '1', jb: '{NULL}', j: '{NULL}', t: null },
      cdc('INSERT', '2026-11-22 10:00:00', 1),
    );
    await dms.update({ id: '1' }, { jb: '{"null"}' }, cdc('UPDATE', '2026-11-22 10:00:01', 2));
    await dms.update({ id: '1' }, { jb: '{NULL}' }, cdc('UPDATE', '2026-11-22 10:00:02', 3));
    await dms.update({ id: '1' }, { j: '{"null"}' }, cdc('UPDATE', '2026-11-22 10:00:03', 4));
    await dms.update({ id: '1' }, { j: '{NULL}' }, cdc('UPDATE', '2026-11-22 10:00:04', 5));
    await dms.insert(
      { id: '2', jb: '{{"null",NULL},{"{\\"a\\": null}",1}}', j: '{" null","null",NULL}', t: 'x' },
      cdc('INSERT', '2026-11-22 10:00:05', 6),
    );
    await dms.insert(
      { id: '3', jb: '{1,NULL}', j: '{"{\\"a\\": null}"}', t: 'y' },
      cdc('INSERT', '2026-11-22 10:00:06', 7),
    );
    // An element that is a JSON array, and a dimension: JSON renders both as an array.
    await dms.insert(
      { id: '4', jb: '{"[1, 2]"}', j: '{"[1,2]"}', t: 'z' },
      cdc('INSERT', '2026-11-22 10:00:07', 8),
    );
    await dms.update(
      { id: '4' },
      { jb: '{{1,2}}', j: '{{1,2}}' },
      cdc('UPDATE', '2026-11-22 10:00:08', 9),
    );
  });

  afterAll(() => dmsTarget?.close());

  it('gives an UPDATE between a NULL element and a JSON null element a version, each way', async () => {
    const versions = await createHistory(db).history('public.ja', [1]);
    expect(versions.map(summary)).toEqual([
      ['INSERT', { jb: [null], j: '[null]' }, null],
      ['UPDATE', { jb: '{"null"}', j: '[null]' }, ['jb']],
      ['UPDATE', { jb: [null], j: '[null]' }, ['jb']],
      ['UPDATE', { jb: [null], j: '{"null"}' }, ['j']],
      ['UPDATE', { jb: [null], j: '[null]' }, ['j']],
    ]);
  });

  it("records an array holding a JSON null element as the array's text, in any dimension", async () => {
    const [row2] = await createHistory(db).history('public.ja', [2]);
    expect(row2!.newRow).toMatchObject({
      jb: '{{"null",NULL},{"{\\"a\\": null}",1}}',
      j: '{" null","null",NULL}',
    });
    // Without one: a JSON array (jsonb) and the exact JSON text (json), as before.
    const [row3] = await createHistory(db).history('public.ja', [3]);
    expect(row3!.newRow).toMatchObject({ jb: [1, null], j: '[{"a": null}]' });
  });

  it('tells an element that is a JSON array from a dimension', async () => {
    const versions = await createHistory(db).history('public.ja', [4]);
    expect(versions.map(summary)).toEqual([
      ['INSERT', { jb: '{"[1, 2]"}', j: '{"[1,2]"}' }, null],
      ['UPDATE', { jb: [[1, 2]], j: '[[1,2]]' }, ['j', 'jb']],
    ]);
  });
});

describe('JSON null elements of json[] and jsonb[] in verify', () => {
  let p: Pipeline;
  beforeAll(async () => {
    p = await createPipeline(
      `${DDL};
       INSERT INTO public.ja VALUES (1, '{NULL}', '{NULL}', 'a'), (2, '{"null"}', '{"null",NULL}', 'b'),
                                    (3, '[0:1]={"null",1}', '{"[null]"}', 'c'),
                                    (5, '{"[1, 2]","{\\"a\\": [1]}"}', '{{"[1]"},{" [ ]"}}', 'e');`,
      { tables: TABLES },
    );
    await p.replicate(); // initial load
  });
  afterAll(async () => p?.dispose());

  it('agrees with the source on loaded and changed arrays with JSON null elements', async () => {
    await p.source(`UPDATE public.ja SET jb = '{"null"}', j = '{"null"}' WHERE id = 1`);
    await p.source(`UPDATE public.ja SET jb = '{NULL}' WHERE id = 2`);
    await p.source(`UPDATE public.ja SET jb = '{{1,2}}', j = '{{1,2},{"[]",null}}' WHERE id = 5`);
    await p.source(`INSERT INTO public.ja VALUES (4, '{{"null"},{NULL}}', '{" null "}', 'd')`);
    await p.replicate();
    const report = await p.verify();
    expect(report.mismatches).toEqual([]);
    expect(report.ok).toBe(true);
    const { rows } = await p.target(
      `SELECT new_row -> 'jb' AS jb FROM audit.audit_log
        WHERE source_table = 'ja' AND row_key = '{"id": 1}' ORDER BY id`,
    );
    expect(rows.map((row: { jb: unknown }) => row.jb)).toEqual([[null], '{"null"}']);
  });

  it('reports a source row whose element went between NULL and the JSON null literal', async () => {
    // Not replicated: the audit log still has the row before.
    await p.source(`UPDATE public.ja SET jb = '{NULL}' WHERE id = 1`);
    await p.source(`UPDATE public.ja SET j = '{NULL,NULL}' WHERE id = 2`);
    const report = await p.verify();
    expect(report.mismatches.map((m) => [m.kind, m.key, m.columns])).toEqual([
      ['different', { id: 1 }, ['jb']],
      ['different', { id: 2 }, ['j']],
    ]);
    await p.replicate();
    expect((await p.verify()).ok).toBe(true);
  });

  it('reports a staging edit between a NULL element and the JSON null literal', async () => {
    await p.target(`UPDATE audit.ja_staging SET jb = '{"null"}' WHERE id = 1`);
    const report = await p.verify();
    expect(report.mismatches.map((m) => [m.kind, m.key, m.columns])).toEqual([
      ['staging-differs', { id: 1 }, ['jb']],
    ]);
  });
});

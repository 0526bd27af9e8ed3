import type { Kysely } from 'kysely';
import pg from 'pg';
import { createHistory } from '../../src/history';
import { verifyAuditTrail } from '../../src/verify';
import { auditRows, createPipeline, type Pipeline } from '../engine/helpers';
import { createDmsTarget, type DmsTarget } from '../support/dms-target';
import { cdc, DmsApplier, fullLoad } from '../support/dms-apply';

/**
 * Every name the capture functions, verify and the history reads use for a variable,
 * an alias or a record field, as a user column. None may change what is recorded.
 */
const INTERNAL_NAMES = [
  'n',
  'x',
  'y',
  'o',
  'p',
  'v',
  'c',
  'k',
  't',
  'r',
  's',
  'q',
  'a',
  'l',
  'data',
  'doc',
  'row_doc',
  'row_key',
  'key_json',
  'name',
  'value',
  'exact',
  'excluded_columns',
  'key_columns',
  'source_schema',
  'source_table',
  'operation',
  'commit_timestamp',
  'change_seq',
  'transaction_id',
  'stream_position',
  'indicator',
  'old_data',
  'new_data',
  'old_seq',
  'new_seq',
  'old_indicator',
  'new_indicator',
  'new_operation',
  'old_key',
  'new_key',
  'commit_ts',
  'xid',
  'lsn',
  'version',
  'version_operation',
  'old_side',
  'new_side',
  'moved_old',
  'moved_new',
  'joined',
  'j',
  'm',
  'pairs',
  'versions',
  'new_rows',
  'old_rows',
  'registered',
  'column_type',
  'column_value',
  'key',
  'row',
  'changed_columns',
  'old_row',
  'new_row',
  'id_',
  'i',
];

const NAMED_DDL = `
  CREATE TABLE public.pts (id int PRIMARY KEY, x jsonb, y jsonb, label text);
  CREATE TABLE public.fpts (id int PRIMARY KEY, x float8, y float8, label text);
  CREATE TABLE public.named (id int PRIMARY KEY, ${INTERNAL_NAMES.map((name) => `"${name}" int`).join(', ')});`;

const TABLES = [{ table: 'pts' }, { table: 'fpts' }, { table: 'named' }];

function namedRow(id: number, base: number): Record<string, string> {
  return Object.fromEntries([
    ['id', String(id)],
    ...INTERNAL_NAMES.map((name, i) => [name, String(base + i)]),
  ]);
}

describe('capture with column names the kit uses internally', () => {
  describe('through DMS-shaped staging writes', () => {
    let dmsTarget: DmsTarget;
    let target: pg.Client;
    let db: Kysely<unknown>;

    beforeAll(async () => {
      dmsTarget = await createDmsTarget(NAMED_DDL, { auditSchema: 'audit', tables: TABLES });
      ({ client: target, db } = dmsTarget);
    });

    afterAll(() => dmsTarget?.close());

    it('records pts (jsonb x/y) under its real key with its real rows', async () => {
      const dms = new DmsApplier(target, 'audit', 'pts', ['id']);
      await dms.insert(
        { id: '1', x: '{"a": 1}', y: '[2]', label: 'first' },
        fullLoad('2026-11-22 10:00:00'),
      );
      await dms.update({ id: '1' }, { label: 'second' }, cdc('UPDATE', '2026-11-22 10:00:01', 7));
      const versions = await createHistory(db).history('public.pts', { id: 1 });
      expect(
        versions.map((v) => [v.operation, v.key, v.oldRow, v.newRow, v.changedColumns]),
      ).toEqual([
        ['SNAPSHOT', { id: 1 }, null, { id: 1, x: { a: 1 }, y: [2], label: 'first' }, null],
        [
          'UPDATE',
          { id: 1 },
          { id: 1, x: { a: 1 }, y: [2], label: 'first' },
          { id: 1, x: { a: 1 }, y: [2], label: 'second' },
          ['label'],
        ],
      ]);
    });

    it('records float x/y columns (one-row and multi-row statements)', async () => {
      const dms = new DmsApplier(target, 'audit', 'fpts', ['id']);
      await dms.insert(
        { id: '1', x: '1.5', y: '2', label: 'a' },
        cdc('INSERT', '2026-11-22 10:00:00', 8),
      );
      await dms.insert(
        { id: '2', x: '3', y: '4', label: 'b' },
        cdc('INSERT', '2026-11-22 10:00:00', 8),
      );
      await dms.update({ id: '1' }, { x: '1.25' }, cdc('UPDATE', '2026-11-22 10:00:01', 9));
      await target.query(
        `UPDATE audit.fpts_staging SET y = y + 1, ar_h_operation = 'UPDATE',
           ar_h_change_seq = '20261122100002000000000000000000' || id, ar_h_transaction_id = '10'`,
      );
      const history = createHistory(db);
      const one = await history.history('public.fpts', [1]);
      expect(one.map((v) => [v.operation, v.changedColumns, v.newRow])).toEqual([
        ['INSERT', null, { id: 1, x: 1.5, y: 2, label: 'a' }],
        ['UPDATE', ['x'], { id: 1, x: 1.25, y: 2, label: 'a' }],
        ['UPDATE', ['y'], { id: 1, x: 1.25, y: 3, label: 'a' }],
      ]);
      const two = await history.history('public.fpts', [2]);
      expect(two.map((v) => v.newRow?.y)).toEqual([4, 5]);
    });

    it('records a table whose columns are named like every internal name', async () => {
      const dms = new DmsApplier(target, 'audit', 'named', ['id']);
      await dms.insert(namedRow(1, 100), fullLoad('2026-11-22 10:00:00'));
      await dms.insert(namedRow(2, 200), cdc('INSERT', '2026-11-22 10:00:01', 11));
      await dms.update({ id: '1' }, { n: '-1', t: '-2' }, cdc('UPDATE', '2026-11-22 10:00:02', 12));
      await dms.delete({ id: '2' }, cdc('DELETE', '2026-11-22 10:00:03', 13));
      await dms.insertRecord(namedRow(2, 300), cdc('INSERT', '2026-11-22 10:00:04', 14));
      await dms.update({ id: '2' }, { id: '3' }, cdc('UPDATE', '2026-11-22 10:00:05', 15));
      await target.query(
        `UPDATE audit.named_staging SET excluded_columns = 0, ar_h_operation = 'UPDATE',
           ar_h_change_seq = '20261122100006000000000000000000' || id, ar_h_transaction_id = '16'`,
      );
      const history = createHistory(db);
      const first = await history.history('public.named', { id: 1 });
      expect(first.map((v) => [v.operation, v.key, v.changedColumns])).toEqual([
        ['SNAPSHOT', { id: 1 }, null],
        ['UPDATE', { id: 1 }, ['n', 't']],
        ['UPDATE', { id: 1 }, ['excluded_columns']],
      ]);
      expect(first[2]?.newRow).toEqual({
        ...Object.fromEntries(Object.entries(namedRow(1, 100)).map(([k, v]) => [k, Number(v)])),
        n: -1,
        t: -2,
        excluded_columns: 0,
      });
      const second = await history.history('public.named', { id: 2 });
      expect(second.map((v) => v.operation)).toEqual(['INSERT', 'DELETE', 'INSERT', 'DELETE']);
      const third = await history.history('public.named', { id: 3 });
      expect(third.map((v) => [v.operation, v.changedColumns])).toEqual([
        ['UPDATE', ['id']],
        ['UPDATE', ['excluded_columns']],
      ]);
    });
  });

  describe('through the local engine, with verify', () => {
    let p: Pipeline;
    beforeAll(async () => {
      p = await createPipeline(
        `${NAMED_DDL}
         INSERT INTO public.pts VALUES (1, '{"a": 1}', '[1]', 'first');
         INSERT INTO public.fpts VALUES (1, 1.5, 2.5, 'first'), (2, 3, 4, 'x');
         INSERT INTO public.named (id, n, t, excluded_columns) VALUES (1, 1, 2, 3), (2, 4, 5, 6);`,
        { tables: TABLES },
      );
      await p.replicate(); // initial load
    });
    afterAll(async () => p?.dispose());

    it('loads, captures and verifies clean', async () => {
      await p.source(`UPDATE public.pts SET label = 'second'`);
      await p.source(`UPDATE public.fpts SET x = x + 1`);
      await p.source(`UPDATE public.named SET t = t * 10; DELETE FROM public.named WHERE id = 2`);
      await p.replicate();
      const pts = await auditRows(p, 'pts');
      expect(pts.map((r) => [r.operation, r.row_key, r.changed_columns])).toEqual([
        ['SNAPSHOT', { id: 1 }, null],
        ['UPDATE', { id: 1 }, ['label']],
      ]);
      const fpts = await auditRows(p, 'fpts');
      expect(
        fpts.map((r) => [r.operation, r.row_key, (r.new_row as { x: number } | null)?.x]),
      ).toEqual([
        ['SNAPSHOT', { id: 1 }, 1.5],
        ['SNAPSHOT', { id: 2 }, 3],
        ['UPDATE', { id: 1 }, 2.5],
        ['UPDATE', { id: 2 }, 4],
      ]);
      const named = await auditRows(p, 'named');
      expect(named.map((r) => [r.operation, r.row_key, r.changed_columns])).toEqual([
        ['SNAPSHOT', { id: 1 }, null],
        ['SNAPSHOT', { id: 2 }, null],
        ['UPDATE', { id: 1 }, ['t']],
        ['UPDATE', { id: 2 }, ['t']],
        ['DELETE', { id: 2 }, null],
      ]);
      const report = await verifyAuditTrail({
        config: p.config,
        sourceUrl: p.sourceUrl,
        targetUrl: p.targetUrl,
      });
      expect(report.mismatches).toEqual([]);
      expect(report.ok).toBe(true);
    });
  });
});

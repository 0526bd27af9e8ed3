import type { Kysely } from 'kysely';
import pg from 'pg';
import { createHistory } from '../../src/history';
import { verifyIntegrity } from '../../src/trust/integrity';
import { verifyAuditTrail } from '../../src/verify';
import { auditRows, createPipeline, type Pipeline } from '../engine/helpers';
import { createDmsTarget, type DmsTarget } from '../support/dms-target';
import { cdc, DmsApplier } from '../support/dms-apply';

const DDL = `
  CREATE TABLE public.docs (id int PRIMARY KEY, doc json, f float8, r real, fa float8[], jb jsonb);
  CREATE TABLE public.nk (k numeric PRIMARY KEY, v text);
  CREATE TABLE public.fk (k float8 PRIMARY KEY, v text);
  CREATE TABLE public.odd ("k ey" int PRIMARY KEY, "j""b)" jsonb, "n,u(ll" json, "s" text);`;
const TABLES = [{ table: 'docs' }, { table: 'nk' }, { table: 'fk' }, { table: 'odd' }];

describe('exact values: json text, float -0 and numeric keys', () => {
  describe('through DMS-shaped staging writes', () => {
    let dmsTarget: DmsTarget;
    let target: pg.Client;
    let db: Kysely<unknown>;

    beforeAll(async () => {
      dmsTarget = await createDmsTarget(DDL, { auditSchema: 'audit', tables: TABLES });
      ({ client: target, db } = dmsTarget);
    });

    afterAll(() => dmsTarget?.close());

    it('records json whitespace and duplicate-key changes as their exact text', async () => {
      const dms = new DmsApplier(target, 'audit', 'docs', ['id']);
      const row = { f: null, r: null, fa: null, jb: null };
      await dms.insert(
        { id: '1', doc: '{"a": 1}', ...row },
        cdc('INSERT', '2026-11-22 10:00:00', 1),
      );
      await dms.update({ id: '1' }, { doc: '{"a":  1}' }, cdc('UPDATE', '2026-11-22 10:00:01', 2));
      await dms.update(
        { id: '1' },
        { doc: '{"a":  1, "a": 2}' },
        cdc('UPDATE', '2026-11-22 10:00:02', 3),
      );
      const versions = await createHistory(db).history('public.docs', [1]);
      expect(versions.map((v) => [v.operation, v.newRow?.doc, v.changedColumns])).toEqual([
        ['INSERT', '{"a": 1}', null],
        ['UPDATE', '{"a":  1}', ['doc']],
        ['UPDATE', '{"a":  1, "a": 2}', ['doc']],
      ]);
    });

    it('records a json value whose only change is whitespace around it', async () => {
      const dms = new DmsApplier(target, 'audit', 'docs', ['id']);
      const row = { f: null, r: null, fa: null, jb: null };
      await dms.insert(
        { id: '6', doc: '{"a": 1}', ...row },
        cdc('INSERT', '2026-11-22 15:00:00', 50),
      );
      await dms.update(
        { id: '6' },
        { doc: ' {"a": 1}\n' },
        cdc('UPDATE', '2026-11-22 15:00:01', 51),
      );
      await dms.update(
        { id: '6' },
        { doc: '\t{"a": 1}' },
        cdc('UPDATE', '2026-11-22 15:00:02', 52),
      );
      const versions = await createHistory(db).history('public.docs', [6]);
      expect(versions.map((v) => [v.operation, v.newRow?.doc, v.changedColumns])).toEqual([
        ['INSERT', '{"a": 1}', null],
        ['UPDATE', ' {"a": 1}\n', ['doc']],
        ['UPDATE', '\t{"a": 1}', ['doc']],
      ]);
    });

    it('records a float changing between 0 and -0, and keeps -0', async () => {
      const dms = new DmsApplier(target, 'audit', 'docs', ['id']);
      await dms.insert(
        { id: '2', doc: null, f: '0', r: '-0', fa: '{0,-0,-0.5}', jb: null },
        cdc('INSERT', '2026-11-22 11:00:00', 10),
      );
      await dms.update({ id: '2' }, { f: '-0' }, cdc('UPDATE', '2026-11-22 11:00:01', 11));
      await dms.update(
        { id: '2' },
        { f: '0', r: '0', fa: '{-0,0,-0.5}' },
        cdc('UPDATE', '2026-11-22 11:00:02', 12),
      );
      const versions = await createHistory(db).history('public.docs', [2]);
      expect(versions.map((v) => [v.operation, v.newRow, v.changedColumns])).toEqual([
        ['INSERT', { id: 2, doc: null, f: 0, r: '-0', fa: [0, '-0', -0.5], jb: null }, null],
        ['UPDATE', { id: 2, doc: null, f: '-0', r: '-0', fa: [0, '-0', -0.5], jb: null }, ['f']],
        [
          'UPDATE',
          { id: 2, doc: null, f: 0, r: 0, fa: ['-0', 0, -0.5], jb: null },
          ['f', 'fa', 'r'],
        ],
      ]);
    });

    it('records the JSON null literal apart from SQL NULL, in json and jsonb', async () => {
      const dms = new DmsApplier(target, 'audit', 'docs', ['id']);
      const row = { f: null, r: null, fa: null };
      await dms.insert(
        { id: '5', doc: null, jb: null, ...row },
        cdc('INSERT', '2026-11-22 13:00:00', 30),
      );
      await dms.update({ id: '5' }, { doc: 'null' }, cdc('UPDATE', '2026-11-22 13:00:01', 31));
      await dms.update({ id: '5' }, { jb: 'null' }, cdc('UPDATE', '2026-11-22 13:00:02', 32));
      await dms.update({ id: '5' }, { jb: null }, cdc('UPDATE', '2026-11-22 13:00:03', 33));
      await dms.update(
        { id: '5' },
        { doc: null, jb: 'null' },
        cdc('UPDATE', '2026-11-22 13:00:04', 34),
      );
      await dms.delete({ id: '5' }, cdc('DELETE', '2026-11-22 13:00:05', 35));
      const { rows } = await target.query(
        `SELECT operation, old_row -> 'doc' AS old_doc, new_row -> 'doc' AS new_doc,
                old_json_nulls, new_json_nulls, changed_columns
           FROM audit.audit_log WHERE source_table = 'docs' AND row_key = '{"id": 5}' ORDER BY id`,
      );
      expect(rows.map((r) => Object.values(r))).toEqual([
        ['INSERT', null, null, null, null, null],
        // A json value is its exact text: the literal is the string "null".
        ['UPDATE', null, 'null', null, null, ['doc']],
        // A jsonb value is JSON null either way: the list names the literal.
        ['UPDATE', 'null', 'null', null, ['jb'], ['jb']],
        ['UPDATE', 'null', 'null', ['jb'], null, ['jb']],
        ['UPDATE', 'null', null, null, ['jb'], ['doc', 'jb']],
        ['DELETE', null, null, ['jb'], null, null],
      ]);
      const chain = await verifyIntegrity({ db, auditSchema: 'audit' });
      expect(chain.ok).toBe(true);
    });

    it('finds the JSON null literal in columns of any name, and not in a text column', async () => {
      const dms = new DmsApplier(target, 'audit', 'odd', ['k ey']);
      await dms.insert(
        { 'k ey': '1', 'j"b)': 'null', 'n,u(ll': 'null', s: 'null' },
        cdc('INSERT', '2026-11-22 14:00:00', 40),
      );
      await dms.update(
        { 'k ey': '1' },
        { 'j"b)': null, 'n,u(ll': ' null', s: null },
        cdc('UPDATE', '2026-11-22 14:00:01', 41),
      );
      const { rows } = await target.query(
        `SELECT operation, new_row, new_json_nulls, changed_columns
           FROM audit.audit_log WHERE source_table = 'odd' ORDER BY id`,
      );
      expect(rows.map((r) => Object.values(r))).toEqual([
        ['INSERT', { 'k ey': 1, 'j"b)': null, 'n,u(ll': 'null', s: 'null' }, ['j"b)'], null],
        // A json value with whitespace around it is its exact text too (json_spaced_texts).
        [
          'UPDATE',
          { 'k ey': 1, 'j"b)': null, 'n,u(ll': ' null', s: null },
          null,
          ['j"b)', 'n,u(ll', 's'],
        ],
      ]);
      // The history API reads the same lists (text[] columns, names quoted when printed).
      const history = createHistory(db);
      const versions = await history.history('public.odd', [1]);
      const lists = (v: (typeof versions)[number]) => [v.newRowJsonNulls, v.changedColumns];
      expect(versions.map(lists)).toEqual([
        [['j"b)'], null],
        [[], ['j"b)', 'n,u(ll', 's']],
      ]);
      const changes = await history.changesBetween(
        'public.odd',
        '2026-11-22T14:00:00Z',
        '2026-11-22T14:00:02Z',
      );
      expect(changes.map(lists)).toEqual(versions.map(lists));
    });

    it('gives a numeric key one history whatever its scale', async () => {
      const dms = new DmsApplier(target, 'audit', 'nk', ['k']);
      await dms.insert({ k: '2', v: 'a' }, cdc('INSERT', '2026-11-22 12:00:00', 20));
      // One transaction: DELETE k=2, INSERT 2.00.
      await dms.delete({ k: '2' }, cdc('DELETE', '2026-11-22 12:00:01', 21));
      await dms.insertRecord({ k: '2.00', v: 'b' }, cdc('INSERT', '2026-11-22 12:00:01', 21));
      await dms.update({ k: '2.00' }, { v: 'c' }, cdc('UPDATE', '2026-11-22 12:00:02', 22));
      const history = createHistory(db);
      for (const key of [['2'], ['2.00'], [2]]) {
        const versions = await history.history('public.nk', key);
        // (The staging row keeps the key DMS first wrote; values are as staging holds them.)
        expect(versions.map((v) => [v.operation, v.key, v.newRow?.v ?? null])).toEqual([
          ['INSERT', { k: '2' }, 'a'],
          ['DELETE', { k: '2' }, null],
          ['INSERT', { k: '2' }, 'b'],
          ['UPDATE', { k: '2' }, 'c'],
        ]);
      }
    });
  });

  describe('through the local engine, with verify', () => {
    let p: Pipeline;
    beforeAll(async () => {
      p = await createPipeline(
        `${DDL}
         INSERT INTO public.docs VALUES (1, '{"a": 1}', 0, 0, '{0}', '{"n": 1.10}');
         INSERT INTO public.nk VALUES (2, 'a'), (3.5, 'x');
         INSERT INTO public.fk VALUES (0, 'zero');`,
        { tables: TABLES },
      );
      await p.replicate(); // initial load
    });
    afterAll(async () => p?.dispose());

    const verify = () =>
      verifyAuditTrail({ config: p.config, sourceUrl: p.sourceUrl, targetUrl: p.targetUrl });

    it('records json text, -0 and numeric key changes, and verifies clean', async () => {
      await p.source(`UPDATE public.docs SET doc = '{"a":1}'`);
      await p.source(`UPDATE public.docs SET doc = '{"a":1,"a":1}'`);
      await p.source(`UPDATE public.docs SET f = '-0', fa = '{-0}'`);
      await p.source(
        `BEGIN; DELETE FROM public.nk WHERE k = 2; INSERT INTO public.nk VALUES (2.00, 'b'); COMMIT`,
      );
      await p.source(`UPDATE public.nk SET v = 'c' WHERE k = 2`);
      await p.source(`UPDATE public.fk SET k = '-0', v = 'minus zero'`);
      await p.replicate();
      const docs = await auditRows(p, 'docs');
      expect(docs.map((r) => [r.operation, r.changed_columns])).toEqual([
        ['SNAPSHOT', null],
        ['UPDATE', ['doc']],
        ['UPDATE', ['doc']],
        ['UPDATE', ['f', 'fa']],
      ]);
      expect((docs[2]!.new_row as { doc: string }).doc).toBe('{"a":1,"a":1}');
      expect(docs[3]!.new_row).toMatchObject({ f: '-0', fa: ['-0'] });
      const nk = await auditRows(p, 'nk');
      expect(nk.map((r) => [r.operation, r.row_key])).toEqual([
        ['SNAPSHOT', { k: 2 }],
        ['SNAPSHOT', { k: 3.5 }],
        ['DELETE', { k: 2 }],
        ['INSERT', { k: 2 }],
        ['UPDATE', { k: 2 }],
      ]);
      const fk = await auditRows(p, 'fk');
      expect(fk.map((r) => [r.operation, r.row_key])).toEqual([
        ['SNAPSHOT', { k: 0 }],
        ['UPDATE', { k: 0 }],
      ]);
      const report = await verify();
      expect(report.mismatches).toEqual([]);
      expect(report.ok).toBe(true);
    });

    it('records the JSON null literal apart from SQL NULL in many-row statements', async () => {
      await p.source(
        `INSERT INTO public.docs (id, doc, jb) VALUES (7, NULL, NULL), (8, 'null', 'null')`,
      );
      await p.source(`UPDATE public.docs SET doc = 'null', jb = 'null' WHERE id IN (7, 8)`);
      await p.source(`UPDATE public.docs SET jb = NULL WHERE id IN (7, 8)`);
      await p.source(`UPDATE public.docs SET doc = NULL WHERE id IN (7, 8)`);
      await p.replicate();
      const { rows } = await p.target(
        `SELECT row_key ->> 'id' AS id, operation, new_row -> 'doc' AS doc, new_json_nulls, changed_columns
           FROM audit.audit_log WHERE source_table = 'docs' AND row_key ->> 'id' IN ('7', '8')
          ORDER BY row_key ->> 'id', change_seq`,
      );
      expect(rows.map((r) => Object.values(r))).toEqual([
        ['7', 'INSERT', null, null, null],
        ['7', 'UPDATE', 'null', ['jb'], ['doc', 'jb']],
        ['7', 'UPDATE', 'null', null, ['jb']],
        ['7', 'UPDATE', null, null, ['doc']],
        ['8', 'INSERT', 'null', ['jb'], null],
        ['8', 'UPDATE', 'null', null, ['jb']],
        ['8', 'UPDATE', null, null, ['doc']],
      ]);
      const report = await verify();
      expect(report.mismatches).toEqual([]);
    });

    it('records whitespace around json text in many-row statements, and verifies clean', async () => {
      await p.source(`INSERT INTO public.docs (id, doc) VALUES (9, '{"b": 2}'), (10, '{"b": 2}')`);
      await p.source(`UPDATE public.docs SET doc = E' {"b": 2}\\n' WHERE id IN (9, 10)`);
      await p.replicate();
      const { rows } = await p.target(
        `SELECT operation, new_row -> 'doc' AS doc, changed_columns
           FROM audit.audit_log WHERE source_table = 'docs' AND row_key ->> 'id' IN ('9', '10')
          ORDER BY change_seq, id`,
      );
      expect(rows.map((r) => Object.values(r))).toEqual([
        ['INSERT', '{"b": 2}', null],
        ['INSERT', '{"b": 2}', null],
        ['UPDATE', ' {"b": 2}\n', ['doc']],
        ['UPDATE', ' {"b": 2}\n', ['doc']],
      ]);
      expect((await verify()).mismatches).toEqual([]);
    });

    it('verify sees a json whitespace-only difference', async () => {
      // The audit log is append-only for everyone: tamper as a superuser would.
      await p.target(
        `ALTER TABLE audit.audit_log DISABLE TRIGGER audit_log_append_only;
         UPDATE audit.audit_log SET new_row = jsonb_set(new_row, '{doc}', '"{\\"a\\": 1}"')
          WHERE id = (SELECT max(id) FROM audit.audit_log WHERE source_table = 'docs');
         ALTER TABLE audit.audit_log ENABLE ALWAYS TRIGGER audit_log_append_only`,
      );
      const report = await verify();
      expect(report.mismatches.map((m) => [m.kind, m.columns])).toEqual([
        ['different', ['doc']],
        ['staging-differs', ['doc']],
      ]);
    });
  });
});

import type pg from 'pg';
import { StagingWriter, type StagingChange } from '../../src/engine/staging-writer';
import type { StagingTable } from '../../src/engine/staging-tables';

/** Records the statements the writer sends, answering every one as fully applied. */
function recordingTarget() {
  const statements: { text: string; rows: number }[] = [];
  const target = {
    async query(config: { text: string; values: unknown[][] }) {
      const rows = config.values[0]?.length ?? 0;
      statements.push({ text: config.text, rows });
      return { rowCount: rows };
    },
  } as unknown as pg.ClientBase;
  return { target, statements };
}

const table = (name: string): StagingTable => ({
  source: { schema: 'public', table: name },
  qualifiedName: `"audit"."${name}_staging"`,
  columns: [
    { name: 'id', type: 'integer' },
    { name: 'qty', type: 'integer' },
  ],
  primaryKey: ['id'],
});
const accounts = table('accounts');
const movements = table('movements');
const headers = {
  commitTimestamp: '2026-11-22 10:00:00',
  changeSeq: '1'.padStart(35, '0'),
  transactionId: '1',
  streamPosition: '0/1',
};
const update = (id: number, qty: number): StagingChange => ({
  kind: 'update',
  table: accounts,
  values: [String(id), String(qty)],
  oldKey: [String(id)],
  headers,
});
const insert = (id: number): StagingChange => ({
  kind: 'insert',
  table: movements,
  values: [String(id), '1'],
  oldKey: null,
  headers,
});

describe('StagingWriter batching', () => {
  it('turns interleaved small transactions into one statement per shape', async () => {
    const { target, statements } = recordingTarget();
    const writer = new StagingWriter(target);
    for (let i = 1; i <= 100; i++) {
      await writer.add(update(i, i));
      await writer.add(insert(i));
    }
    await writer.flush();
    expect(statements.map((s) => [s.text.split(' ')[0], s.rows])).toEqual([
      ['UPDATE', 100],
      ['INSERT', 100],
    ]);
    expect(writer.written).toBe(200);
  });

  it('writes everything queued before a second change to the same key, keeping per-key order', async () => {
    const { target, statements } = recordingTarget();
    const writer = new StagingWriter(target);
    await writer.add(update(1, 10));
    await writer.add(insert(7));
    await writer.add(update(1, 20)); // same key again
    await writer.flush();
    expect(statements.map((s) => [s.text.split(' ')[0], s.rows])).toEqual([
      ['UPDATE', 1],
      ['INSERT', 1],
      ['UPDATE', 1],
    ]);
  });

  it('writes a key change alone', async () => {
    const { target, statements } = recordingTarget();
    const writer = new StagingWriter(target);
    await writer.add(update(1, 10));
    await writer.add({ ...update(3, 5), oldKey: ['2'] });
    await writer.add(update(4, 10));
    await writer.flush();
    const updates = statements.filter((s) => s.text.startsWith('UPDATE'));
    expect(updates.map((s) => s.rows)).toEqual([1, 1, 1]);
  });
});

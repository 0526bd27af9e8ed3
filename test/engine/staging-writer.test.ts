import type pg from 'pg';
import { readStagingTables } from '../../src/engine/staging-tables';
import { connectText, ENGINE_TARGET_CONNECTION } from '../../src/engine/text-client';
import { StagingWriter, type StagingChange } from '../../src/engine/staging-writer';
import type { StagingTable } from '../../src/engine/staging-tables';
import { createPipeline, type Pipeline } from './helpers';

/** Records the statements the writer sends, answering every one as fully applied. */
function recordingTarget() {
  const statements: { text: string; rows: number; values: unknown[][] }[] = [];
  const target = {
    async query(config: { text: string; values: unknown[][] }) {
      const rows = config.values[0]?.length ?? 0;
      statements.push({ text: config.text, rows, values: config.values });
      return { rowCount: rows };
    },
  } as unknown as pg.ClientBase;
  return { target, statements };
}

/** A target that holds every answer until the test releases it; `fail` picks failures by statement. */
function heldTarget(fail: (index: number) => Error | null = () => null) {
  const statements: { rows: number; release(): void }[] = [];
  const target = {
    query(config: { text: string; values: unknown[][] }) {
      const rows = config.values[0]?.length ?? 0;
      const index = statements.length;
      return new Promise((resolve, reject) => {
        statements.push({
          rows,
          release: () => {
            const error = fail(index);
            if (error) reject(error);
            else resolve({ rowCount: rows });
          },
        });
      });
    },
  } as unknown as pg.ClientBase;
  const releaseAll = () => statements.forEach((statement) => statement.release());
  return { target, statements, releaseAll };
}

/** Lets every callback already due run (promise jobs and I/O), without waiting for time. */
const turn = () => new Promise((resolve) => setImmediate(resolve));

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
const tellers = table('tellers');
const movements = table('movements');
const headers = {
  commitTimestamp: '2026-11-22 10:00:00',
  changeSeq: '1'.padStart(35, '0'),
  transactionId: '1',
  streamPosition: '0/1',
};
const update = (id: number, qty: number, of = accounts): StagingChange => ({
  kind: 'update',
  table: of,
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

  it('sends only the batch that holds a key seen again, so the other batches keep growing', async () => {
    const { target, statements } = recordingTarget();
    const writer = new StagingWriter(target);
    // The bench's workload: a new account each time, one of 10 tellers, a new movement.
    for (let i = 0; i < 100; i++) {
      await writer.add(update(i, i));
      await writer.add(update(i % 10, i, tellers));
      await writer.add(insert(i));
    }
    await writer.flush();
    const rowsOf = (name: string) =>
      statements.filter((s) => s.text.includes(`"${name}_staging"`)).map((s) => s.rows);
    expect(rowsOf('accounts')).toEqual([100]);
    expect(rowsOf('movements')).toEqual([100]);
    expect(rowsOf('tellers')).toEqual(Array(10).fill(10));
    // Per key, the versions reach staging in their order: (id, qty) pairs in sent order.
    const sent = statements
      .filter((s) => s.text.includes('"tellers_staging"'))
      .flatMap((s) =>
        (s.values[0] as string[]).map((id, row) => [id, (s.values[1] as string[])[row]]),
      );
    for (let id = 0; id < 10; id++) {
      const versions = sent.filter(([key]) => key === String(id)).map(([, qty]) => Number(qty));
      expect(versions).toEqual(Array.from({ length: 10 }, (_, n) => id + 10 * n));
    }
  });

  it('sends the next statement while the target still runs the one before', async () => {
    const { target, statements, releaseAll } = heldTarget();
    const writer = new StagingWriter(target, { batchSize: 2 });
    const adding = (async () => {
      for (let i = 1; i <= 4; i++) await writer.add(insert(i));
    })();
    await turn();
    expect(statements.map((s) => s.rows)).toEqual([2, 2]); // neither answered yet
    releaseAll();
    await adding;
    await writer.flush();
    expect(writer.written).toBe(4);
  });

  it('waits for answers once too many rows are unanswered, so memory stays bounded', async () => {
    const { target, statements, releaseAll } = heldTarget();
    const writer = new StagingWriter(target, { batchSize: 2, maxRowsInFlight: 4 });
    let added = 0;
    const adding = (async () => {
      for (let i = 1; i <= 10; i++) {
        await writer.add(insert(i));
        added++;
      }
    })();
    await turn();
    // The third statement put 6 rows in flight: its add waits for the first answer.
    expect(statements.map((s) => s.rows)).toEqual([2, 2, 2]);
    expect(added).toBe(5);
    while (added < 10) {
      releaseAll();
      await turn();
    }
    await adding;
    const flushed = writer.flush();
    releaseAll();
    await flushed;
    expect(writer.written).toBe(10);
  });

  it('reports the first failed statement, not the refusals of the aborted transaction after it', async () => {
    const { target, releaseAll } = heldTarget((index) =>
      index === 0
        ? new Error('duplicate key value violates unique constraint')
        : new Error(
            'current transaction is aborted, commands ignored until end of transaction block',
          ),
    );
    const writer = new StagingWriter(target, { batchSize: 1, maxRowsInFlight: 10 });
    for (let i = 1; i <= 3; i++) await writer.add(insert(i));
    const flushed = writer.flush();
    releaseAll();
    await expect(flushed).rejects.toThrow('duplicate key value');
    expect(writer.written).toBe(0);
  });

  it('forgets statements in flight when discarded (rolled back): their answers count for nothing', async () => {
    const { target, releaseAll } = heldTarget(() => new Error('canceled by the rollback'));
    const writer = new StagingWriter(target, { batchSize: 1, maxRowsInFlight: 10 });
    await writer.add(insert(1));
    writer.discard();
    releaseAll();
    await turn();
    await writer.flush();
    expect(writer.written).toBe(0);
  });
});

describe('StagingWriter on a real target', () => {
  let p: Pipeline;
  beforeAll(async () => {
    p = await createPipeline('CREATE TABLE items (id int PRIMARY KEY, qty int)', {
      tables: [{ table: 'items' }],
    });
  }, 120_000);
  afterAll(async () => p?.dispose());

  it('throws the first failed statement of the ones sent ahead, and the transaction commits nothing', async () => {
    const client = await connectText(
      p.targetUrl,
      'staging-writer-test',
      'target',
      {},
      ENGINE_TARGET_CONNECTION,
    );
    try {
      const [items] = await readStagingTables(client, p.config);
      const load = (id: number): StagingChange => ({
        kind: 'load',
        table: items!,
        values: [String(id), '1'],
        oldKey: null,
        headers: {
          commitTimestamp: '2026-11-22 10:00:00',
          changeSeq: '',
          transactionId: '',
          streamPosition: '',
        },
      });
      const writer = new StagingWriter(client, { batchSize: 1, maxRowsInFlight: 10 });
      await client.query('BEGIN');
      // Three statements sent back to back: the second repeats a key (a load has no
      // ON CONFLICT), so the server refuses the third as part of an aborted transaction.
      const apply = async () => {
        for (const id of [1, 1, 2]) await writer.add(load(id));
        await writer.flush();
      };
      await expect(apply()).rejects.toMatchObject({ code: '23505' });
      await client.query('ROLLBACK');
      const { rows } = await client.query('SELECT count(*)::int AS n FROM audit.items_staging');
      expect(rows[0].n).toBe('0'); // a text client
    } finally {
      await client.end();
    }
  }, 60_000);
});

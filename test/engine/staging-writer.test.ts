import type pg from 'pg';
import { readStagingTables } from '../../src/engine/staging-tables';
import { connectText, ENGINE_TARGET_CONNECTION } from '../../src/engine/text-client';
import { keyIdentity, numericKeyText, type KeyTextEquality } from '../../src/engine/key-identity';
import { StagingWriter, type StagingChange } from '../../src/engine/staging-writer';
import type { StagingTable } from '../../src/engine/staging-tables';
import { createTestDatabase } from '../support/databases';
import { auditRows, createPipeline, type Pipeline } from './helpers';

/** An answer to node-postgres's `query(config, callback)`: an error, or a result. */
type Answered = (error: Error | undefined, result?: { rowCount: number }) => void;

/** Records the statements the writer sends, answering every one as fully applied. */
function recordingTarget() {
  const statements: { text: string; rows: number; values: unknown[][] }[] = [];
  const target = {
    query(config: { text: string; values: unknown[][] }, answered: Answered) {
      const rows = config.values[0]?.length ?? 0;
      statements.push({ text: config.text, rows, values: config.values });
      process.nextTick(() => answered(undefined, { rowCount: rows }));
    },
  } as unknown as pg.ClientBase;
  return { target, statements };
}

/** A target that holds every answer until the test releases it; `fail` picks failures by statement. */
function heldTarget(fail: (index: number) => Error | null = () => null) {
  const statements: { rows: number; release(): void }[] = [];
  const target = {
    query(config: { text: string; values: unknown[][] }, answered: Answered) {
      const rows = config.values[0]?.length ?? 0;
      const index = statements.length;
      let released = false;
      statements.push({
        rows,
        release: () => {
          if (released) return;
          released = true;
          const error = fail(index);
          if (error) answered(error);
          else answered(undefined, { rowCount: rows });
        },
      });
    },
  } as unknown as pg.ClientBase;
  const releaseAll = () => statements.forEach((statement) => statement.release());
  return { target, statements, releaseAll };
}

/** Lets every callback already due run (promise jobs and I/O), without waiting for time. */
const turn = () => new Promise((resolve) => setImmediate(resolve));

/**
 * Adds `changes` one after another in the background, each once the writer lets the
 * previous add return; `added()` counts the adds that returned so far.
 */
function addInTurn(
  writer: StagingWriter,
  changes: readonly StagingChange[],
): { adding: Promise<void>; added: () => number } {
  let added = 0;
  const adding = (async () => {
    for (const change of changes) {
      await writer.add(change);
      added++;
    }
  })();
  return { adding, added: () => added };
}

/**
 * Answers every statement sent until `adding` (a loop of adds held back by the writer)
 * is done, then flushes the writer, answering what the flush sends.
 */
async function answerUntilDone(
  adding: Promise<void>,
  releaseAll: () => void,
  writer: StagingWriter,
): Promise<void> {
  let done = false;
  const finish = () => (done = true);
  void adding.then(finish, finish);
  while (!done) {
    releaseAll();
    await turn();
  }
  await adding;
  const flushed = writer.flush();
  releaseAll();
  await flushed;
}

const table = (name: string): StagingTable => ({
  source: { schema: 'public', table: name },
  qualifiedName: `"audit"."${name}_staging"`,
  columns: [
    { name: 'id', type: 'integer' },
    { name: 'qty', type: 'integer' },
  ],
  primaryKey: ['id'],
  keyEquality: ['exact'],
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

  it('puts a key seen again in a later batch of its shape instead of sending the batch that holds it', async () => {
    const { target, statements } = recordingTarget();
    const writer = new StagingWriter(target);
    // Sending the batch at each repeat made three statements of this: [1 2] [1 3 2 4] [3 5 4].
    const ids = [1, 2, 1, 3, 2, 4, 3, 5, 4];
    for (const [n, id] of ids.entries()) await writer.add(update(id, n, tellers));
    await writer.flush();
    const sent = statements.map((s) =>
      (s.values[0] as string[]).map((id, row) => `${id}:${(s.values[1] as string[])[row]}`),
    );
    expect(sent).toEqual([
      ['1:0', '2:1', '3:3', '4:5', '5:7'],
      ['1:2', '2:4', '3:6', '4:8'],
    ]);
  });

  it('sends a batch only after the older batches that share a key with it', async () => {
    const { target, statements } = recordingTarget();
    const writer = new StagingWriter(target, { batchSize: 3 });
    const remove = (id: number): StagingChange => ({
      kind: 'delete',
      table: tellers,
      values: [],
      oldKey: [String(id)],
      headers,
    });
    await writer.add(update(1, 0, tellers)); // updates, batch A
    await writer.add(update(2, 1, tellers)); // A
    await writer.add(update(1, 2, tellers)); // updates, batch B (after A: key 1)
    await writer.add(remove(2)); // deletes, batch D (after A: key 2)
    await writer.add(remove(5));
    await writer.add(remove(6)); // D is full: A goes first, then D
    await writer.flush();
    expect(statements.map((s) => s.rows)).toEqual([2, 3, 1]);
    expect(statements[0]!.values[0]).toEqual(['1', '2']);
    expect(statements[1]!.values.at(-1)).toEqual(['2', '5', '6']);
    expect(statements[2]!.values[0]).toEqual(['1']);
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
    const { adding, added } = addInTurn(
      writer,
      Array.from({ length: 10 }, (_, n) => insert(n + 1)),
    );
    await turn();
    // The third statement put 6 rows in flight: its add waits for the first answer.
    expect(statements.map((s) => s.rows)).toEqual([2, 2, 2]);
    expect(added()).toBe(5);
    await answerUntilDone(adding, releaseAll, writer);
    expect(writer.written).toBe(10);
  });

  it('keeps the rows it holds unsent bounded however many shapes are open', async () => {
    const { target, statements } = recordingTarget();
    // 4 open batches of 10 rows at most, whatever the number of tables.
    const writer = new StagingWriter(target, { batchSize: 10 });
    const tables = Array.from({ length: 20 }, (_, n) => table(`t${n}`));
    let added = 0;
    const sentRows = () => statements.reduce((sum, s) => sum + s.rows, 0);
    for (let i = 0; i < 5; i++)
      for (const of of tables) {
        await writer.add(update(i, i, of));
        added++;
        expect(added - sentRows()).toBeLessThanOrEqual(40);
      }
    await writer.flush();
    expect(sentRows()).toBe(100);
    // Each key's versions still reach staging in their order.
    for (const of of tables) {
      const ids = statements
        .filter((s) => s.text.includes(`"${of.source.table}_staging"`))
        .flatMap((s) => s.values[0] as string[]);
      expect(ids).toEqual(['0', '1', '2', '3', '4']);
    }
  });

  it('waits for answers once the unanswered and unsent value text is too long, however few rows', async () => {
    const { target, statements, releaseAll } = heldTarget();
    const writer = new StagingWriter(target, { maxCharsHeld: 2500 });
    const wide = (id: number): StagingChange => ({
      ...insert(id),
      values: [String(id), 'x'.repeat(1000)],
    });
    const { adding, added } = addInTurn(
      writer,
      Array.from({ length: 6 }, (_, n) => wide(n + 1)),
    );
    await turn();
    // The third row held over 2,500 characters: its batch was sent and its add waits.
    expect(statements.map((s) => s.rows)).toEqual([3]);
    expect(added()).toBe(2);
    await answerUntilDone(adding, releaseAll, writer);
    expect(writer.written).toBe(6);
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

/** A table keyed by `key` of the given equalities (null: a key type the writer does not know). */
const keyedBy = (
  name: string,
  key: readonly string[],
  keyEquality: StagingTable['keyEquality'],
): StagingTable => ({
  source: { schema: 'public', table: name },
  qualifiedName: `"audit"."${name}_staging"`,
  columns: [...key.map((column) => ({ name: column, type: 'text' })), { name: 'v', type: 'text' }],
  primaryKey: key,
  keyEquality,
});
const change = (kind: 'insert' | 'delete', of: StagingTable, ...key: string[]): StagingChange => ({
  kind,
  table: of,
  values: kind === 'delete' ? [] : [...key, 'v'],
  oldKey: kind === 'delete' ? key : null,
  headers,
});
/** Each statement as its verb and the keys it carries (the key is the last parameter of a DELETE). */
const sentKeys = (statements: ReturnType<typeof recordingTarget>['statements'], width = 1) =>
  statements.map((s) => {
    const verb = s.text.split(' ')[0]!;
    const columns = verb === 'INSERT' ? s.values.slice(0, width) : s.values.slice(-width);
    const keys = (columns[0] as string[]).map((_, row) =>
      columns.map((column) => (column as string[])[row]).join(','),
    );
    return `${verb} ${keys.join(' ')}`;
  });

describe('StagingWriter: keys equal under the key type, spelled differently', () => {
  // #14: 46888e1 told keys apart by their text, so DELETE 2 and INSERT 2.00 of one
  // numeric key went in batches that did not know of each other; the INSERT's batch,
  // opened earlier by another key, was sent first, and the DELETE then flagged the new
  // row deleted: a version lost.
  it.each([
    ['numeric', ['numeric'], ['2'], ['2.00']],
    ['numeric, negative zero', ['numeric'], ['0.00'], ['-0']],
    ['float8', ['float'], ['-0'], ['0']],
    ['(int4, numeric)', ['exact', 'numeric'], ['1', '2.5'], ['1', '2.50']],
  ] as const)(
    '%s: a key deleted and inserted again keeps that order',
    async (_, equality, gone, back) => {
      const of = keyedBy('prices', gone.length === 1 ? ['k'] : ['a', 'k'], equality);
      const { target, statements } = recordingTarget();
      const writer = new StagingWriter(target);
      const other = gone.length === 1 ? ['7'] : ['7', '7'];
      await writer.add(change('insert', of, ...other)); // the INSERT batch opens first
      await writer.add(change('delete', of, ...gone));
      await writer.add(change('insert', of, ...back));
      await writer.flush();
      expect(sentKeys(statements, gone.length)).toEqual([
        `UPDATE ${gone.join(',')}`, // the DELETE flags its row
        `INSERT ${other.join(',')} ${back.join(',')}`,
      ]);
    },
  );

  it('keeps keys that differ under the key type in one batch', async () => {
    const of = keyedBy('prices', ['a', 'k'], ['exact', 'numeric']);
    const { target, statements } = recordingTarget();
    const writer = new StagingWriter(target);
    for (const key of [
      ['1', '2'],
      ['2', '2'],
      ['1', '20'],
      ['1', '0.2'],
      ['1', '-2'],
    ])
      await writer.add(change('delete', of, ...key));
    await writer.flush();
    expect(sentKeys(statements, 2)).toEqual(['UPDATE 1,2 2,2 1,20 1,0.2 1,-2']);
  });

  it('applies each change of a table whose key type it does not know alone, after what was queued', async () => {
    const unknown = keyedBy('spans', ['k'], null);
    const { target, statements } = recordingTarget();
    const writer = new StagingWriter(target);
    await writer.add(update(1, 10));
    await writer.add(change('delete', unknown, '1 day'));
    await writer.add(change('insert', unknown, '24:00:00'));
    await writer.add(update(2, 10));
    await writer.flush();
    expect(statements.map((s) => [s.text.split(' ')[0], s.rows])).toEqual([
      ['UPDATE', 1],
      ['UPDATE', 1],
      ['INSERT', 1],
      ['UPDATE', 1],
    ]);
  });
});

describe('numericKeyText', () => {
  it.each([
    ['2', '2'],
    ['2.00', '2'],
    ['2.50', '2.5'],
    ['20', '20'],
    ['100.000', '100'],
    ['0.000', '0'],
    ['-0.00', '0'],
    ['-0', '0'],
    ['-1.10', '-1.1'],
    ['0.010', '0.01'],
    ['NaN', 'NaN'],
    ['-Infinity', '-Infinity'],
  ])('%s -> %s', (text, normalised) => {
    expect(numericKeyText(text)).toBe(normalised);
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

describe('Key identity on a real server: one identity exactly when `=` says equal', () => {
  let client: pg.Client;
  let major = 0;
  beforeAll(async () => {
    const url = await createTestDatabase('keyidentity');
    client = await connectText(url, 'key-identity-test'); // pinned output settings
    const { rows } = await client.query(`SELECT current_setting('server_version_num') AS v`);
    major = Math.floor(Number(rows[0].v) / 10000);
  }, 60_000);
  afterAll(async () => client?.end());

  // Spellings of each type, equal and not; the identity sees the texts PostgreSQL
  // prints for them under the engine's pinned settings, as pgoutput sends them.
  const cases: [string, KeyTextEquality, string[]][] = [
    [
      'numeric',
      'numeric',
      [
        '2',
        '2.0',
        '2.00',
        '02',
        '20',
        '0.2',
        '-2',
        '0',
        '-0',
        '0.000',
        '-0.00',
        '1e2',
        '100',
        'NaN',
      ],
    ],
    ['numeric(12,4)', 'numeric', ['2', '2.5', '2.50', '0', '-0']],
    [
      'float8',
      'float',
      ['0', '-0', '0.0', '-0.0', '1e2', '100', '0.1', '1e-1', 'NaN', '-NaN', 'Infinity'],
    ],
    ['float4', 'float', ['0', '-0', '1.5', '1.50', '3.4e38', 'NaN']],
    ['timetz', 'exact', ['12:00+01', '11:00+00', '12:00:00+01', '12:00+01:00']],
    ['timestamptz', 'exact', ['2026-01-01 12:00+01', '2026-01-01 11:00Z', '2026-01-01 12:00+00']],
    ['inet', 'exact', ['10.0.0.1', '10.0.0.1/32', '10.0.0.1/24', '::ffff:10.0.0.1']],
    ['money', 'exact', ['1', '1.00', '$1', '1.001', '-0']],
    ['character(3)', 'exact', ['a', 'a ', 'a  ', 'A']],
    ['bytea', 'exact', ['\\x41', 'A', '\\101']],
    [
      'uuid',
      'exact',
      [
        'A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11',
        'a0eebc999c0b4ef8bb6d6bb9bd380a11',
        '{a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11}',
      ],
    ],
  ];

  it.each(cases)('%s', async (type, equality, spellings) => {
    const usable = major >= 14 ? spellings : spellings.filter((s) => !/Infinity/.test(s));
    const { rows } = await client.query<{
      a: string;
      b: string;
      at: string;
      bt: string;
      eq: string;
    }>(
      `SELECT a, b, a::${type}::text AS at, b::${type}::text AS bt, (a::${type} = b::${type})::text AS eq
         FROM unnest($1::text[]) AS a, unnest($1::text[]) AS b`,
      [usable],
    );
    const identity = keyIdentity([equality]);
    const wrong = rows.filter((r) => (identity([r.at]) === identity([r.bt])) !== (r.eq === 'true'));
    expect(wrong.map((r) => `${r.a} (${r.at}) vs ${r.b} (${r.bt}): = says ${r.eq}`)).toEqual([]);
  });
});

describe('StagingWriter: respelled keys on a real target, through the engine', () => {
  const DDL = `
    CREATE DOMAIN price AS numeric CHECK (VALUE >= 0);
    CREATE TABLE nk (k numeric PRIMARY KEY, v text);
    CREATE TABLE fk (k float8 PRIMARY KEY, v text);
    CREATE TABLE dk (k price PRIMARY KEY, v text);
    CREATE TABLE mk (a int, k numeric, v text, PRIMARY KEY (a, k));
    CREATE TABLE ik (k int PRIMARY KEY, v text);`;
  const TABLES = ['nk', 'fk', 'dk', 'mk', 'ik'];
  let p: Pipeline;
  beforeAll(async () => {
    p = await createPipeline(DDL, { tables: TABLES.map((table) => ({ table })) });
    await p.replicate();
  }, 120_000);
  afterAll(async () => p?.dispose());

  it('reads how each staging key tells values apart from the target catalog', async () => {
    const client = await connectText(p.targetUrl, 'staging-writer-test');
    try {
      const tables = await readStagingTables(client, p.config);
      expect(tables.map((t) => [t.source.table, t.keyEquality])).toEqual([
        ['nk', ['numeric']],
        ['fk', ['float']],
        ['dk', ['numeric']],
        ['mk', ['exact', 'numeric']],
        ['ik', ['exact']],
      ]);
    } finally {
      await client.end();
    }
  }, 60_000);

  it('a key deleted and inserted again under another spelling is one history, in order', async () => {
    const respelled: [string, string, string, string][] = [
      ['nk', '2', '2.00', '7'],
      ['fk', "'-0'", "'0'", '7'],
      ['dk', '2', '2.0', '7'],
      ['mk', '1, 2.5', '1, 2.50', '7, 7'],
    ];
    for (const [table, gone, , other] of respelled)
      await p.source(`INSERT INTO ${table} VALUES (${gone}, 'a'), (${other}, 'x')`);
    await p.replicate();
    // Applied by one replicate: one target transaction, one writer's batches.
    for (const [table, gone, back, other] of respelled) {
      // Another key's INSERT opens the table's INSERT batch before the DELETE's batch.
      await p.source(`INSERT INTO ${table} VALUES (${other.replaceAll('7', '8')}, 'y')`);
      const keyIs = (key: string) => `(${table === 'mk' ? 'a, k' : 'k'}) = (${key})`;
      await p.source(
        `BEGIN; DELETE FROM ${table} WHERE ${keyIs(gone)}; INSERT INTO ${table} VALUES (${back}, 'b'); COMMIT`,
      );
      await p.source(`UPDATE ${table} SET v = 'c' WHERE ${keyIs(back)}`);
    }
    await p.replicate();
    for (const [table] of respelled) {
      const rows = await auditRows(p, table);
      const versions = rows
        .filter((row) => row.operation !== 'SNAPSHOT')
        .map((row) => [row.operation, (row.new_row as { v?: string } | null)?.v ?? null]);
      expect({ table, versions }).toEqual({
        table,
        versions: [
          ['INSERT', 'a'],
          ['INSERT', 'x'],
          ['INSERT', 'y'],
          ['DELETE', null],
          ['INSERT', 'b'],
          ['UPDATE', 'c'],
        ],
      });
      const { rows: staging } = await p.target(
        `SELECT ar_h_indicator AS flag, v FROM audit.${table}_staging ORDER BY v`,
      );
      expect({ table, staging }).toEqual({
        table,
        staging: [
          { flag: 'U', v: 'c' },
          { flag: 'I', v: 'x' },
          { flag: 'I', v: 'y' },
        ],
      });
    }
    const report = await p.verify();
    expect(report.mismatches).toEqual([]);
  }, 120_000);
});

import type pg from 'pg';
import { readStagingTables } from '../../src/engine/staging-tables';
import { StagingWriter, type StagingChange } from '../../src/engine/staging-writer';
import { connectText, ENGINE_TARGET_CONNECTION } from '../../src/engine/text-client';
import { createPipeline, type Pipeline } from './helpers';
import { youngAfterMinorGc } from '../support/young-generation';

// The engine's statements carry a batch's rows as parameter arrays. Sent through
// node-postgres's promise, each statement (its query object, parameter values and all)
// stayed reachable to the young-generation collector until the next full collection:
// every scavenge copied the batches of all statements since then (BENCHMARKS 2).
describe("the engine's staging writer", () => {
  let p: Pipeline;
  let client: pg.Client;
  beforeAll(async () => {
    p = await createPipeline('CREATE TABLE items (id int PRIMARY KEY, note text)', {
      tables: [{ table: 'items' }],
    });
    client = await connectText(
      p.targetUrl,
      'young-statements-test',
      'target',
      {},
      ENGINE_TARGET_CONNECTION,
    );
  }, 120_000);
  afterAll(async () => {
    await client?.end();
    await p?.dispose();
  });

  it('leaves no statement it has sent and had answered to the young-generation collector', async () => {
    const [items] = await readStagingTables(client, p.config);
    let nextId = 1;
    const load = (): StagingChange => ({
      kind: 'load',
      table: items!,
      values: [String(nextId++), 'x'.repeat(300)],
      oldKey: null,
      headers: {
        commitTimestamp: '2026-11-22 10:00:00',
        changeSeq: '',
        transactionId: '',
        streamPosition: '',
      },
    });
    const writer = new StagingWriter(client, { batchSize: 100 });
    // One statement of 100 rows (about 40 kB of parameters) per call.
    const writeBatch = async () => {
      for (let row = 0; row < 100; row++) await writer.add(load());
      await writer.flush();
    };
    await client.query('BEGIN');
    try {
      await writeBatch();
      // Survivors so far promoted: the young generation starts empty.
      youngAfterMinorGc();
      youngAfterMinorGc();
      // Fewer statements than a scavenge's worth of garbage: the test's own collection is
      // the first to look at them.
      for (let i = 0; i < 20; i++) await writeBatch();
      expect(writer.written).toBe(2100);
      // Through the promise about 1.2 MB (60 kB a statement); with a callback 0.36 MB.
      expect(youngAfterMinorGc()).toBeLessThan(600_000);
    } finally {
      await client.query('ROLLBACK');
    }
  }, 60_000);
});

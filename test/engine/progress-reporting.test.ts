import type { ProgressReporter } from '../../src';
import { verifyAuditTrail } from '../../src/verify';
import { verifyIntegrity } from '../../src/trust/integrity';
import { createPipeline, type Pipeline } from './helpers';

/** A reporter that records each task: its label, its total, what was advanced, and whether it ended. */
function recorder() {
  const tasks: { label: string; total: number | undefined; done: number; ended: boolean }[] = [];
  const progress: ProgressReporter = {
    start(label, total) {
      const task = { label, total, done: 0, ended: false };
      tasks.push(task);
      return {
        advance: (count) => void (task.done += count),
        done: () => void (task.ended = true),
      };
    },
  };
  return { progress, tasks };
}

// The library counts what the CLI draws as bars: every task ends, and what it advanced
// adds up to its total (an oracle independent of the bars: the tables' own counts).
describe('progress reported by the library', () => {
  let pipeline: Pipeline;

  beforeAll(async () => {
    pipeline = await createPipeline(
      `CREATE TABLE items (id int PRIMARY KEY, v text);
       INSERT INTO items SELECT g, 'v' || g FROM generate_series(1, 2500) g`,
      { tables: [{ schema: 'public', table: 'items' }] },
    );
  });
  afterAll(() => pipeline.dispose());

  it('initial load: one task per table, advanced to its row count; large transactions without a total', async () => {
    const load = recorder();
    await pipeline.replicate({ progress: load.progress });
    expect(load.tasks).toEqual([
      { label: 'initial load public.items', total: 2500, done: 2500, ended: true },
    ]);

    await pipeline.source(`INSERT INTO items SELECT g, 'big' FROM generate_series(2501, 12600) g`);
    await pipeline.source(`UPDATE items SET v = 'small' WHERE id = 1`);
    const stream = recorder();
    await pipeline.replicate({ progress: stream.progress });
    // 10,100 inserts in one transaction: reported from the 10,000th change on; the
    // one-row update is not.
    expect(stream.tasks).toEqual([
      {
        label: expect.stringMatching(/^applying transaction \d+$/),
        total: undefined,
        done: 10_100,
        ended: true,
      },
    ]);
  });

  it('verify: each table and its staging table, advanced to their counts', async () => {
    const { progress, tasks } = recorder();
    const report = await verifyAuditTrail({ ...pipeline, progress });
    expect(report.ok).toBe(true);
    // No deletes: staging holds one row per source row.
    expect(tasks).toEqual([
      { label: 'verify public.items', total: 12_600, done: 12_600, ended: true },
      { label: 'verify public.items staging', total: 12_600, done: 12_600, ended: true },
    ]);
  });

  it('verify --integrity: one task over the audit rows', async () => {
    const { progress, tasks } = recorder();
    const report = await verifyIntegrity({
      targetUrl: pipeline.targetUrl,
      auditSchema: 'audit',
      progress,
    });
    expect(report.ok).toBe(true);
    expect(tasks).toEqual([
      { label: 'verify --integrity audit', total: report.rows, done: report.rows, ended: true },
    ]);
    expect(report.rows).toBe(2500 + 10_100 + 1);
  });
});

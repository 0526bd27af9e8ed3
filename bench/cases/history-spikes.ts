/**
 * Where an `asOf` call's client CPU spikes come from (#14), not a bench case: the history
 * case's log and loop (first page, asOf, transaction per sample), with each asOf call's
 * CPU split by thread: the main thread's own run time (`/proc/self/task/<pid>/schedstat`)
 * against the whole process's (`process.cpuUsage`, every thread: V8's background
 * compiler and concurrent GC markers and sweepers too), and the GC pauses inside the call.
 *
 * Usage: `npx tsx bench/cases/history-spikes.ts [--rows N] [--queries Q] [--passes P]`
 */
import { readFileSync } from 'node:fs';
import { PerformanceObserver } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { createHistory } from '../../src/history';
import { createKysely } from '../../src/postgres/connect';
import { sampleInputs } from './history';
import { withHistoryLog } from './history-kits';

const mainThread = `/proc/self/task/${process.pid}/schedstat`;
const mainNs = (): number => Number(readFileSync(mainThread, 'utf8').split(' ')[0]);

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      rows: { type: 'string', default: '1000000' },
      queries: { type: 'string', default: '300' },
      passes: { type: 'string', default: '3' },
    },
  });
  let gcMs = 0;
  const observer = new PerformanceObserver((list) => {
    for (const entry of list.getEntries()) gcMs += entry.duration;
  });
  observer.observe({ entryTypes: ['gc'] });
  try {
    await withHistoryLog(Number(values.rows), async ({ targetUrl }) => {
      const samples = await sampleInputs(targetUrl, Number(values.queries));
      const db = createKysely<unknown>(targetUrl, { max: 1 });
      const history = createHistory(db);
      for (const sample of samples.slice(0, 30)) {
        await history.history('public.items', { id: sample.key }, {});
        await history.asOf('public.items', { id: sample.key }, sample.instant);
        await history.transaction(sample.transactionId);
      }
      const calls: { process: number; main: number; gc: number }[] = [];
      for (let pass = 0; pass < Number(values.passes); pass++) {
        for (const sample of samples) {
          await history.history('public.items', { id: sample.key }, {});
          // The GC entries of the page's collections arrive on a later tick.
          await new Promise((resolve) => setImmediate(resolve));
          const gcBefore = gcMs;
          const processBefore = process.cpuUsage();
          const mainBefore = mainNs();
          await history.asOf('public.items', { id: sample.key }, sample.instant);
          const main = (mainNs() - mainBefore) / 1e6;
          const used = process.cpuUsage(processBefore);
          await new Promise((resolve) => setImmediate(resolve));
          calls.push({ process: (used.user + used.system) / 1000, main, gc: gcMs - gcBefore });
          await history.transaction(sample.transactionId);
        }
      }
      const sorted = [...calls].sort((a, b) => b.process - a.process);
      const mean = (list: typeof calls, field: keyof (typeof calls)[number]) =>
        (list.reduce((sum, call) => sum + call[field], 0) / list.length).toFixed(3);
      const top = sorted.slice(0, Math.max(1, Math.floor(calls.length / 20)));
      console.log(`${calls.length} asOf calls; ms per call, process CPU / main thread CPU / GC`);
      console.log(`all: ${mean(calls, 'process')} / ${mean(calls, 'main')} / ${mean(calls, 'gc')}`);
      console.log(
        `slowest 5% by process CPU: ${mean(top, 'process')} / ${mean(top, 'main')} / ${mean(top, 'gc')}`,
      );
      for (const call of sorted.slice(0, 12))
        console.log(
          `  ${call.process.toFixed(2)} / ${call.main.toFixed(2)} / ${call.gc.toFixed(2)}`,
        );
      await db.destroy();
    });
  } finally {
    observer.disconnect();
  }
}

void main().catch((error: unknown) => {
  console.error(error);
  process.exitCode = 1;
});

/**
 * The GC pauses inside the history case's timed calls (#14), not a bench case: the case's
 * audit log (`generateAuditRows`, context on) and its loop (first page, asOf, transaction
 * per sample, after 30 warm-up samples), run by each checkout in a process of its own
 * (importing its built `dist/`), the checkouts interleaved round by round. Per run: the V8
 * scavenges and full collections inside the loop and their pauses (`PerformanceObserver`,
 * entry type gc), the client's process CPU for the loop (every thread), and each kind's
 * p50 / p99 wall time with how many of its 4 slowest calls had a pause inside.
 *
 * Each run also prints the young generation's size (new space) when the loop starts and
 * ends. `--idle S` (or `S+W`, repeatable: each value a run of its own, interleaved) waits S
 * seconds before the warm-up, as the bench's process is idle while the case's log is
 * loaded, and runs W more samples of other keys first (BENCHMARKS 4: a young generation
 * shrunk by V8's memory reducer).
 *
 * Usage: `npx tsx bench/cases/history-gc.ts --kit DIR [--kit DIR ...] [--rows N]
 * [--queries Q] [--rounds R] [--idle S[+W] ...]`, each DIR a checkout with `npm run build`
 * done.
 */
import { PerformanceObserver, performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import v8 from 'node:v8';
import { sampleInputs } from './history';
import { importKitHistory, KIT_TOOL_OPTIONS, runKitRounds } from './history-kits';

interface Span {
  readonly start: number;
  readonly end: number;
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      ...KIT_TOOL_OPTIONS,
      queries: { type: 'string', default: '300' },
      rounds: { type: 'string', default: '3' },
      idle: { type: 'string', multiple: true },
    },
  });
  if (values.child !== undefined)
    return loop(values.child, values.kit![0]!, values.queries!, values.idle?.[0] ?? '0');
  if (values.kit === undefined) throw new Error('--kit DIR (one or more built checkouts)');
  await runKitRounds({
    script: __filename,
    kits: values.kit,
    rows: Number(values.rows),
    rounds: Number(values.rounds),
    runs: (values.idle ?? ['0']).map((idle) => ({
      args: ['--queries', values.queries!, '--idle', idle],
      label: ` idle ${idle}s`,
    })),
  });
}

/**
 * One checkout's run of the case's loop against `url`. `idle` is `S` or `S+W`: S seconds
 * idle before the warm-up (as the bench's process waits while the case's log is loaded),
 * and W more samples (other keys than the timed ones) run as the timed loop runs them
 * before it.
 */
async function loop(url: string, kit: string, queries: string, idle: string): Promise<void> {
  const [idleS, extraWarm] = idle.split('+').map(Number) as [number, number | undefined];
  const { createKysely, createHistory } = await importKitHistory(kit, 'dist');
  const pauses: (Span & { readonly minor: boolean })[] = [];
  const observer = new PerformanceObserver((list) => {
    for (const entry of list.getEntries()) {
      const kind = (entry as { detail?: { kind?: number } }).detail?.kind;
      pauses.push({
        start: entry.startTime,
        end: entry.startTime + entry.duration,
        minor: kind === 1,
      });
    }
  });
  observer.observe({ entryTypes: ['gc'] });
  const db = createKysely<unknown>(url, { max: 1 });
  const history = createHistory(db);
  const drawn = await sampleInputs(url, Number(queries) + (extraWarm ?? 0));
  const samples = drawn.slice(0, Number(queries));
  // The bench's process waits idle while the case's log is generated (100 s at 1M rows):
  // V8's memory reducer shrinks the heap, the young generation to its smallest, meanwhile.
  if (idleS > 0) await new Promise((resolve) => setTimeout(resolve, idleS * 1000));
  for (const sample of drawn.slice(samples.length)) {
    await history.history('public.items', { id: sample.key }, {});
    await history.asOf('public.items', { id: sample.key }, sample.instant);
    await history.transaction(sample.transactionId);
  }
  for (const sample of samples.slice(0, 30)) {
    await history.history('public.items', { id: sample.key }, {});
    await history.history('public.items', { id: sample.key });
    await history.asOf('public.items', { id: sample.key }, sample.instant);
    await history.transaction(sample.transactionId);
  }
  const calls: Record<string, Span[]> = { page: [], asOf: [], transaction: [] };
  const timed = async (kind: string, work: () => Promise<unknown>) => {
    const start = performance.now();
    await work();
    calls[kind]!.push({ start, end: performance.now() });
  };
  const newSpace = () =>
    (v8.getHeapSpaceStatistics().find((space) => space.space_name === 'new_space')?.space_size ??
      0) /
    2 ** 20;
  const newSpaceBefore = newSpace();
  const started = performance.now();
  const cpu = process.cpuUsage();
  for (const sample of samples) {
    await timed('page', () => history.history('public.items', { id: sample.key }, {}));
    await timed('asOf', () => history.asOf('public.items', { id: sample.key }, sample.instant));
    await timed('transaction', () => history.transaction(sample.transactionId));
  }
  const used = process.cpuUsage(cpu);
  const ended = performance.now();
  await new Promise((resolve) => setTimeout(resolve, 50));
  observer.disconnect();
  await db.destroy();
  const inLoop = pauses.filter((p) => p.start >= started && p.end <= ended);
  const sum = (list: readonly Span[]) => list.reduce((total, p) => total + p.end - p.start, 0);
  const minor = inLoop.filter((p) => p.minor);
  const parts = [
    `new space ${newSpaceBefore.toFixed(1)} -> ${newSpace().toFixed(1)} MB`,
    `cpu ${((used.user + used.system) / 1000).toFixed(0)} ms`,
    `scavenges ${minor.length} (${sum(minor).toFixed(1)} ms)`,
    `full ${inLoop.length - minor.length} (${sum(inLoop.filter((p) => !p.minor)).toFixed(1)} ms)`,
  ];
  for (const [kind, spans] of Object.entries(calls)) {
    const ms = spans.map((s) => s.end - s.start).sort((a, b) => a - b);
    const at = (q: number) => ms[Math.min(ms.length - 1, Math.ceil((q / 100) * ms.length) - 1)]!;
    const slowest = [...spans].sort((a, b) => b.end - b.start - (a.end - a.start)).slice(0, 4);
    const paused = slowest.filter((s) => inLoop.some((p) => p.start < s.end && p.end > s.start));
    parts.push(
      `${kind} p50 ${at(50).toFixed(2)} p99 ${at(99).toFixed(2)} (${paused.length}/4 slowest paused)`,
    );
  }
  console.log(parts.join('; '));
}

void main().catch((error: unknown) => {
  console.error(error);
  process.exitCode = 1;
});

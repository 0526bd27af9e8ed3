/**
 * Where the history case's tail comes from (#14), not a bench case. The history case's
 * audit log (`generateAuditRows`, context on) and sampled inputs, and its loop (first
 * page, every version, asOf, transaction per sample) run twice over the same samples:
 * pass 1 as the case runs it (after the bulk load most of the log is not in shared
 * buffers), pass 2 the same calls again. For each call: wall time, the backend's CPU
 * (`/proc/<pid>/schedstat`), the bytes it read from the OS (`/proc/<pid>/io` rchar: a
 * shared-buffer miss reads an 8 KB page), the client's CPU (`process.cpuUsage`), the
 * V8 GC pauses inside the call (`PerformanceObserver`, entry type gc) and the largest GC
 * kind among them (1 scavenge, 4 mark-compact, 8 incremental marking), the client's main
 * thread's own CPU (`/proc/self/task/<pid>/schedstat`: `process.cpuUsage` counts V8's
 * background threads too), and how long the backend and the client's main thread waited
 * for a core (schedstat's run-queue time); per pass, checkpoints and autovacuum runs.
 * `--out FILE` writes every call as JSON. `--no-all` leaves
 * the every-version calls out (whose garbage may fall on the calls after them);
 * `--profile FILE` writes a CPU profile of the client during pass 1 and prints where its
 * time went.
 *
 * Usage: `npx tsx bench/cases/history-tail.ts [--rows N] [--queries Q] [--no-all] [--profile FILE]`
 */
import { readFileSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import { Session } from 'node:inspector/promises';
import { PerformanceObserver, performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { sql } from 'kysely';
import { createHistory } from '../../src/history';
import { createKysely } from '../../src/postgres/connect';
import { percentile, round } from '../lib/stats';
import {
  generateAuditRows,
  migratedHistoryTarget,
  sampleInputs,
  startHistoryServer,
} from './history';

type Kind = 'firstPage' | 'all' | 'asOf' | 'transaction';

interface Call {
  readonly pass: number;
  readonly kind: Kind;
  readonly key: number;
  readonly rows: number;
  readonly versions: number;
  readonly wallMs: number;
  readonly serverMs: number;
  readonly clientMs: number;
  readonly gcMs: number;
  /** Largest GC kind inside the call: 0 none, 1 minor (scavenge), 2+ major/incremental/weak. */
  readonly gcKind: number;
  readonly readBlocks: number;
  /** The client's main thread's own CPU (`/proc/self/task/<pid>/schedstat`, field 1). */
  readonly mainMs: number;
  /** Time the backend and the client's main thread waited for a core (schedstat field 2). */
  readonly serverWaitMs: number;
  readonly clientWaitMs: number;
}

interface Backend {
  readonly cpuNs: number;
  readonly waitNs: number;
  readonly readBytes: number;
}

const mainThread = `/proc/self/task/${process.pid}/schedstat`;
/** The main thread's run time and run-queue wait, ns. */
function mainSched(): [number, number] {
  const [run, wait] = readFileSync(mainThread, 'utf8').split(' ');
  return [Number(run), Number(wait)];
}

async function backend(pid: number): Promise<Backend> {
  const [sched, io] = await Promise.all([
    readFile(`/proc/${pid}/schedstat`, 'utf8'),
    readFile(`/proc/${pid}/io`, 'utf8'),
  ]);
  return {
    cpuNs: Number(sched.split(' ')[0]),
    waitNs: Number(sched.split(' ')[1]),
    readBytes: Number(/^rchar: (\d+)$/m.exec(io)![1]),
  };
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      rows: { type: 'string', default: '1000000' },
      queries: { type: 'string', default: '300' },
      'no-all': { type: 'boolean', default: false },
      profile: { type: 'string' },
      out: { type: 'string' },
    },
  });
  const gcs: { start: number; end: number; kind: number }[] = [];
  const observer = new PerformanceObserver((list) => {
    for (const entry of list.getEntries())
      gcs.push({
        start: entry.startTime,
        end: entry.startTime + entry.duration,
        kind: (entry as { detail?: { kind?: number } }).detail?.kind ?? 0,
      });
  });
  observer.observe({ entryTypes: ['gc'] });
  const server = await startHistoryServer();
  try {
    const { targetUrl } = await migratedHistoryTarget(server);
    const started = Date.now();
    const keys = await generateAuditRows(targetUrl, Number(values.rows));
    console.error(
      `generated ${values.rows} rows, ${keys} keys in ${(Date.now() - started) / 1000}s`,
    );
    const db = createKysely<unknown>(targetUrl, { max: 1 });
    const history = createHistory(db);
    const samples = await sampleInputs(targetUrl, Number(values.queries));
    const { rows: counted } = await sql<{ key: string; n: string }>`
      SELECT row_key ->> 'id' AS key, count(*) AS n FROM audit.audit_log
      WHERE source_table = 'items' GROUP BY 1`.execute(db);
    const versionsOf = new Map(counted.map((row) => [Number(row.key), Number(row.n)]));
    const kinds: Record<Kind, (s: (typeof samples)[number]) => Promise<unknown>> = {
      firstPage: (s) => history.history('public.items', { id: s.key }, {}),
      all: (s) => history.history('public.items', { id: s.key }),
      asOf: (s) => history.asOf('public.items', { id: s.key }, s.instant),
      transaction: (s) => history.transaction(s.transactionId),
    };
    const order: Kind[] = values['no-all']
      ? ['firstPage', 'asOf', 'transaction']
      : ['firstPage', 'all', 'asOf', 'transaction'];
    for (const s of samples.slice(0, 30)) for (const kind of order) await kinds[kind](s);
    // The backend's pid after the warm-up, not before the sampling: at 10M rows the sampling
    // takes longer than the pool keeps an idle connection, and the calls ran on a new one.
    const { rows: pidRows } = await sql<{ pid: number }>`SELECT pg_backend_pid() AS pid`.execute(
      db,
    );
    const pid = pidRows[0]!.pid;
    const calls: Call[] = [];
    const session = values.profile ? new Session() : undefined;
    // Server activity that could land on a call: checkpoints (cluster-wide) and autovacuum
    // or autoanalyze runs in this database, read before and after each pass.
    const activity = async () =>
      (
        await sql<{ checkpoints: string; buffers: string; vacuums: string; last: Date | null }>`
          SELECT (SELECT num_timed + num_requested FROM pg_stat_checkpointer)::text AS checkpoints,
                 (SELECT buffers_written FROM pg_stat_checkpointer)::text AS buffers,
                 (SELECT sum(autovacuum_count + autoanalyze_count) FROM pg_stat_all_tables)::text AS vacuums,
                 (SELECT max(greatest(last_autovacuum, last_autoanalyze)) FROM pg_stat_all_tables) AS last`.execute(
          db,
        )
      ).rows[0]!;
    for (const pass of [1, 2]) {
      const activityBefore = await activity();
      const passStarted = new Date();
      if (pass === 1 && session) {
        session.connect();
        await session.post('Profiler.enable');
        await session.post('Profiler.setSamplingInterval', { interval: 100 });
        await session.post('Profiler.start');
      }
      for (const s of samples) {
        for (const kind of order) {
          const before = await backend(pid);
          const cpu = process.cpuUsage();
          const [run0, wait0] = mainSched();
          const t0 = performance.now();
          const answer = await kinds[kind](s);
          const t1 = performance.now();
          const [run1, wait1] = mainSched();
          const client = process.cpuUsage(cpu);
          const after = await backend(pid);
          const inside = gcs.filter((g) => g.end > t0 && g.start < t1);
          const gcMs = inside.reduce(
            (sum, g) => sum + Math.min(g.end, t1) - Math.max(g.start, t0),
            0,
          );
          calls.push({
            pass,
            kind,
            key: s.key,
            versions: versionsOf.get(s.key) ?? 0,
            rows: Array.isArray(answer) ? answer.length : answer === null ? 0 : 1,
            wallMs: t1 - t0,
            serverMs: (after.cpuNs - before.cpuNs) / 1e6,
            clientMs: (client.user + client.system) / 1000,
            gcMs,
            gcKind: Math.max(0, ...inside.map((g) => g.kind)),
            readBlocks: (after.readBytes - before.readBytes) / 8192,
            mainMs: (run1 - run0) / 1e6,
            serverWaitMs: (after.waitNs - before.waitNs) / 1e6,
            clientWaitMs: (wait1 - wait0) / 1e6,
          });
        }
      }
      const activityAfter = await activity();
      console.log(
        `pass ${pass} (${passStarted.toISOString()} to ${new Date().toISOString()}): checkpoints ${activityBefore.checkpoints} -> ${activityAfter.checkpoints} (buffers written ${activityBefore.buffers} -> ${activityAfter.buffers}), autovacuum/analyze runs ${activityBefore.vacuums} -> ${activityAfter.vacuums}, last ${activityAfter.last?.toISOString() ?? 'none'}`,
      );
      if (pass === 1 && session) {
        const { profile } = await session.post('Profiler.stop');
        await writeFile(values.profile!, JSON.stringify(profile));
        printProfile(profile);
        session.disconnect();
      }
    }
    await new Promise((resolve) => setTimeout(resolve, 100)); // last gc entries
    if (values.out) await writeFile(values.out, JSON.stringify(calls));
    report(calls);
    await db.destroy();
  } finally {
    observer.disconnect();
    await server.stop();
  }
}

function report(calls: readonly Call[]): void {
  const fields = [
    'wallMs',
    'serverMs',
    'clientMs',
    'mainMs',
    'gcMs',
    'serverWaitMs',
    'clientWaitMs',
    'readBlocks',
  ] as const;
  const mean = (list: readonly Call[], field: (typeof fields)[number]) =>
    round(list.reduce((sum, c) => sum + c[field], 0) / Math.max(1, list.length), 3);
  for (const pass of [1, 2]) {
    for (const kind of ['firstPage', 'all', 'asOf', 'transaction'] as const) {
      const list = calls.filter((c) => c.pass === pass && c.kind === kind);
      if (list.length === 0) continue;
      const walls = list.map((c) => c.wallMs);
      const p99 = percentile(walls, 99);
      const p50 = percentile(walls, 50);
      const tail = list.filter((c) => c.wallMs >= percentile(walls, 95));
      const body = list.filter((c) => c.wallMs <= p50);
      console.log(
        `pass ${pass} ${kind}: n ${list.length} wall p50 ${round(p50, 3)} p90 ${round(percentile(walls, 90), 3)} p99 ${round(p99, 3)} max ${round(Math.max(...walls), 3)}`,
      );
      for (const [label, group] of [
        ['all', list],
        ['<=p50', body],
        ['>=p95', tail],
      ] as const) {
        console.log(
          `  ${label.padEnd(6)} mean: ${fields.map((f) => `${f} ${mean(group, f)}`).join(', ')}, rows ${mean(group, 'rows' as never)}`,
        );
      }
      if (kind === 'firstPage') {
        for (const [label, low, high] of [
          ['1-10', 1, 10],
          ['11-100', 11, 100],
          ['101-1000', 101, 1000],
        ] as const) {
          const group = list.filter((c) => c.versions >= low && c.versions <= high);
          if (group.length === 0) continue;
          const w = group.map((c) => c.wallMs);
          console.log(
            `  versions ${label}: n ${group.length} wall p50 ${round(percentile(w, 50), 3)} p99 ${round(percentile(w, 99), 3)}; mean ${fields.map((f) => `${f} ${mean(group, f)}`).join(', ')}`,
          );
        }
      }
      const slowest = [...list].sort((a, b) => b.wallMs - a.wallMs).slice(0, 4);
      for (const c of slowest)
        console.log(
          `  slow: key ${c.key} (${c.versions} versions) rows ${c.rows} wall ${round(c.wallMs, 2)} server ${round(c.serverMs, 2)} client ${round(c.clientMs, 2)} main ${round(c.mainMs, 2)} gc ${round(c.gcMs, 2)} (kind ${c.gcKind}) waits server ${round(c.serverWaitMs, 2)} client ${round(c.clientWaitMs, 2)} read ${c.readBlocks}`,
        );
    }
  }
}

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  hitCount?: number;
}

/** Self time by function and by module (node_modules package or src file), top 25. */
function printProfile(profile: { nodes: ProfileNode[]; samples?: number[] }): void {
  // Busy samples only: (idle) is the client waiting for the server.
  const total = profile.nodes.reduce(
    (sum, n) => sum + (n.callFrame.functionName === '(idle)' ? 0 : (n.hitCount ?? 0)),
    0,
  );
  const byFunction = new Map<string, number>();
  const byModule = new Map<string, number>();
  for (const node of profile.nodes) {
    const hits = node.hitCount ?? 0;
    if (hits === 0 || node.callFrame.functionName === '(idle)') continue;
    const url = node.callFrame.url;
    const module =
      /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url)?.[1] ??
      /\/(src|bench)\/.*$/.exec(url)?.[0] ??
      (url === '' ? node.callFrame.functionName : url.replace(/^.*\//, ''));
    const name = `${node.callFrame.functionName || '(anon)'} ${module}:${node.callFrame.lineNumber}`;
    byFunction.set(name, (byFunction.get(name) ?? 0) + hits);
    byModule.set(module, (byModule.get(module) ?? 0) + hits);
  }
  const top = (map: Map<string, number>) =>
    [...map]
      .sort((a, b) => b[1] - a[1])
      .slice(0, 25)
      .map(([k, v]) => `  ${((100 * v) / total).toFixed(1).padStart(5)}% ${k}`);
  console.log(`client profile, pass 1 (${total} samples): by module`);
  console.log(top(byModule).join('\n'));
  console.log('by function');
  console.log(top(byFunction).join('\n'));
}

void main().catch((error: unknown) => {
  console.error(error);
  process.exitCode = 1;
});

/**
 * The bytes a first history page allocates in the client (#14), not a bench case: the
 * case's audit log (`generateAuditRows`, context on), the first pages (100 versions) of
 * the 100 lowest keys with at least 100 versions, read by each checkout in a process of
 * its own (importing its built `dist/`), the checkouts interleaved round by round.
 *
 * Method (hhist4's, BENCHMARKS 4): after 3 warm-up passes over the keys, batches of 20
 * first pages; before each batch two forced full collections, and the young generation
 * made big enough (`--max-semi-space-size=256`) that no collection runs inside most
 * batches; a batch's bytes are `heapUsed` after it minus before it, kept only when no
 * collection ran inside it (`PerformanceObserver`, entry type gc). Prints the median
 * KiB per first page over the kept batches, how many were kept, and a sha-256 of the
 * pages' JSON (the same answers in every checkout, or the comparison means nothing).
 *
 * Usage: `npx tsx bench/cases/history-bytes.ts --kit DIR [--kit DIR ...] [--rows N]
 * [--passes P] [--rounds R]`, each DIR a checkout with `npm run build` done.
 */
import { createHash } from 'node:crypto';
import inspector from 'node:inspector';
import path from 'node:path';
import { PerformanceObserver, performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import pg from 'pg';
import { importKitHistory, KIT_TOOL_OPTIONS, runKitRounds } from './history-kits';

const PAGE = 100;
const KEYS = 100;
const BATCH = 20;

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      ...KIT_TOOL_OPTIONS,
      passes: { type: 'string', default: '5' },
      rounds: { type: 'string', default: '3' },
      sites: { type: 'boolean', default: false },
    },
  });
  if (values.child !== undefined) {
    return measure(values.child, values.kit![0]!, values.passes!, values.sites!);
  }
  if (values.kit === undefined) throw new Error('--kit DIR (one or more built checkouts)');
  await runKitRounds({
    script: __filename,
    kits: values.kit,
    rows: Number(values.rows),
    rounds: Number(values.rounds),
    nodeFlags: ['--expose-gc', '--max-semi-space-size=256'],
    runs: [{ args: ['--passes', values.passes!, ...(values.sites! ? ['--sites'] : [])] }],
  });
}

async function measure(url: string, kit: string, passes: string, sites: boolean): Promise<void> {
  const collect = (globalThis as { gc?: () => void }).gc;
  if (collect === undefined) throw new Error('run with --expose-gc');
  const { createKysely, createHistory } = await importKitHistory(kit, 'dist');
  const keys = await fullPageKeys(url);
  const gcs: number[] = [];
  const observer = new PerformanceObserver((list) => {
    for (const entry of list.getEntries()) gcs.push(entry.startTime);
  });
  observer.observe({ entryTypes: ['gc'] });
  const db = createKysely<unknown>(url, { max: 1 });
  const history = createHistory(db);
  const page = (key: number) => history.history('public.items', { id: key }, {});
  const answers = createHash('sha256');
  for (let warm = 0; warm < 3; warm++) {
    for (const key of keys) {
      const versions = await page(key);
      if (versions.length !== PAGE) throw new Error(`key ${key}: ${versions.length} versions`);
      if (warm === 0) answers.update(JSON.stringify(versions));
    }
  }
  const batches: { start: number; end: number; bytes: number }[] = [];
  for (let pass = 0; pass < Number(passes); pass++) {
    for (let at = 0; at < keys.length; at += BATCH) {
      collect();
      collect();
      const start = performance.now();
      const before = process.memoryUsage().heapUsed;
      for (const key of keys.slice(at, at + BATCH)) await page(key);
      const bytes = process.memoryUsage().heapUsed - before;
      batches.push({ start, end: performance.now(), bytes });
    }
  }
  await new Promise((resolve) => setTimeout(resolve, 50));
  observer.disconnect();
  if (sites) console.log(await bySite(() => pages(keys, page, Number(passes))));
  await db.destroy();
  const kept = batches.filter((b) => !gcs.some((t) => t >= b.start && t <= b.end));
  const perPage = kept.map((b) => b.bytes / BATCH / 1024).sort((a, b) => a - b);
  const median = perPage[Math.floor(perPage.length / 2)];
  console.log(
    `${median === undefined ? 'no batch without a collection' : `${median.toFixed(1)} KiB per first page`}` +
      ` (${kept.length}/${batches.length} batches, range ${perPage[0]?.toFixed(1)}-${perPage.at(-1)?.toFixed(1)});` +
      ` answers ${answers.digest('hex').slice(0, 16)}`,
  );
}

async function pages(
  keys: readonly number[],
  page: (key: number) => Promise<unknown>,
  passes: number,
): Promise<number> {
  for (let pass = 0; pass < passes; pass++) for (const key of keys) await page(key);
  return passes * keys.length;
}

/**
 * The sampling heap profiler (interval 512 bytes, objects either collector took
 * included) over `work`'s first pages: KiB per first page by the allocating function and
 * its two callers, the 12 largest, and all sampled.
 */
async function bySite(work: () => Promise<number>): Promise<string> {
  const session = new inspector.Session();
  session.connect();
  const post = (method: string, params?: object) =>
    new Promise<unknown>((resolve, reject) =>
      session.post(method, params, (error, result) => (error ? reject(error) : resolve(result))),
    );
  await post('HeapProfiler.enable');
  await post('HeapProfiler.startSampling', {
    samplingInterval: 512,
    includeObjectsCollectedByMajorGC: true,
    includeObjectsCollectedByMinorGC: true,
  });
  const count = await work();
  const { profile } = (await post('HeapProfiler.stopSampling')) as { profile: { head: Node } };
  session.disconnect();
  interface Node {
    callFrame: { functionName: string; url: string; lineNumber: number };
    selfSize: number;
    children: Node[];
  }
  const bytes = new Map<string, number>();
  let total = 0;
  const walk = (node: Node, frames: readonly string[]) => {
    const frame = `${node.callFrame.functionName || '(anonymous)'} ${path.basename(node.callFrame.url)}:${node.callFrame.lineNumber + 1}`;
    const stack = [frame, ...frames].slice(0, 3);
    if (node.selfSize > 0) {
      const site = stack.join(' < ');
      bytes.set(site, (bytes.get(site) ?? 0) + node.selfSize);
      total += node.selfSize;
    }
    for (const child of node.children) walk(child, stack);
  };
  walk(profile.head, []);
  const kib = (n: number) => (n / count / 1024).toFixed(1);
  return [
    `sampled ${kib(total)} KiB per first page; largest sites:`,
    ...[...bytes]
      .sort((a, b) => b[1] - a[1])
      .slice(0, 12)
      .map(([site, n]) => `  ${kib(n)}  ${site}`),
  ].join('\n');
}

/** The 100 lowest keys with at least a full first page of versions. */
async function fullPageKeys(url: string): Promise<number[]> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    const { rows } = await client.query<{ key: string }>(`
      SELECT (row_key ->> 'id')::bigint AS key FROM audit.audit_log
       WHERE source_table = 'items' GROUP BY 1 HAVING count(*) >= ${PAGE}
       ORDER BY 1 LIMIT ${KEYS}`);
    return rows.map((row) => Number(row.key));
  } finally {
    await client.end();
  }
}

void main().catch((error: unknown) => {
  console.error(error);
  process.exitCode = 1;
});

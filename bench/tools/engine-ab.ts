/**
 * Where the local CDC engine's time goes, and A/B of two checkouts of it (#14), not a
 * bench case. The engine runs in this process against the bench's servers; each
 * catch-up applies a fresh backlog until idle, and reports per change:
 *
 * - the engine process's CPU (`process.cpuUsage`) and how much of the wall time its event
 *   loop was idle (`performance.eventLoopUtilization`), i.e. waiting on a database;
 * - the statements it sent the target and how long at least one was outstanding;
 * - the target's and the source's server CPU: what the servers' backends that ended
 *   during the run used (the postmaster's `cutime + cstime`, `/proc/<pid>/stat`, which
 *   grows when a child exits: the engine's connections close at the end of each run).
 * - per run: V8's scavenges and full collections and their pauses summed (`gc`
 *   performance entries in the run's time window; both variants share this process, so a
 *   run can pay for garbage the other left).
 *
 * Usage: `npx tsx bench/tools/engine-ab.ts [--base DIR | --kit NAME=DIR...] [--rounds N]
 *         [--workload W] [--changes N] [--lag TPS --seconds S]`
 *
 * - `--workload`: `items:1`, `items:100`, `items:10000` (case 2's backlog in transactions of
 *   that size) or `pgbench` (case 1's workload, the catch-up of case E; `--changes` is then
 *   rounded to whole transactions). @default items:1
 * - `--base DIR`: a checkout of the kit before the change (its `src/engine` is imported as
 *   is, with this checkout's `node_modules`); the variants `base` and `head` then take
 *   turns on the same slot, the order alternating every round, so the machine's load
 *   falls on both alike. Every run checks one audit row per change.
 * - `--kit NAME=DIR` (repeatable): another checkout measured whole, its engine and its kit
 *   (staging and audit triggers, installed by its own `migrateTarget` and config parser)
 *   in a source and target database of its own on the same servers, beside this
 *   checkout's; the variants take turns, the order alternating every round. For a change
 *   of trigger SQL, or to find which commit of a range made the catch-up slower.
 * - `--lag TPS`: instead of catch-ups, case 2's lag measurement at TPS workload
 *   transactions/s, with when each source commit reached the engine (its arrival delay),
 *   to tell the source's share of the lag from the engine's.
 *
 * For a CPU profile of the engine, run it as `node --cpu-prof --import tsx
 * bench/tools/engine-ab.ts ...` and summarise the profile with `--summarise FILE`.
 */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { constants, performance, PerformanceObserver } from 'node:perf_hooks';
import pg from 'pg';
import { backlogSql, measureLag } from '../cases/engine';
import { ITEMS_DDL, prepareItemsDatabases } from '../lib/engine-capture';
import { QUICK, type BenchContext } from '../lib/profile';
import { startServers, withClient, type BenchServers } from '../lib/servers';
import { median, percentile, round } from '../lib/stats';
import { createWorkloadTables, WORKLOAD_TABLES } from '../lib/workload';

type EngineModule = typeof import('../../src/engine');
type ReplicationModule = typeof import('../../src/engine/replication-connection');
type MigrateModule = typeof import('../../src/migrate/migrate-target');
type ConfigModule = typeof import('../../src/config');

interface Variant {
  readonly name: string;
  /** The checkout whose `src/engine` this is. */
  readonly root: string;
  readonly engine: EngineModule;
  /** With `--kit`: the variant's own databases, its kit installed by its own checkout. */
  readonly ownKit: boolean;
}

interface Urls {
  readonly sourceUrl: string;
  readonly targetUrl: string;
}

const TABLES = ['items', ...WORKLOAD_TABLES];

/** One catch-up's figures, totals (divided per change when printed). */
interface RunFigures {
  readonly changes: number;
  readonly wallMs: number;
  readonly engineCpuMs: number;
  readonly idleMs: number;
  readonly statements: number;
  readonly targetBusyMs: number;
  readonly targetCpuMs: number;
  readonly sourceCpuMs: number;
  /** V8's collections during the run ({@link gcTotals}). */
  readonly scavenges: number;
  readonly scavengeMs: number;
  readonly fullCollections: number;
  readonly fullMs: number;
}

/** Counts the statements sent on the target database's connections, and how long one was outstanding. */
const targetTraffic = {
  databases: new Set<string>(),
  statements: 0,
  busyMs: 0,
  outstanding: 0,
  since: 0,
};

function instrumentTargetQueries(): void {
  const query = pg.Client.prototype.query as (...args: unknown[]) => unknown;
  (pg.Client.prototype as unknown as { query: unknown }).query = function (
    this: pg.Client,
    ...args: unknown[]
  ) {
    if (!targetTraffic.databases.has(this.database ?? '')) return query.apply(this, args);
    // Sent with a callback (the last argument) or through node-postgres's promise.
    const last = args.length - 1;
    const callback = args.length > 1 && typeof args[last] === 'function' ? args[last] : undefined;
    const start = () => {
      targetTraffic.statements++;
      if (targetTraffic.outstanding++ === 0) targetTraffic.since = performance.now();
    };
    const done = () => {
      if (--targetTraffic.outstanding === 0)
        targetTraffic.busyMs += performance.now() - targetTraffic.since;
    };
    if (callback) {
      start();
      const answered = callback as (...answer: unknown[]) => void;
      args[last] = (...answer: unknown[]) => {
        done();
        answered(...answer);
      };
      return query.apply(this, args);
    }
    const result = query.apply(this, args);
    if (!(result instanceof Promise)) return result;
    start();
    result.then(done, done);
    return result;
  };
}

/**
 * V8's collections while a catch-up runs (`PerformanceObserver` 'gc' entries, which end
 * up here a moment after each collection): scavenges, and mark-compact (full) ones, with
 * their pauses summed. Both variants run in this process, so a run's figures are those
 * of its own time window.
 */
const gcTotals = { scavenges: 0, scavengeMs: 0, fullCollections: 0, fullMs: 0 };

function observeGc(): void {
  new PerformanceObserver((list) => {
    for (const entry of list.getEntries()) {
      const kind = (entry as { detail?: { kind?: number } }).detail?.kind;
      if (kind === constants.NODE_PERFORMANCE_GC_MINOR) {
        gcTotals.scavenges++;
        gcTotals.scavengeMs += entry.duration;
      } else if (kind === constants.NODE_PERFORMANCE_GC_MAJOR) {
        gcTotals.fullCollections++;
        gcTotals.fullMs += entry.duration;
      }
    }
  }).observe({ entryTypes: ['gc'] });
}

/** CPU (ms) of a server's ended backends: its postmaster's cutime + cstime. */
async function endedChildrenCpuMs(url: string): Promise<number> {
  const dataDir = await withClient(url, async (client) => {
    const { rows } = await client.query<{ data_directory: string }>('SHOW data_directory');
    return rows[0]!.data_directory;
  });
  const pid = (await readFile(path.join(dataDir, 'postmaster.pid'), 'utf8')).split('\n')[0]!;
  // Fields after the command's closing parenthesis: state is field 3, cutime 16, cstime 17.
  const stat = await readFile(`/proc/${pid.trim()}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const ticks = Number(fields[13]) + Number(fields[14]);
  return (ticks * 1000) / 100; // USER_HZ is 100 on Linux
}

async function auditRows(targetUrl: string): Promise<number> {
  return withClient(targetUrl, async (client) => {
    const { rows } = await client.query<{ n: string }>('SELECT count(*) AS n FROM audit.audit_log');
    return Number(rows[0]!.n);
  });
}

/**
 * Case 1's workload as a backlog, one source transaction per loop: an account of
 * 10,000, a teller of 100 and a new movement, as the pgbench script picks them.
 */
function workloadBacklogSql(transactions: number): string {
  return `DO $$
    DECLARE a int; t int; d int;
    BEGIN
      FOR i IN 1..${transactions} LOOP
        a := 1 + floor(random() * 10000)::int;
        t := 1 + floor(random() * 100)::int;
        d := 1 + floor(random() * 5000)::int; -- never 0: an UPDATE that changes nothing records no version
        UPDATE accounts SET abalance = abalance + d WHERE aid = a;
        UPDATE tellers SET tbalance = tbalance + d WHERE tid = t;
        INSERT INTO movements (tid, aid, delta, mtime) VALUES (t, a, d, CURRENT_TIMESTAMP);
        COMMIT;
      END LOOP;
    END $$`;
}

/** Commits a backlog of about `changes` changes on the source; returns how many it made. */
async function makeBacklog(
  workload: string,
  sourceUrl: string,
  changes: number,
  nextId: { value: number },
): Promise<number> {
  if (workload === 'pgbench') {
    const transactions = Math.max(1, Math.round(changes / 3));
    await withClient(sourceUrl, (client) => client.query(workloadBacklogSql(transactions)));
    return transactions * 3;
  }
  const size = Number(workload.split(':')[1]);
  const rows = Math.max(1, Math.floor(changes / 2));
  const first = nextId.value;
  nextId.value += rows;
  await withClient(sourceUrl, (client) => client.query(backlogSql(first, rows, size)));
  return rows * 2;
}

async function catchUp(variant: Variant, urls: Urls, expected: number): Promise<RunFigures> {
  const { sourceUrl, targetUrl } = urls;
  const before = await auditRows(targetUrl);
  const [targetCpu0, sourceCpu0] = await Promise.all([
    endedChildrenCpuMs(targetUrl),
    endedChildrenCpuMs(sourceUrl),
  ]);
  const engine = variant.engine.createEngine({
    config: await configOf(variant),
    sourceUrl,
    targetUrl,
    logger: variant.engine.silentLogger,
    lagIntervalMs: 0,
  });
  const statements0 = targetTraffic.statements;
  const busy0 = targetTraffic.busyMs;
  const elu0 = performance.eventLoopUtilization();
  const gc0 = { ...gcTotals };
  const cpu0 = process.cpuUsage();
  const started = performance.now();
  const result = await engine.runUntilIdle();
  const wallMs = performance.now() - started;
  const cpu = process.cpuUsage(cpu0);
  const elu = performance.eventLoopUtilization(elu0);
  // The observer hears of a collection a task after it: let the last ones in.
  await new Promise((resolve) => setImmediate(resolve));
  const gc = {
    scavenges: gcTotals.scavenges - gc0.scavenges,
    scavengeMs: gcTotals.scavengeMs - gc0.scavengeMs,
    fullCollections: gcTotals.fullCollections - gc0.fullCollections,
    fullMs: gcTotals.fullMs - gc0.fullMs,
  };
  // The engine's backends have exited once their postmaster has reaped them.
  await new Promise((resolve) => setTimeout(resolve, 200));
  const [targetCpu1, sourceCpu1] = await Promise.all([
    endedChildrenCpuMs(targetUrl),
    endedChildrenCpuMs(sourceUrl),
  ]);
  const written = (await auditRows(targetUrl)) - before;
  if (written !== expected || result.changes !== expected)
    throw new Error(
      `${variant.name}: expected ${expected} changes and audit rows, applied ${result.changes}, found ${written} audit rows`,
    );
  return {
    changes: expected,
    wallMs,
    engineCpuMs: (cpu.user + cpu.system) / 1000,
    idleMs: elu.idle,
    statements: targetTraffic.statements - statements0,
    targetBusyMs: targetTraffic.busyMs - busy0,
    targetCpuMs: targetCpu1 - targetCpu0,
    sourceCpuMs: sourceCpu1 - sourceCpu0,
    ...gc,
  };
}

function perChange(runs: readonly RunFigures[]) {
  const per = (pick: (run: RunFigures) => number, scale = 1000) =>
    round(median(runs.map((run) => (pick(run) * scale) / run.changes)), 3);
  return {
    runs: runs.length,
    changesPerRun: runs[0]?.changes ?? 0,
    changesPerSecond: round(median(runs.map((run) => run.changes / (run.wallMs / 1000))), 4),
    engineCpuUsPerChange: per((run) => run.engineCpuMs),
    engineCpuSpread: [
      round(Math.min(...runs.map((run) => (run.engineCpuMs * 1000) / run.changes)), 3),
      round(Math.max(...runs.map((run) => (run.engineCpuMs * 1000) / run.changes)), 3),
    ],
    idleShare: round(median(runs.map((run) => run.idleMs / run.wallMs)), 3),
    targetBusyShare: round(median(runs.map((run) => run.targetBusyMs / run.wallMs)), 3),
    changesPerStatement: round(median(runs.map((run) => run.changes / run.statements)), 3),
    targetCpuUsPerChange: per((run) => run.targetCpuMs),
    sourceCpuUsPerChange: per((run) => run.sourceCpuMs),
    // Per run (each run applies changesPerRun changes): medians, and every run's pause sum.
    scavengesPerRun: median(runs.map((run) => run.scavenges)),
    scavengePauseMsPerRun: round(median(runs.map((run) => run.scavengeMs)), 3),
    scavengePauseMsEachRun: runs.map((run) => round(run.scavengeMs, 3)),
    fullCollectionsPerRun: median(runs.map((run) => run.fullCollections)),
    fullPauseMsPerRun: round(median(runs.map((run) => run.fullMs)), 3),
  };
}

/** `--kit NAME=DIR` values as name and directory. */
function kitOptions(values: readonly string[]): [string, string][] {
  return values.map((value) => {
    const match = /^([a-z0-9_]+)=(.+)$/i.exec(value);
    if (!match) throw new Error(`--kit takes NAME=DIR (NAME: letters, digits, _), got ${value}`);
    return [match[1]!, path.resolve(match[2]!)];
  });
}

async function loadVariants(
  base: string | undefined,
  kits: [string, string][],
): Promise<Variant[]> {
  const roots = base ? [['base', path.resolve(base)] as const] : kits;
  const all = [...roots, ['head', path.resolve(__dirname, '..', '..')] as const];
  return Promise.all(
    all.map(async ([name, root]) => ({
      name,
      root,
      engine: (await import(path.join(root, 'src/engine/index.ts'))) as EngineModule,
      ownKit: kits.length > 0,
    })),
  );
}

/** The bench's config for {@link TABLES}, parsed by the variant's own checkout. */
async function configOf(variant: Variant) {
  const { parseConfig } = (await import(
    path.join(variant.root, 'src/config/index.ts')
  )) as ConfigModule;
  return parseConfig({ tables: TABLES.map((table) => ({ table })) });
}

/** Applies the initial load (the workload tables' rows) with the variant's engine. */
async function initialLoad(variant: Variant, urls: Urls): Promise<void> {
  await variant.engine
    .createEngine({
      config: await configOf(variant),
      sourceUrl: urls.sourceUrl,
      targetUrl: urls.targetUrl,
      logger: variant.engine.silentLogger,
      lagIntervalMs: 0,
    })
    .runUntilIdle();
}

/** Each variant's source and target: shared (`--base`), or its own with its own kit (`--kit`). */
async function prepare(servers: BenchServers, variants: readonly Variant[]): Promise<Urls[]> {
  const withTables = (url: string) => createWorkloadTables(url, 10_000);
  if (!variants[0]!.ownKit) {
    const urls = await prepareItemsDatabases(servers, 'engine_ab', TABLES, withTables);
    targetTraffic.databases.add(new URL(urls.targetUrl).pathname.slice(1));
    await initialLoad(variants[0]!, urls);
    return variants.map(() => urls);
  }
  const all: Urls[] = [];
  for (const variant of variants) {
    const prefix = `engine_ab_${variant.name}`;
    const sourceUrl = await servers.source.createDatabase(`${prefix}_source`);
    const targetUrl = await servers.target.createDatabase(`${prefix}_target`);
    await withClient(sourceUrl, (client) => client.query(ITEMS_DDL));
    await withTables(sourceUrl);
    const { migrateTarget } = (await import(
      path.join(variant.root, 'src/migrate/migrate-target.ts')
    )) as MigrateModule;
    await migrateTarget({ config: await configOf(variant), sourceUrl, targetUrl });
    targetTraffic.databases.add(`${prefix}_target`);
    await initialLoad(variant, { sourceUrl, targetUrl });
    all.push({ sourceUrl, targetUrl });
  }
  return all;
}

async function abRuns(
  variants: readonly Variant[],
  urls: readonly Urls[],
  options: { rounds: number; workload: string; changes: number },
): Promise<void> {
  const runs = new Map<string, RunFigures[]>(variants.map((v) => [v.name, []]));
  const nextId = new Map<Urls, { value: number }>(urls.map((u) => [u, { value: 1 }]));
  const indexed = variants.map((variant, index) => ({ variant, urls: urls[index]! }));
  for (let roundIndex = 0; roundIndex <= options.rounds; roundIndex++) {
    const order = roundIndex % 2 === 0 ? indexed : [...indexed].reverse();
    for (const { variant, urls: own } of order) {
      const expected = await makeBacklog(
        options.workload,
        own.sourceUrl,
        options.changes,
        nextId.get(own)!,
      );
      const figures = await catchUp(variant, own, expected);
      // Round 0 warms up (JIT compilation of both engines, plan caches): not counted.
      if (roundIndex > 0) runs.get(variant.name)!.push(figures);
      console.error(
        `round ${roundIndex} ${variant.name}: ${round(figures.changes / (figures.wallMs / 1000), 4)} changes/s, ` +
          `engine ${round((figures.engineCpuMs * 1000) / figures.changes, 3)} µs/change, ` +
          `idle ${round(figures.idleMs / figures.wallMs, 3)}, ${figures.statements} statements, ` +
          `${figures.scavenges} scavenges ${round(figures.scavengeMs, 3)} ms, ` +
          `${figures.fullCollections} full ${round(figures.fullMs, 3)} ms`,
      );
    }
  }
  const summary = Object.fromEntries([...runs].map(([name, list]) => [name, perChange(list)]));
  console.log(JSON.stringify({ workload: options.workload, ...summary }, null, 2));
}

/** Records, for each source commit the replication connection receives, how long after the commit it arrived. */
async function instrumentArrivals(variant: Variant): Promise<number[]> {
  const { ReplicationConnection } = (await import(
    path.join(variant.root, 'src/engine/replication-connection.ts')
  )) as ReplicationModule;
  const arrivals: number[] = [];
  const proto = ReplicationConnection.prototype as unknown as {
    receive(chunk: Buffer): void;
  };
  const receive = proto.receive;
  proto.receive = function (this: unknown, chunk: Buffer) {
    // XLogData 'w' (25-byte header) carrying a pgoutput Commit 'C': flags, commit LSN,
    // end LSN, then the commit time (µs since 2000-01-01).
    if (chunk[0] === 0x77 && chunk[25] === 0x43) {
      const commitUnixMs = Number(chunk.readBigInt64BE(25 + 18) / 1000n) + 946_684_800_000;
      arrivals.push(Date.now() - commitUnixMs);
    }
    receive.call(this, chunk);
  };
  return arrivals;
}

/** Per source commit: when the engine decoded it; per target commit: its parts (ms). */
interface CommitParts {
  /** Source commit decoded (handled) to its target commit's start: waiting for the group. */
  readonly groupWaitMs: number[];
  /** The target commit: the writer's flush, then the position and COMMIT. */
  readonly flushMs: number[];
  readonly commitMs: number[];
  /** Source commit decoded to its target commit done. */
  readonly decodedToCommittedMs: number[];
  /** Changes per target commit, and how many were cut by the group being full. */
  readonly groupChanges: number[];
}

/** Times the StreamApplier's source commits and target commits (what the engine adds). */
async function instrumentCommits(variant: Variant): Promise<CommitParts> {
  const { StreamApplier } = (await import(
    path.join(variant.root, 'src/engine/stream-applier.ts')
  )) as typeof import('../../src/engine/stream-applier');
  const parts: CommitParts = {
    groupWaitMs: [],
    flushMs: [],
    commitMs: [],
    decodedToCommittedMs: [],
    groupChanges: [],
  };
  type Internals = {
    commitSource(commitLsn: bigint, endLsn: bigint): Promise<void>;
    commit(): Promise<void>;
    writer: { flush(): Promise<void> };
    group: { changes: number };
  };
  const proto = StreamApplier.prototype as unknown as Internals;
  const decoded: number[] = [];
  const commitSource = proto.commitSource;
  proto.commitSource = function (this: Internals, commitLsn, endLsn) {
    decoded.push(performance.now());
    return commitSource.call(this, commitLsn, endLsn);
  };
  const commit = proto.commit;
  proto.commit = async function (this: Internals) {
    const start = performance.now();
    const waiting = decoded.splice(0);
    const changes = this.group.changes;
    const writer = this.writer;
    const flush = writer.flush;
    let flushed = start;
    writer.flush = async function (this: typeof writer) {
      await flush.call(this);
      flushed = performance.now();
    };
    try {
      await commit.call(this);
    } finally {
      writer.flush = flush;
    }
    const end = performance.now();
    if (waiting.length === 0) return;
    parts.flushMs.push(flushed - start);
    parts.commitMs.push(end - flushed);
    parts.groupChanges.push(changes);
    for (const at of waiting) {
      parts.groupWaitMs.push(start - at);
      parts.decodedToCommittedMs.push(end - at);
    }
  };
  return parts;
}

const spread = (values: number[]) => ({
  samples: values.length,
  p50: round(percentile(values, 50), 4),
  p99: round(percentile(values, 99), 4),
  max: round(Math.max(...values), 4),
});

async function lagRun(variant: Variant, urls: Urls, tps: number, seconds: number): Promise<void> {
  const arrivals = await instrumentArrivals(variant);
  const commits = await instrumentCommits(variant);
  const config = await configOf(variant);
  const ctx: BenchContext = { profile: { ...QUICK, lagSeconds: seconds }, log: console.error };
  const statements0 = targetTraffic.statements;
  const make = () =>
    variant.engine.createEngine({
      config,
      sourceUrl: urls.sourceUrl,
      targetUrl: urls.targetUrl,
      logger: variant.engine.silentLogger,
      lagIntervalMs: 0,
    });
  const cpu0 = process.cpuUsage();
  const lag = await measureLag(ctx, urls.sourceUrl, urls.targetUrl, make, tps);
  const cpu = process.cpuUsage(cpu0);
  const changes = lag.achievedChangesPerS * seconds;
  console.log(
    JSON.stringify(
      {
        variant: variant.name,
        ...lag,
        sourceCommitToEngineMs: {
          samples: arrivals.length,
          p50: round(percentile(arrivals, 50), 4),
          p99: round(percentile(arrivals, 99), 4),
          max: round(Math.max(...arrivals), 4),
        },
        engine: {
          decodedToCommittedMs: spread(commits.decodedToCommittedMs),
          groupWaitMs: spread(commits.groupWaitMs),
          flushMs: spread(commits.flushMs),
          positionAndCommitMs: spread(commits.commitMs),
          changesPerTargetCommit: spread(commits.groupChanges),
        },
        changesPerStatement: round(changes / (targetTraffic.statements - statements0), 3),
        engineCpuUsPerChange: round(((cpu.user + cpu.system) / changes) * 1, 3),
      },
      null,
      2,
    ),
  );
}

/**
 * Where a `.cpuprofile`'s busy time went, by part of the engine. Each sample goes to
 * the first part (in this order) that a frame of its stack belongs to, so the socket
 * write under a statement counts as sending it, not as a node internal.
 */
const PROFILE_PARTS: readonly [string, RegExp][] = [
  [
    'start-up (loading modules, migrate, bench set-up)',
    /loader|translators|src\/migrate\/|kysely\/|zod\/|esbuild|engine-ab\.ts:(prepare|makeBacklog|auditRows|endedChildrenCpuMs)$/,
  ],
  ['decode pgoutput', /src\/engine\/pgoutput\.ts/],
  [
    'build statement text',
    /src\/engine\/staging-writer\.ts:(statementFor|insertStatement|updateStatement|statementName)/,
  ],
  [
    'send a statement (node-postgres: serialise parameters, socket write)',
    /pg\/lib\/(client|query|utils)\.js:(query|submit|_pulseQueryQueue|prepareValue|arrayString|escapeElement|cloneQueryConfig)/,
  ],
  ['read replies and the stream (socket read, pg-protocol parse)', /onStreamRead|pg-protocol\//],
  ['batch changes (staging-writer)', /src\/engine\/staging-writer\.ts/],
  [
    'apply loop (headers, values, group, commit)',
    /src\/engine\/(stream-applier|relation-binding|change-sequence|pg-time|lsn|transaction-group|schema-change-positions)\.ts/,
  ],
  ['replication stream (queue)', /src\/engine\/replication-connection\.ts/],
  ['node-postgres other', /pg\/lib\//],
];

async function summarise(file: string): Promise<void> {
  const profile = JSON.parse(await readFile(file, 'utf8')) as {
    nodes: {
      id: number;
      callFrame: { functionName: string; url: string };
      children?: number[];
    }[];
    samples: number[];
    timeDeltas: number[];
  };
  const byId = new Map(profile.nodes.map((node) => [node.id, node]));
  const parent = new Map<number, number>();
  for (const node of profile.nodes)
    for (const child of node.children ?? []) parent.set(child, node.id);
  const frameText = (id: number) => {
    const { functionName, url } = byId.get(id)!.callFrame;
    return `${url.replace(/^.*node_modules\//, '')}:${functionName}`;
  };
  const partOf = (leaf: number): string => {
    const self = byId.get(leaf)!.callFrame;
    if (self.url === '' && self.functionName.startsWith('(')) return self.functionName;
    const frames: string[] = [];
    for (let id: number | undefined = leaf; id !== undefined; id = parent.get(id))
      frames.push(frameText(id));
    return (
      PROFILE_PARTS.find(([, pattern]) => frames.some((frame) => pattern.test(frame)))?.[0] ??
      `other: ${frames.slice(0, 3).join(' < ')}`
    );
  };
  const totals = new Map<string, number>();
  profile.samples.forEach((id, index) => {
    const part = partOf(id);
    totals.set(part, (totals.get(part) ?? 0) + (profile.timeDeltas[index] ?? 0));
  });
  const startUp = PROFILE_PARTS[0]![0];
  const busy = [...totals]
    .filter(([part]) => part !== '(idle)' && part !== startUp)
    .reduce((sum, [, us]) => sum + us, 0);
  for (const [part, us] of [...totals].sort((a, b) => b[1] - a[1]))
    console.log(
      `${(us / 1000).toFixed(0).padStart(8)} ms  ${part === '(idle)' || part === startUp ? '      ' : `${((100 * us) / busy).toFixed(1).padStart(5)}%`}  ${part}`,
    );
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      base: { type: 'string' },
      kit: { type: 'string', multiple: true, default: [] },
      rounds: { type: 'string', default: '10' },
      workload: { type: 'string', default: 'items:1' },
      changes: { type: 'string', default: '10000' },
      lag: { type: 'string' },
      seconds: { type: 'string', default: '15' },
      summarise: { type: 'string' },
    },
    allowPositionals: false,
  });
  if (values.summarise) return summarise(values.summarise);
  const kits = kitOptions(values.kit);
  if (values.base && kits.length > 0) throw new Error('--base and --kit do not go together');
  instrumentTargetQueries();
  observeGc();
  const variants = await loadVariants(values.base, kits);
  const servers = await startServers();
  try {
    const urls = await prepare(servers, variants);
    if (values.lag) {
      for (const [index, variant] of variants.entries())
        await lagRun(variant, urls[index]!, Number(values.lag), Number(values.seconds));
      return;
    }
    await abRuns(variants, urls, {
      rounds: Number(values.rounds),
      workload: values.workload,
      changes: Number(values.changes),
    });
  } finally {
    await servers.stop();
  }
}

main().catch((error: unknown) => {
  console.error(error instanceof Error ? error.stack : error);
  process.exit(2);
});

/**
 * Where case 1's capture CPU goes, by process, at a fixed offered rate (#14, B/C and
 * B/D), not a bench case. Case B's TPS is what the capture's CPU leaves to pgbench on
 * two shared cores, so this counts CPU-seconds per 10,000 source changes for each
 * process while pgbench offers a fixed rate (`pgbench -R`), instead of TPS under load:
 *
 * - `B` (the kit's live capture): the source's walsender (pgoutput), this process (the
 *   engine, in it as in the bench's case B), the target's backends (staging writes and
 *   the audit triggers), each server's background processes, the backends that ended
 *   during the run (pgbench's sessions on the source) and pgbench's own client;
 * - `D` (the floor): the same for the source, and `pg_recvlogical` writing to /dev/null.
 *
 * A live process's CPU is read from `/proc/<pid>/stat` (utime + stime) at the start and
 * the end of the measured window; an ended backend's from its postmaster's `cutime +
 * cstime`, pgbench's client from this process's. The window opens once the consumer
 * streams, and closes once the workload is applied (B: its audit rows stop growing) or
 * confirmed (D: the slot). The variants alternate each round, after a warm-up round.
 * This process also runs the end check's count queries, so the engine's figure
 * includes them (a few a round). Statements and target commits are counted as sent.
 *
 * With `--tps 0` pgbench runs unthrottled, as in case 1: the figures per change are then
 * those of a capture that is behind, and each round also reports the cores each process
 * used while pgbench ran and how many changes B had applied by its end.
 *
 * Usage: `npx tsx bench/tools/capture-cpu.ts [--tps N] [--seconds S] [--rounds R]
 *         [--variants B,D] [--durable]` (`--durable`: see {@link workloadOptions})
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { readdir, readFile } from 'node:fs/promises';
import { performance } from 'node:perf_hooks';
import path from 'node:path';
import { parseArgs } from 'node:util';
import pg from 'pg';
import { createEngine, defaultSlotName, silentLogger } from '../../src/engine';
import { prepareItemsDatabases } from '../lib/engine-capture';
import { PG_BIN, sleep, stopChild } from '../lib/processes';
import { startServers, withClient } from '../lib/servers';
import { median, round } from '../lib/stats';
import {
  CHANGES_PER_TRANSACTION,
  createWorkloadTables,
  runPgbench,
  WORKLOAD_TABLES,
} from '../lib/workload';

const USER_HZ = 100; // clock ticks per second in /proc/<pid>/stat on Linux
const FLOOR_SLOT = 'capture_cpu_floor_slot';
const FLOOR_PUBLICATION = 'capture_cpu_floor_pub';

/** Statements and COMMITs sent on connections to the target database, counted as sent. */
const targetTraffic = { database: '', statements: 0, commits: 0 };

function countTargetStatements(): void {
  const query = pg.Client.prototype.query as (...args: unknown[]) => unknown;
  (pg.Client.prototype as unknown as { query: unknown }).query = function (
    this: pg.Client,
    ...args: unknown[]
  ) {
    if (this.database === targetTraffic.database) {
      targetTraffic.statements++;
      const first = args[0];
      const text = typeof first === 'string' ? first : (first as { text?: string }).text;
      if (text === 'COMMIT') targetTraffic.commits++;
    }
    return query.apply(this, args);
  };
}

/** A process's CPU (ms) and what it is, from /proc. */
interface ProcessCpu {
  readonly title: string;
  readonly cpuMs: number;
}

async function statFields(pid: number): Promise<string[] | null> {
  try {
    const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  } catch {
    return null; // exited
  }
}

/** utime + stime of a live process (ms), or null once it has exited. */
async function processCpuMs(pid: number): Promise<number | null> {
  const fields = await statFields(pid);
  // After the command: state is field 3 (index 0), utime 14 (index 11), stime 15.
  return fields ? ((Number(fields[11]) + Number(fields[12])) * 1000) / USER_HZ : null;
}

/** CPU (ms) of this process's ended and reaped children (pgbench, pg_recvlogical). */
async function reapedChildrenCpuMs(): Promise<number> {
  const fields = (await statFields(process.pid))!;
  return ((Number(fields[13]) + Number(fields[14])) * 1000) / USER_HZ;
}

/** A server's processes: its live children by pid, and what its ended children used. */
interface ServerSnapshot {
  readonly children: Map<number, ProcessCpu>;
  readonly endedChildrenMs: number;
}

async function postmasterPid(url: string): Promise<number> {
  const dataDir = await withClient(url, async (client) => {
    const { rows } = await client.query<{ data_directory: string }>('SHOW data_directory');
    return rows[0]!.data_directory;
  });
  return Number((await readFile(path.join(dataDir, 'postmaster.pid'), 'utf8')).split('\n')[0]);
}

async function snapshotServer(postmaster: number): Promise<ServerSnapshot> {
  const children = new Map<number, ProcessCpu>();
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const pid = Number(entry);
    const fields = await statFields(pid);
    if (!fields || Number(fields[1]) !== postmaster) continue;
    const title = (await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => ''))
      .replace(/\0/g, ' ')
      .trim();
    children.set(pid, {
      title,
      cpuMs: ((Number(fields[11]) + Number(fields[12])) * 1000) / USER_HZ,
    });
  }
  const own = (await statFields(postmaster))!;
  return { children, endedChildrenMs: ((Number(own[13]) + Number(own[14])) * 1000) / USER_HZ };
}

/** How a server process's title reads: walsender, background worker, or a client backend. */
function roleOf(title: string): string {
  if (/walsender/.test(title)) return 'walsender';
  if (
    /checkpointer|background writer|walwriter|autovacuum|logical replication launcher|stats collector|archiver/.test(
      title,
    )
  )
    return 'background';
  return 'backends';
}

/**
 * CPU (ms) per role between two snapshots of one server: the live children's growth
 * (a child born in the window counts from zero), and the ended children's as `ended`.
 * `exclude` names this process's own control connections.
 */
function serverCpu(
  before: ServerSnapshot,
  after: ServerSnapshot,
  exclude: ReadonlySet<number> = new Set(),
): Record<string, number> {
  const totals: Record<string, number> = {
    walsender: 0,
    background: 0,
    backends: 0,
    ended: after.endedChildrenMs - before.endedChildrenMs,
  };
  for (const [pid, now] of after.children) {
    if (exclude.has(pid)) continue;
    const role = roleOf(now.title);
    totals[role] = (totals[role] ?? 0) + now.cpuMs - (before.children.get(pid)?.cpuMs ?? 0);
  }
  // A child alive at the start and gone at the end is in `ended` with all its CPU, not
  // only the window's: take its CPU before the window out again.
  for (const [pid, then] of before.children)
    if (!after.children.has(pid) && !exclude.has(pid)) totals.ended! -= then.cpuMs;
  return totals;
}

/**
 * `--durable`: pgbench's commits wait for their WAL flush (`synchronous_commit = on` in its
 * sessions), as a production source's do, so changes reach the walsender as they commit
 * instead of in the WAL writer's bursts (every 200 ms with the servers' setting).
 */
const workloadOptions = { durableCommits: false };

/** CPU (ms) over a window of `wallMs` as cores (CPU seconds per second). */
function cores(wallMs: number, cpuMs: Record<string, number>): Record<string, number> {
  return Object.fromEntries(
    Object.entries(cpuMs).map(([name, ms]) => [name, round(ms / wallMs, 3)]),
  );
}

interface Urls {
  readonly sourceUrl: string;
  readonly targetUrl: string;
}

/** One measured window: per-process CPU (ms) and the changes made. */
interface Window {
  readonly changes: number;
  readonly achievedTps: number;
  readonly cpuMs: Record<string, number>;
  /**
   * While pgbench ran (its end, not the capture's): each process's CPU in cores (CPU
   * seconds per second), and for B the changes applied by then. Unthrottled (`--tps 0`),
   * this is case 1's B and D: how the two cores were shared.
   */
  readonly duringWorkload: { readonly cores: Record<string, number>; readonly applied?: number };
  /** B: statements and target commits the engine sent in the window. */
  readonly statements?: number;
  readonly commits?: number;
}

async function countAuditRows(client: pg.Client): Promise<number> {
  const { rows } = await client.query<{ n: string }>('SELECT count(*) AS n FROM audit.audit_log');
  return Number(rows[0]!.n);
}

/** Case B: the kit's engine live in this process while pgbench offers `tps`. */
async function liveWindow(
  urls: Urls,
  pids: { source: number; target: number },
  config: Parameters<typeof createEngine>[0]['config'],
  tps: number,
  seconds: number,
): Promise<Window> {
  const engine = createEngine({
    config,
    sourceUrl: urls.sourceUrl,
    targetUrl: urls.targetUrl,
    logger: silentLogger,
    lagIntervalMs: 0,
  });
  const running = engine.run();
  running.catch(() => undefined);
  while (engine.status().phase !== 'streaming' && engine.status().phase !== 'stopped')
    await sleep(20);
  await sleep(500);
  return withClient(urls.targetUrl, async (checker) => {
    const own = new Set([
      Number((await checker.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0]!.pid),
    ]);
    const before = await countAuditRows(checker);
    const [source0, target0] = await Promise.all([
      snapshotServer(pids.source),
      snapshotServer(pids.target),
    ]);
    const node0 = process.cpuUsage();
    const reaped0 = await reapedChildrenCpuMs();
    const traffic0 = { ...targetTraffic };
    const workloadStart = performance.now();
    const workload = await caseOneWorkload(urls.sourceUrl, seconds, tps, workloadOptions);
    const workloadMs = performance.now() - workloadStart;
    const nodeAtEnd = process.cpuUsage(node0);
    const [sourceAtEnd, targetAtEnd, reapedAtEnd, appliedAtEnd] = await Promise.all([
      snapshotServer(pids.source),
      snapshotServer(pids.target),
      reapedChildrenCpuMs(),
      countAuditRows(checker),
    ]);
    const changes = workload.transactions * CHANGES_PER_TRANSACTION;
    // pgbench's UPDATE with a delta of 0 changes nothing and records no version, so
    // the window closes when the audit rows stop growing (the engine commits a group
    // within 500 ms), with at least all but 0.1% of the changes in.
    const deadline = Date.now() + 120_000;
    let seen = -1;
    for (;;) {
      const now = (await countAuditRows(checker)) - before;
      if (now === seen && now >= changes * 0.999) break;
      if (Date.now() > deadline)
        throw new Error(`the engine applied ${now} of ${changes} in 120 s`);
      seen = now;
      await sleep(now >= changes * 0.999 ? 1000 : 100);
    }
    const node = process.cpuUsage(node0);
    const pgbenchClient = (await reapedChildrenCpuMs()) - reaped0;
    const statements = targetTraffic.statements - traffic0.statements;
    const commits = targetTraffic.commits - traffic0.commits;
    const [source1, target1] = await Promise.all([
      snapshotServer(pids.source),
      snapshotServer(pids.target),
    ]);
    await engine.stop();
    await running;
    const source = serverCpu(source0, source1);
    const target = serverCpu(target0, target1, own);
    const sourceDuring = serverCpu(source0, sourceAtEnd);
    const targetDuring = serverCpu(target0, targetAtEnd, own);
    return {
      changes,
      achievedTps: workload.tps,
      statements,
      commits,
      duringWorkload: {
        applied: appliedAtEnd - before,
        cores: cores(workloadMs, {
          'source walsender': sourceDuring.walsender!,
          'source ended backends (pgbench)': sourceDuring.ended!,
          'pgbench client': reapedAtEnd - reaped0,
          'engine (node)': (nodeAtEnd.user + nodeAtEnd.system) / 1000,
          'target backends (engine)': targetDuring.backends!,
        }),
      },
      cpuMs: {
        'source walsender': source.walsender!,
        'source ended backends (pgbench)': source.ended!,
        'source background': source.background!,
        'source other live backends': source.backends!,
        'pgbench client': pgbenchClient,
        'engine (node)': (node.user + node.system) / 1000,
        'target backends (engine)': target.backends!,
        'target ended backends': target.ended!,
        'target background': target.background!,
      },
    };
  });
}

/** Case D: pg_recvlogical on a pgoutput slot of the workload's tables, to /dev/null. */
async function floorWindow(
  urls: Urls,
  pids: { source: number },
  tps: number,
  seconds: number,
): Promise<Window> {
  await withClient(urls.sourceUrl, (client) =>
    client.query(`SELECT pg_create_logical_replication_slot($1, 'pgoutput')`, [FLOOR_SLOT]),
  );
  const consumer: ChildProcess = spawn(
    path.join(PG_BIN, 'pg_recvlogical'),
    [
      ...['-d', urls.sourceUrl, '--slot', FLOOR_SLOT, '--start'],
      ...['-o', 'proto_version=1', '-o', `publication_names=${FLOOR_PUBLICATION}`],
      ...['-F', '0', '-s', '1', '-f', '/dev/null'],
    ],
    { stdio: ['ignore', 'ignore', 'inherit'] },
  );
  try {
    await sleep(1000);
    const source0 = await snapshotServer(pids.source);
    const consumer0 = (await processCpuMs(consumer.pid!)) ?? 0;
    const reaped0 = await reapedChildrenCpuMs();
    const workloadStart = performance.now();
    const workload = await caseOneWorkload(urls.sourceUrl, seconds, tps, workloadOptions);
    const workloadMs = performance.now() - workloadStart;
    const [sourceAtEnd, reapedAtEnd, consumerAtEnd] = await Promise.all([
      snapshotServer(pids.source),
      reapedChildrenCpuMs(),
      processCpuMs(consumer.pid!),
    ]);
    await withClient(urls.sourceUrl, async (client) => {
      const { rows } = await client.query<{ lsn: string }>(
        'SELECT pg_current_wal_lsn()::text AS lsn',
      );
      for (let tries = 0; tries < 1200; tries++) {
        const done = await client.query<{ done: boolean }>(
          'SELECT confirmed_flush_lsn >= $2::pg_lsn AS done FROM pg_replication_slots WHERE slot_name = $1',
          [FLOOR_SLOT, rows[0]!.lsn],
        );
        if (done.rows[0]?.done) return;
        await sleep(100);
      }
      throw new Error('pg_recvlogical did not confirm the workload in 120 s');
    });
    const pgbenchClient = (await reapedChildrenCpuMs()) - reaped0;
    const consumer1 = (await processCpuMs(consumer.pid!)) ?? consumer0;
    const source = serverCpu(source0, await snapshotServer(pids.source));
    const sourceDuring = serverCpu(source0, sourceAtEnd);
    return {
      changes: workload.transactions * CHANGES_PER_TRANSACTION,
      achievedTps: workload.tps,
      duringWorkload: {
        cores: cores(workloadMs, {
          'source walsender': sourceDuring.walsender!,
          'source ended backends (pgbench)': sourceDuring.ended!,
          'pgbench client': reapedAtEnd - reaped0,
          pg_recvlogical: (consumerAtEnd ?? consumer0) - consumer0,
        }),
      },
      cpuMs: {
        'source walsender': source.walsender!,
        'source ended backends (pgbench)': source.ended!,
        'source background': source.background!,
        'source other live backends': source.backends!,
        'pgbench client': pgbenchClient,
        pg_recvlogical: consumer1 - consumer0,
      },
    };
  } finally {
    await stopChild(consumer);
    await withClient(urls.sourceUrl, (client) =>
      client.query('SELECT pg_drop_replication_slot($1)', [FLOOR_SLOT]),
    );
  }
}

/** Moves the engine's slot (and the target's acknowledged position) to the source's end. */
async function discardBacklog(urls: Urls, slot: string): Promise<void> {
  const lsn = await withClient(urls.sourceUrl, async (client) => {
    const { rows } = await client.query<{ lsn: string }>(
      'SELECT end_lsn::text AS lsn FROM pg_replication_slot_advance($1, pg_current_wal_lsn())',
      [slot],
    );
    return rows[0]!.lsn;
  });
  await withClient(urls.targetUrl, (client) =>
    client.query(
      `UPDATE audit.cdc_engine_position SET acked_lsn = $2::pg_lsn
        WHERE slot_name = $1 AND (acked_lsn IS NULL OR acked_lsn < $2::pg_lsn)`,
      [slot, lsn],
    ),
  );
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      tps: { type: 'string', default: '300' },
      seconds: { type: 'string', default: '20' },
      durable: { type: 'boolean', default: false },
      rounds: { type: 'string', default: '3' },
      variants: { type: 'string', default: 'B,D' },
    },
  });
  const tps = Number(values.tps);
  const seconds = Number(values.seconds);
  const variants = values.variants.split(',');
  workloadOptions.durableCommits = values.durable;
  const rounds = Number(values.rounds);
  if (!Number.isInteger(rounds) || rounds < 1 || !(tps >= 0) || !(seconds > 0))
    throw new Error('--rounds takes a whole number ≥ 1, --tps a rate ≥ 0, --seconds a time > 0');
  if (variants.some((variant) => variant !== 'B' && variant !== 'D'))
    throw new Error(`--variants takes B and D, got ${values.variants}`);
  const servers = await startServers();
  try {
    const tables = ['items', ...WORKLOAD_TABLES];
    const { sourceUrl, targetUrl, config } = await prepareItemsDatabases(
      servers,
      'capture_cpu',
      tables,
      (url) => createWorkloadTables(url, 10_000),
    );
    const urls = { sourceUrl, targetUrl };
    targetTraffic.database = new URL(targetUrl).pathname.slice(1);
    countTargetStatements();
    await createEngine({
      config,
      sourceUrl,
      targetUrl,
      logger: silentLogger,
      lagIntervalMs: 0,
    }).runUntilIdle();
    await withClient(sourceUrl, (client) =>
      client.query(
        `CREATE PUBLICATION ${FLOOR_PUBLICATION} FOR TABLE ${WORKLOAD_TABLES.map((t) => `public.${t}`).join(', ')}`,
      ),
    );
    const slot = defaultSlotName(sourceUrl, targetUrl, config.auditSchema);
    const pids = {
      source: await postmasterPid(sourceUrl),
      target: await postmasterPid(targetUrl),
    };
    const windows = new Map<string, Window[]>(variants.map((v) => [v, []]));
    // Round 0 warms up (JIT, plan and catalog caches): not counted.
    for (let roundIndex = 0; roundIndex <= rounds; roundIndex++) {
      const order = roundIndex % 2 === 0 ? variants : [...variants].reverse();
      for (const variant of order) {
        await discardBacklog(urls, slot);
        await withClient(sourceUrl, (client) => client.query('CHECKPOINT'));
        const window =
          variant === 'B'
            ? await liveWindow(urls, pids, config, tps, seconds)
            : await floorWindow(urls, pids, tps, seconds);
        const per10k = Object.entries(window.cpuMs)
          .map(([name, ms]) => `${name} ${round((ms * 10_000) / window.changes, 3)}`)
          .join(', ');
        const traffic =
          window.statements === undefined
            ? ''
            : `; ${window.statements} statements (the checker's count queries included), ${window.commits} target commits`;
        const during = window.duringWorkload;
        const shares = Object.entries(during.cores)
          .map(([name, value]) => `${name} ${value}`)
          .join(', ');
        const applied =
          during.applied === undefined ? '' : `, ${during.applied} changes applied by then`;
        console.error(
          `round ${roundIndex} ${variant}: ${window.changes} changes at ${round(window.achievedTps, 4)} tps${traffic}; ms per 10,000 changes: ${per10k}; ` +
            `cores while pgbench ran: ${shares}${applied}`,
        );
        if (roundIndex > 0) windows.get(variant)!.push(window);
      }
    }
    const summary = Object.fromEntries(
      [...windows].map(([variant, list]) => {
        const names = Object.keys(list[0]!.cpuMs);
        const per = (name: string) =>
          list.map((w) => round((w.cpuMs[name]! * 10_000) / w.changes, 3));
        return [
          variant,
          {
            rounds: list.length,
            offeredTps: tps,
            achievedTps: list.map((w) => round(w.achievedTps, 4)),
            ...(list[0]!.commits === undefined
              ? {}
              : {
                  changesPerTargetCommit: list.map((w) => round(w.changes / w.commits!, 3)),
                  statementsPerTargetCommit: list.map((w) => round(w.statements! / w.commits!, 3)),
                }),
            coresWhilePgbenchRan: Object.fromEntries(
              Object.keys(list[0]!.duringWorkload.cores).map((name) => [
                name,
                round(median(list.map((w) => w.duringWorkload.cores[name]!)), 3),
              ]),
            ),
            ...(list[0]!.duringWorkload.applied === undefined
              ? {}
              : { appliedWhilePgbenchRan: list.map((w) => w.duringWorkload.applied) }),
            cpuMsPer10kChanges: Object.fromEntries(
              names.map((name) => {
                const each = per(name);
                return [
                  name,
                  {
                    median: round(median(each), 3),
                    min: Math.min(...each),
                    max: Math.max(...each),
                  },
                ];
              }),
            ),
          },
        ];
      }),
    );
    console.log(JSON.stringify(summary, null, 2));
  } finally {
    await servers.stop();
  }
}

main().catch((error: unknown) => {
  console.error(error instanceof Error ? error.stack : error);
  process.exit(2);
});

/** Case 1's pgbench workload (2 clients, 10,000 accounts), at `tps` offered (0: unthrottled). */
function caseOneWorkload(
  url: string,
  seconds: number,
  tps: number,
  options: { readonly durableCommits: boolean },
): ReturnType<typeof runPgbench> {
  return runPgbench({
    url,
    accounts: 10_000,
    seconds,
    clients: 2,
    ...(tps > 0 ? { rate: tps } : {}),
    durableCommits: options.durableCommits,
  });
}

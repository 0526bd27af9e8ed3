/**
 * Instructions per change (or per transaction) of a PostgreSQL backend, counted by
 * `valgrind --tool=callgrind`: a figure the machine's load cannot move, for A/B tests
 * of the capture path on a shared machine where wall-clock ratios are noise.
 *
 * Usage: `npx tsx bench/tools/instructions.ts [--case dms|engine|dms-json|engine-json|context|all]
 *         [--transactions N] [--rows N] [--rounds R] [--kit NAME=DIR]... [--functions K [--inclusive]]
 *         [--floor] [--keep DIR]`
 *
 * For each variant of a case, a throw-away cluster (Debian's PostgreSQL, `BENCH_PG_BIN`)
 * is prepared with a normal server, then started again under callgrind
 * (`--trace-children=yes`: every backend forked by the postmaster writes its own count
 * when it exits). pgbench (`-M prepared -c 1`, the bench's own scripts) runs N and then
 * 2N transactions, each run on its own connection; the backend's count for 2N minus its
 * count for N, divided by the changes (or transactions) in N, is the steady cost of one:
 * connection start-up, plan caching and catalog-cache warm-up cancel out. A one-transaction
 * run before them, not counted, takes what only a database's first backend pays. With
 * `--rounds R` the N/2N pair runs R times per variant, the variants interleaved (the
 * order rotating each round); the figure is the median, with the range.
 *
 * Cases:
 * - `dms` (case 3b, `dms_apply_ratio`): DMS-shaped one-row statements into staging
 *   (5 INSERTs then 5 UPDATEs per transaction), the audit triggers on vs off;
 * - `engine` (case 3, `target_trigger_apply_ratio`): the engine's statement shapes, one
 *   100-row INSERT ... ON CONFLICT then one 100-row UPDATE per transaction, on vs off
 *   (`--rows N`: N rows per statement instead; case 1's catch-up sends about 10);
 * - `dms-json`, `engine-json` (#14): the same statement shapes on a `documents` table with
 *   jsonb, json and text[] columns (bench/lib/staged-tables.ts), whose rows the capture
 *   functions also render with row_to_json and record_out;
 * - `context` (case 1b, #13): the source workload (3 changes per transaction) with the
 *   context row in the BEGIN round trip vs without.
 *
 * `--floor` (staging cases) adds three variants that record one plain audit row per change
 * and nothing else (bench/lib/capture-floor.ts): a plain row trigger, the same into a log
 * without indexes, and a rewrite rule: the cost floor of any capture that writes the
 * audit row while the change is applied.
 *
 * `--kit NAME=DIR` (repeatable; every case but `context`) adds a variant: the kit as another
 * checkout at DIR installs it (its own `migrateTarget`, so its own trigger SQL), run in
 * the same cluster as this checkout's. That is how a change to triggers/*.sql is
 * measured against the code before it (`git worktree add --detach DIR main`, with
 * node_modules linked from this checkout).
 *
 * With `--functions K` it also lists the K functions whose exclusive instructions per
 * change grew most between N and 2N (callgrind_annotate on both outputs, last round),
 * which says where one change's instructions go; with `--inclusive`, counted with their
 * callees (what a component such as `to_jsonb` or `ExecInsertIndexTuples` costs in all).
 *
 * Hand-written rather than a library: this drives valgrind and pgbench, and no package
 * does that.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { chmod, chown, mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { LOGICAL_REPLICATION_SETTINGS, findFreePort } from '../../src/postgres/local-server';
import { quoteIdent, quoteQualified } from '../../src/postgres/identifiers';
import { stagingTableName } from '../../src/staging/header-columns';
import { dmsScript, ROWS_PER_TRANSACTION } from '../cases/dms-apply';
import { engineShapedScript, ROWS_PER_STATEMENT } from '../cases/target-trigger';
import { prepareContextWorkload } from '../cases/source-context';
import type { AuditTrailConfig } from '../../src/config';
import { benchConfig } from '../lib/engine-capture';
import { PG_BIN, run } from '../lib/processes';
import { BENCH_SETTINGS, withClient } from '../lib/servers';
import { DOCUMENTS_TABLE, ITEMS_TABLE, type StagedTable } from '../lib/staged-tables';
import { median } from '../lib/stats';
import { installCaptureFloor, type CaptureFloor } from '../lib/capture-floor';
import { stagingTriggerSwitch } from '../lib/staging-triggers';
import { workloadScript } from '../lib/workload';

/** One measured variant: a database prepared on a cluster, and the pgbench script to run in it. */
interface Variant {
  readonly name: string;
  readonly database: string;
  readonly script: string;
  /** pgbench `-D` variables per run (`run` counts runs, so keys never repeat). */
  readonly variables: (run: number) => string[];
}

/** Another checkout whose kit is measured beside this one's (`--kit NAME=DIR`). */
interface Kit {
  readonly name: string;
  readonly dir: string;
}

/** A case: its variants, what one unit is, and how many per transaction. */
interface InstructionCase {
  readonly name: string;
  readonly unit: 'change' | 'transaction';
  readonly unitsPerTransaction: number;
  prepare(
    cluster: Cluster,
    kits: readonly Kit[],
    floors: readonly CaptureFloor[],
  ): Promise<Variant[]>;
}

/** Settings of the measured servers: the bench's, plus no autovacuum (nothing else runs). */
const SETTINGS: Record<string, string | number> = {
  ...LOGICAL_REPLICATION_SETTINGS,
  ...BENCH_SETTINGS,
  autovacuum: 'off',
};

type MigrateTarget = (options: {
  config: AuditTrailConfig;
  sourceUrl: string;
  targetUrl: string;
}) => Promise<unknown>;

/** `migrateTarget` of this checkout, or of the checkout at `dir`. */
async function migrateTargetOf(dir?: string): Promise<MigrateTarget> {
  const module = (await (dir
    ? import(path.resolve(dir, 'src/migrate/migrate-target.ts'))
    : import('../../src/migrate/migrate-target'))) as { migrateTarget: MigrateTarget };
  return module.migrateTarget;
}

/**
 * A case writing `table`'s staging table with `script`: the kit installed on
 * `<name>_on`, a copy with every staging trigger disabled (`<name>_off`), and one database
 * per `--kit`, installed by that checkout. (`name` is a database name prefix: `-` becomes `_`.)
 */
function stagingCase(
  name: string,
  table: StagedTable,
  changesPerTransaction: number,
  scriptFor: (staging: string) => string,
): InstructionCase {
  const prefix = name.replace(/-/g, '_');
  return {
    name,
    unit: 'change',
    unitsPerTransaction: changesPerTransaction,
    async prepare(cluster, kits, floors) {
      const source = `${prefix}_source`;
      await cluster.createDatabase(source);
      await withClient(cluster.url(source), (client) => client.query(table.ddl));
      const config = benchConfig([table.name]);
      const install = async (database: string, dir?: string) => {
        await cluster.createDatabase(database);
        const migrateTarget = await migrateTargetOf(dir);
        await migrateTarget({
          config,
          sourceUrl: cluster.url(source),
          targetUrl: cluster.url(database),
        });
      };
      await install(`${prefix}_on`);
      await withClient(cluster.url(), (client) =>
        client.query(`CREATE DATABASE ${prefix}_off TEMPLATE ${prefix}_on`),
      );
      const staging = quoteQualified(config.auditSchema, stagingTableName(table.name));
      const { setEnabled } = await stagingTriggerSwitch(cluster.url(`${prefix}_off`), staging);
      await setEnabled(false);
      const script = scriptFor(staging);
      const variables = (n: number) => ['-D', 'n=0', '-D', `base=${1 + n * 100_000_000_000}`];
      const variants: Variant[] = [
        { name: 'triggers off', database: `${prefix}_off`, script, variables },
        { name: 'triggers on', database: `${prefix}_on`, script, variables },
      ];
      for (const [index, kit] of kits.entries()) {
        const database = `${prefix}_kit${index}`;
        await install(database, kit.dir);
        variants.push({ name: `triggers on (${kit.name})`, database, script, variables });
      }
      // PostgreSQL refuses INSERT ... ON CONFLICT on a table with rules: the engine's shape
      // can only be measured against the trigger floors.
      const usable = script.includes('ON CONFLICT') ? floors.filter((f) => f !== 'rule') : floors;
      for (const floor of usable) {
        const database = `${prefix}_floor_${floor}`;
        await withClient(cluster.url(), (client) =>
          client.query(`CREATE DATABASE ${database} TEMPLATE ${prefix}_off`),
        );
        await installCaptureFloor(
          cluster.url(database),
          config.auditSchema,
          { table: stagingTableName(table.name), sourceTable: table.name, key: 'id' },
          floor,
        );
        await assertFloorRecords(
          cluster,
          database,
          script,
          config.auditSchema,
          changesPerTransaction,
        );
        variants.push({ name: `floor: ${floor}`, database, script, variables });
      }
      return variants;
    },
  };
}

/**
 * One transaction of `script` must leave one `floor_log` row per change: a floor that
 * silently recorded nothing would measure as cheap as no capture at all. The rows are
 * removed again so the measured runs start as the other variants do.
 */
async function assertFloorRecords(
  cluster: Cluster,
  database: string,
  script: string,
  auditSchema: string,
  changesPerTransaction: number,
) {
  const url = cluster.url(database);
  await runScript(cluster, database, script, ['-t', '1', '-D', 'n=0', '-D', 'base=1']);
  await withClient(url, async (client) => {
    const log = `${quoteIdent(auditSchema)}.floor_log`;
    const { rows } = await client.query<{ n: string }>(`SELECT count(*) AS n FROM ${log}`);
    if (Number(rows[0]!.n) !== changesPerTransaction)
      throw new Error(
        `the capture floor recorded ${rows[0]!.n} rows for ${changesPerTransaction} changes`,
      );
    await client.query(`TRUNCATE ${log}`);
  });
}

/** DMS's one-row statements on `table`. */
const dmsCase = (name: string, table: StagedTable) =>
  stagingCase(name, table, ROWS_PER_TRANSACTION * 2, (staging) => dmsScript(staging, table));

/** The engine's statements on `table`, `rows` rows each (`--rows`; the catch-up of case 1 sends about 10). */
const engineCase = (name: string, table: StagedTable, rows: number) =>
  stagingCase(name, table, rows * 2, (staging) => engineShapedScript(staging, rows, table));

const CONTEXT_CASE: InstructionCase = {
  name: 'context',
  unit: 'transaction',
  unitsPerTransaction: 1,
  async prepare(cluster) {
    const accounts = 10_000;
    await cluster.createDatabase('context_source');
    const { withBegin } = await prepareContextWorkload(cluster.url('context_source'), accounts);
    const variables = () => [];
    return [
      {
        name: 'plain',
        database: 'context_source',
        script: workloadScript(accounts, 100),
        variables,
      },
      {
        name: 'context row in BEGIN',
        database: 'context_source',
        script: workloadScript(accounts, 100, '', withBegin),
        variables,
      },
    ];
  },
};

const casesWith = (engineRows: number): Record<string, InstructionCase> => ({
  dms: dmsCase('dms', ITEMS_TABLE),
  engine: engineCase('engine', ITEMS_TABLE, engineRows),
  'dms-json': dmsCase('dms-json', DOCUMENTS_TABLE),
  'engine-json': engineCase('engine-json', DOCUMENTS_TABLE, engineRows),
  context: CONTEXT_CASE,
});

/** A throw-away cluster in `dir`, run as the `postgres` OS user when this runs as root. */
class Cluster {
  private server: ChildProcess | null = null;
  private constructor(
    readonly dir: string,
    readonly port: number,
  ) {}

  static async create(dir: string): Promise<Cluster> {
    const cluster = new Cluster(dir, await findFreePort());
    await asServerUser(dir);
    await runAsServerUser(path.join(PG_BIN, 'initdb'), [
      '-D',
      cluster.dataDir,
      '-U',
      'postgres',
      '--auth=trust',
      '--encoding=UTF8',
      '--no-sync',
    ]);
    return cluster;
  }

  get dataDir(): string {
    return path.join(this.dir, 'data');
  }

  url(database = 'postgres'): string {
    return `postgresql://postgres@127.0.0.1:${this.port}/${database}`;
  }

  async createDatabase(name: string): Promise<void> {
    await withClient(this.url(), (client) => client.query(`CREATE DATABASE ${name}`));
  }

  /** Starts the postmaster, under callgrind when `callgrindDir` is given. */
  async start(callgrindDir?: string): Promise<void> {
    const flags = Object.entries({
      ...SETTINGS,
      listen_addresses: '127.0.0.1',
      port: this.port,
      unix_socket_directories: this.dir,
    }).flatMap(([name, value]) => ['-c', `${name}=${value}`]);
    const postgres = [path.join(PG_BIN, 'postgres'), '-D', this.dataDir, ...flags];
    const command = callgrindDir
      ? [
          'valgrind',
          '--tool=callgrind',
          '--trace-children=yes',
          `--callgrind-out-file=${path.join(callgrindDir, 'callgrind.%p')}`,
          ...postgres,
        ]
      : postgres;
    const [file, ...args] = asServerUserCommand(command);
    this.server = spawn(file!, args, { stdio: ['ignore', 'ignore', 'pipe'] });
    let log = '';
    this.server.stderr!.on(
      'data',
      (chunk: Buffer) => (log = (log + chunk.toString()).slice(-4000)),
    );
    const deadline = Date.now() + 300_000;
    for (;;) {
      try {
        await withClient(this.url(), (client) => client.query('SELECT 1'));
        return;
      } catch (error) {
        if (this.server.exitCode !== null || Date.now() > deadline)
          throw new Error(`the server did not start: ${(error as Error).message}\n${log}`);
        await sleep(500);
      }
    }
  }

  async stop(): Promise<void> {
    if (!this.server) return;
    const server = this.server;
    this.server = null;
    if (server.exitCode !== null) return;
    const exited = new Promise((resolve) => server.once('exit', resolve));
    await runAsServerUser(path.join(PG_BIN, 'pg_ctl'), [
      'stop',
      '-D',
      this.dataDir,
      '-m',
      'fast',
      '-w',
      '-t',
      '300',
    ]).catch(() => server.kill('SIGINT'));
    await exited;
  }
}

/**
 * Runs pgbench (no vacuum) with `script` in `database`, the script written beside the
 * cluster's data (readable by the server's user, removed with the cluster).
 */
async function runScript(cluster: Cluster, database: string, script: string, args: string[]) {
  const file = path.join(cluster.dir, `${database}.sql`);
  await writeFile(file, script);
  await run(path.join(PG_BIN, 'pgbench'), ['-n', ...args, '-f', file, cluster.url(database)]);
}

/** Runs `N` transactions of a variant on one connection; returns that backend's instruction count. */
async function countRun(
  cluster: Cluster,
  callgrindDir: string,
  variant: Variant,
  transactions: number,
  runIndex: number,
): Promise<{ instructions: number; file: string }> {
  const before = new Set(await readdir(callgrindDir));
  await runScript(cluster, variant.database, variant.script, [
    '-M',
    'prepared',
    '-c',
    '1',
    '-t',
    String(transactions),
    ...variant.variables(runIndex),
  ]);
  // The backend writes its count as it exits, just after pgbench: wait for it. pgbench
  // also opened (and closed) a connection of its own at start: the largest new count is
  // the one that ran the transactions.
  const deadline = Date.now() + 120_000;
  let best: { instructions: number; file: string } | null = null;
  let stableSince = Date.now();
  let seen = 0;
  while (Date.now() < deadline) {
    const fresh = (await readdir(callgrindDir)).filter((file) => !before.has(file));
    const counts = await Promise.all(
      fresh.map(async (file) => ({
        file,
        instructions: totalInstructions(await readFile(path.join(callgrindDir, file), 'utf8')),
      })),
    );
    const complete = counts.filter((c) => c.instructions !== null) as {
      file: string;
      instructions: number;
    }[];
    if (complete.length !== seen) {
      seen = complete.length;
      stableSince = Date.now();
    }
    best = complete.sort((a, b) => b.instructions - a.instructions)[0] ?? null;
    if (best && complete.length >= 2 && Date.now() - stableSince > 1_000) break;
    if (best && Date.now() - stableSince > 10_000) break;
    await sleep(250);
  }
  if (!best) throw new Error(`no callgrind output from the backend of ${variant.name}`);
  return { instructions: best.instructions, file: path.join(callgrindDir, best.file) };
}

/** The `totals:` (or `summary:`) line of a complete callgrind output, or null. */
function totalInstructions(text: string): number | null {
  const match = /^(?:totals|summary): (\d+)/m.exec(text);
  return match ? Number(match[1]) : null;
}

/** Instructions by function (exclusive, or inclusive of its callees), from callgrind_annotate. */
async function byFunction(file: string, inclusive: boolean): Promise<Map<string, number>> {
  const { stdout } = await run('callgrind_annotate', [
    '--threshold=100',
    `--inclusive=${inclusive ? 'yes' : 'no'}`,
    file,
  ]);
  const result = new Map<string, number>();
  for (const line of stdout.split('\n')) {
    const match = /^\s*([\d,]+)\s+\([^)]*\)\s+(\S.*)$/.exec(line);
    if (!match) continue;
    const name = match[2]!.replace(/ \[[^\]]*\]$/, '').replace(/^.*:/, '');
    result.set(name, (result.get(name) ?? 0) + Number(match[1]!.replace(/,/g, '')));
  }
  return result;
}

interface VariantResult {
  readonly variant: string;
  /** Median over the rounds of (count at 2N − count at N) / units in N. */
  readonly perUnit: number;
  /** Each round's figure, in round order. */
  readonly perRound: number[];
  /** Of the last round. */
  readonly topFunctions?: { name: string; perUnit: number }[];
}

async function measureCase(
  which: InstructionCase,
  options: {
    transactions: number;
    rounds: number;
    functions: number;
    inclusive: boolean;
    kits: readonly Kit[];
    floors: readonly CaptureFloor[];
    keep: string | undefined;
  },
): Promise<VariantResult[]> {
  const { transactions, rounds, functions, keep } = options;
  const dir = keep ?? (await mkdtemp(path.join(os.tmpdir(), `audit-trail-instructions-`)));
  await mkdir(dir, { recursive: true });
  await chmod(dir, 0o755);
  const cluster = await Cluster.create(path.join(dir, which.name));
  const units = transactions * which.unitsPerTransaction;
  try {
    await cluster.start();
    const variants = await which.prepare(cluster, options.kits, options.floors);
    await withClient(cluster.url(), (client) => client.query('CHECKPOINT'));
    await cluster.stop();
    const callgrindDir = path.join(cluster.dir, 'callgrind');
    await asServerUser(callgrindDir);
    await cluster.start(callgrindDir);
    const perRound = new Map(variants.map((variant) => [variant.name, [] as number[]]));
    const top = new Map<string, { name: string; perUnit: number }[]>();
    try {
      let runIndex = 0;
      // Not counted: the first backend of a database after the restart builds its
      // relcache init file (millions of instructions), which would land in N alone and
      // could make 2N - N negative at small N.
      for (const variant of variants) await countRun(cluster, callgrindDir, variant, 1, ++runIndex);
      for (let round = 0; round < rounds; round++) {
        // Interleaved, the order rotating: whatever grows with the log hits every variant alike.
        const order = variants.map((_, i) => variants[(i + round) % variants.length]!);
        for (const variant of order) {
          const small = await countRun(cluster, callgrindDir, variant, transactions, ++runIndex);
          const large = await countRun(
            cluster,
            callgrindDir,
            variant,
            2 * transactions,
            ++runIndex,
          );
          perRound.get(variant.name)!.push((large.instructions - small.instructions) / units);
          if (functions > 0 && round === rounds - 1)
            top.set(
              variant.name,
              await topGrowth(small.file, large.file, units, functions, options.inclusive),
            );
        }
      }
    } finally {
      await cluster.stop();
    }
    return variants.map((variant) => {
      const figures = perRound.get(variant.name)!;
      const topFunctions = top.get(variant.name);
      return {
        variant: variant.name,
        perUnit: median(figures),
        perRound: figures,
        ...(topFunctions ? { topFunctions } : {}),
      };
    });
  } finally {
    await cluster.stop();
    if (!keep) await rm(dir, { recursive: true, force: true });
  }
}

/** The `count` functions whose instructions per unit grew most from N to 2N. */
async function topGrowth(
  small: string,
  large: string,
  units: number,
  count: number,
  inclusive: boolean,
) {
  const [a, b] = await Promise.all([byFunction(small, inclusive), byFunction(large, inclusive)]);
  const growth = [...b].map(([name, total]) => ({
    name,
    perUnit: (total - (a.get(name) ?? 0)) / units,
  }));
  growth.sort((x, y) => y.perUnit - x.perUnit);
  return growth.slice(0, count);
}

function asServerUserCommand(command: readonly string[]): string[] {
  return process.getuid?.() === 0 ? ['runuser', '-u', 'postgres', '--', ...command] : [...command];
}

async function runAsServerUser(file: string, args: readonly string[]) {
  const [command, ...rest] = asServerUserCommand([file, ...args]);
  return run(command!, rest);
}

/** As root, the server runs as `postgres` (PostgreSQL refuses root): give it the folder. */
async function asServerUser(dir: string): Promise<void> {
  await mkdir(dir, { recursive: true });
  if (process.getuid?.() !== 0) return;
  const { stdout } = await run('id', ['-u', 'postgres']);
  const { stdout: group } = await run('id', ['-g', 'postgres']);
  await chown(dir, Number(stdout.trim()), Number(group.trim()));
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

function option(name: string, fallback: string): string {
  const index = process.argv.indexOf(`--${name}`);
  return index >= 0 && process.argv[index + 1] ? process.argv[index + 1]! : fallback;
}

/** Every `--kit NAME=DIR` given. */
function kitOptions(): Kit[] {
  return process.argv.flatMap((arg, index) => {
    if (arg !== '--kit') return [];
    const match = /^([^=]+)=(.+)$/.exec(process.argv[index + 1] ?? '');
    if (!match) throw new Error(`--kit takes NAME=DIR, got ${process.argv[index + 1]}`);
    return [{ name: match[1]!, dir: path.resolve(match[2]!) }];
  });
}

const USAGE =
  'usage: tsx bench/tools/instructions.ts [--case dms|engine|dms-json|engine-json|context|all] [--transactions N] [--rows N] [--rounds R] [--kit NAME=DIR]... [--functions K [--inclusive]] [--floor] [--keep DIR]\n';

/** The options that take a value, and the flags; anything else is refused before a run. */
const VALUE_OPTIONS = [
  '--case',
  '--transactions',
  '--rows',
  '--rounds',
  '--kit',
  '--functions',
  '--keep',
];
const FLAGS = ['--inclusive', '--floor'];

/**
 * `--help` prints the usage and exits 0; an option it does not know (a typo, `-h`) exits 2
 * with the usage. Either way before any cluster starts: a run takes minutes of callgrind,
 * and `--help` used to start one (every case) instead.
 */
function refuseUnknownArguments(): void {
  const args = process.argv.slice(2);
  if (args.includes('--help')) {
    process.stdout.write(USAGE);
    process.exit(0);
  }
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!;
    const value = args[i + 1];
    const refusal = VALUE_OPTIONS.includes(arg)
      ? value === undefined || value.startsWith('--')
        ? `${arg} takes a value`
        : null
      : FLAGS.includes(arg)
        ? null
        : `unknown argument ${JSON.stringify(arg)}`;
    if (refusal) {
      process.stderr.write(`${refusal}\n${USAGE}`);
      process.exit(2);
    }
    if (VALUE_OPTIONS.includes(arg)) i++;
  }
}

async function main(): Promise<void> {
  refuseUnknownArguments();
  const which = option('case', 'all');
  const transactions = Number(option('transactions', '20'));
  const rounds = Number(option('rounds', '1'));
  const rows = Number(option('rows', String(ROWS_PER_STATEMENT)));
  const CASES = casesWith(rows);
  const functions = Number(option('functions', '0'));
  const keep = process.argv.includes('--keep') ? option('keep', '') || undefined : undefined;
  const names = which === 'all' ? Object.keys(CASES) : [which];
  let kits: Kit[];
  try {
    kits = kitOptions();
  } catch (error) {
    process.stderr.write(`${(error as Error).message}\n${USAGE}`);
    process.exit(2);
  }
  if (
    ![transactions, rounds, rows].every((n) => Number.isInteger(n) && n >= 1) ||
    names.some((n) => !CASES[n])
  ) {
    process.stderr.write(USAGE);
    process.exit(2);
  }
  const report: Record<string, unknown> = {};
  for (const name of names) {
    const measured = CASES[name]!;
    const results = await measureCase(measured, {
      transactions,
      rounds,
      functions,
      inclusive: process.argv.includes('--inclusive'),
      kits,
      floors: process.argv.includes('--floor') ? ['trigger', 'bare', 'rule'] : [],
      keep,
    });
    report[name] = { unit: measured.unit, transactions, rounds, results };
    process.stdout.write(
      `\n${name}: instructions per ${measured.unit} (2N - N, N = ${transactions} transactions, median of ${rounds} round(s))\n`,
    );
    for (const r of results) {
      const range =
        r.perRound.length > 1
          ? `  (${Math.round(Math.min(...r.perRound)).toLocaleString('en-US')}–${Math.round(Math.max(...r.perRound)).toLocaleString('en-US')})`
          : '';
      process.stdout.write(
        `  ${r.variant.padEnd(32)} ${Math.round(r.perUnit).toLocaleString('en-US')}${range}\n`,
      );
      for (const f of r.topFunctions ?? [])
        process.stdout.write(
          `      ${Math.round(f.perUnit).toLocaleString('en-US').padStart(10)}  ${f.name}\n`,
        );
    }
    // CPU-bound, a rate goes as 1 / instructions: the ratio the bench figure would show.
    const [baseline, ...others] = results;
    for (const other of others)
      process.stdout.write(
        `  implied rate ratio (${other.variant} / ${baseline!.variant}): ${(baseline!.perUnit / other.perUnit).toFixed(4)}\n`,
      );
  }
  process.stdout.write(`\n${JSON.stringify(report)}\n`);
}

void main().catch((error: unknown) => {
  process.stderr.write(`${(error as Error).stack ?? String(error)}\n`);
  process.exit(2);
});

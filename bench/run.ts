/**
 * `npm run bench [-- --full] [-- --only source,engine,trigger,history,parser]`
 *
 * Runs the benchmark cases, writes `bench/results/latest.json` and prints a table.
 * Every case reports medians and spreads over several rounds; ratios come from cases
 * interleaved in the same run, never from one absolute time.
 */
import { execFileSync } from 'node:child_process';
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { FIGURE_IDS, missing, type Figure, type FigureId } from './lib/figures';
import { describeMachine } from './lib/machine';
import { FULL, QUICK, SMOKE, type BenchContext } from './lib/profile';
import { printTable } from './lib/table';
import { CASES, type CaseName } from './cases';

interface Args {
  readonly full: boolean;
  readonly smoke: boolean;
  readonly only: readonly CaseName[] | null;
  readonly out: string;
}

function parseArgs(argv: readonly string[]): Args {
  let full = false;
  let smoke = false;
  let only: CaseName[] | null = null;
  let out = path.join(__dirname, 'results', 'latest.json');
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === '--full') full = true;
    else if (arg === '--smoke') smoke = true;
    else if (arg === '--quick') full = false;
    else if (arg === '--only' || arg.startsWith('--only=')) {
      const value = arg.includes('=') ? arg.slice('--only='.length) : argv[++i];
      only = (value ?? '').split(',').map((name) => {
        if (!(name in CASES))
          throw new Error(
            `--only: unknown case "${name}"; choose from ${Object.keys(CASES).join(', ')}`,
          );
        return name as CaseName;
      });
    } else if (arg === '--out') out = path.resolve(argv[++i] ?? out);
    else
      throw new Error(
        `unknown argument ${arg}; usage: bench [--full] [--only case,...] [--out file]`,
      );
  }
  return { full, smoke, only, out };
}

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2));
  const profile = args.smoke ? SMOKE : args.full ? FULL : QUICK;
  const started = Date.now();
  const ctx: BenchContext = {
    profile,
    log: (message) =>
      console.error(`[${((Date.now() - started) / 1000).toFixed(0).padStart(4)}s] ${message}`),
  };
  const machine = describeMachine();
  ctx.log(
    `profile ${profile.name} on ${machine.cpus} x ${machine.cpuModel}, load ${machine.loadAverageAtStart.join(' ')}`,
  );
  const figures = new Map<FigureId, Figure>();
  const details: Record<string, unknown> = {};
  for (const [name, bench] of Object.entries(CASES) as [CaseName, (typeof CASES)[CaseName]][]) {
    if (args.only && !args.only.includes(name)) continue;
    ctx.log(`case ${name}: ${bench.title}`);
    const caseStarted = Date.now();
    try {
      const result = await bench.run(ctx);
      for (const item of result.figures) figures.set(item.id, item);
      details[name] = { ...result.detail, seconds: Math.round((Date.now() - caseStarted) / 1000) };
    } catch (error) {
      const message = error instanceof Error ? error.message : String(error);
      ctx.log(`case ${name} failed: ${message}`);
      if (error instanceof Error && error.stack) console.error(error.stack);
      for (const id of bench.figures)
        figures.set(id, missing(id, `case failed: ${message.slice(0, 300)}`));
      details[name] = { error: message };
    }
  }
  const ordered = FIGURE_IDS.map((id) => figures.get(id) ?? missing(id, 'case not run (--only)'));
  const results = {
    profile: profile.name,
    commit: gitDescribe(),
    startedAt: new Date(started).toISOString(),
    durationSeconds: Math.round((Date.now() - started) / 1000),
    machine: {
      ...machine,
      loadAverageAtEnd: (await import('node:os')).loadavg().map((v) => Math.round(v * 100) / 100),
    },
    figures: ordered,
    details,
  };
  await mkdir(path.dirname(args.out), { recursive: true });
  await writeFile(args.out, `${JSON.stringify(results, null, 2)}\n`);
  printTable(ordered, profile.name);
  console.log(`\nwritten ${path.relative(process.cwd(), args.out)} in ${results.durationSeconds}s`);
}

/** The commit measured, and whether the working tree differed from it. */
function gitDescribe(): string {
  try {
    const head = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { encoding: 'utf8' }).trim();
    const dirty = execFileSync(
      'git',
      ['status', '--porcelain', '--', 'src', 'triggers', 'migrations'],
      {
        encoding: 'utf8',
      },
    ).trim();
    return dirty ? `${head} + uncommitted changes in src/triggers/migrations` : head;
  } catch {
    return 'unknown';
  }
}

main().catch((error: unknown) => {
  console.error(error instanceof Error ? error.message : error);
  process.exit(1);
});

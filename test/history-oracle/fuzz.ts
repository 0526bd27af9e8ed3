/**
 * The long run of the history oracle: `npm run fuzz -- --minutes N --seed S
 * [--pipeline engine|dms|both] [--features all|short|base+ASPECT...] [--crashes]
 * [--jit] [--url postgres://...]`.
 * Generates workloads until the time is up (a failure then still shrinks for up to
 * three minutes), on its own embedded server (or `--url`; with `--jit`, Debian's
 * PostgreSQL 15 forced to JIT-compile whatever it can, where nothing the kit runs may
 * compile: #17 item 18),
 * and on a failure prints the shrunk workload as a psql script plus config, and the
 * seed and path that replay it, then reduces it further (see minimizeWorkload: a
 * statement out of its savepoint, two interleaved clients down to the statements that
 * interleave) and prints that. Exit 0 when nothing was found, 1 on a finding.
 */
import { Command, Option } from '@commander-js/extra-typings';
import fc from 'fast-check';
import { startLocalPostgres } from '../../src/postgres/local-server';
import { FEATURE_ASPECTS, featuresFrom } from '../support/oracle/arbitraries';
import { detectJitServer, startJitServer } from '../support/oracle/jit';
import { minimizeWorkload } from '../support/oracle/minimize';
import { historyProperty } from '../support/oracle/property';
import {
  describeFailure,
  runScenario,
  type PipelineKind,
  type ScenarioResult,
} from '../support/oracle/scenario';
import type { Workload } from '../support/oracle/workload';

/** How long a failure found near the deadline may still shrink. */
const SHRINK_ALLOWANCE_MS = 3 * 60_000;

async function main(): Promise<number> {
  const options = new Command('fuzz')
    .option('--minutes <n>', 'how long to run', '5')
    .option(
      '--seed <n>',
      'fast-check seed (printed; replays the run)',
      String(Date.now() % 2 ** 31),
    )
    .option('--path <path>', 'replay one counterexample (the path fast-check printed)')
    .addOption(
      new Option('--pipeline <kind>', 'pipeline under test')
        .choices(['engine', 'dms', 'both'] as const)
        .default('both'),
    )
    .option(
      '--features <set>',
      `all, short, or base+aspect+... (aspects: ${Object.keys(FEATURE_ASPECTS).join(', ')})`,
      'all',
    )
    .option('--crashes', 'kill -9 the engine at random points and restart it (engine only)')
    .option(
      '--jit',
      "on a server that JIT-compiles whatever it can (PostgreSQL 15 with LLVM, or --url with jit_above_cost=0 and pg_stat_statements): the kit's statements must compile nothing",
    )
    .option(
      '--url <url>',
      'superuser URL of a server with wal_level=logical and track_commit_timestamp=on',
    )
    .parse()
    .opts();
  const seed = Number(options.seed);
  const features = featuresFrom(options.features);
  const pipelines: PipelineKind[] =
    options.pipeline === 'both' ? ['engine', 'dms'] : [options.pipeline];
  const deadline = Date.now() + Number(options.minutes) * 60_000;
  console.log(
    `history fuzz: seed ${seed}, ${options.minutes} min, pipelines ${pipelines.join('+')}, features ${options.features}${options.jit ? ', JIT forced on' : ''}`,
  );
  const server = options.url ? undefined : await startServer(Boolean(options.jit));
  const adminUrl = options.url ?? server!.url();
  try {
    let round = 0;
    while (Date.now() < deadline) {
      const pipeline = pipelines[round % pipelines.length]!;
      const roundSeed = seed + round++;
      const result = await fc.check(
        historyProperty({
          adminUrl,
          pipeline,
          features,
          crashes: options.crashes,
          jit: options.jit,
        }),
        {
          seed: roundSeed,
          path: options.path,
          numRuns: options.path ? 1 : 20,
          // Skip (never interrupt) runs after the time is up: an interrupted run is
          // abandoned, not stopped, and its scenario would go on writing (and hold its
          // connections) while the next one starts and the server stops. The allowance
          // lets a failure shrink after the deadline.
          skipAllAfterTimeLimit: Math.max(1000, deadline - Date.now()) + SHRINK_ALLOWANCE_MS,
        },
      );
      // Runs skipped after the time limit make fast-check report failed too, without a
      // counterexample: only a counterexample is a finding.
      const found = result.failed && result.counterexample !== null;
      console.log(
        `round ${round}: ${pipeline}, seed ${roundSeed}: ${result.numRuns} workloads${found ? ', FAILED' : ''}`,
      );
      if (found) {
        console.log(fc.defaultReportMessage(result));
        console.log(
          String((result.errorInstance as Error | undefined)?.message ?? result.errorInstance),
        );
        console.log(
          `replay: npm run fuzz -- --seed ${roundSeed} --pipeline ${pipeline} --features ${options.features} --path "${result.counterexamplePath}"`,
        );
        await reduceFurther((result.counterexample as [Workload])[0], {
          adminUrl,
          pipeline,
          jit: options.jit,
        });
        return 1;
      }
      if (options.path) break;
    }
    console.log('history fuzz: no difference found');
    return 0;
  } finally {
    // A connection still open when the server stops (the engine after a failure)
    // reports "terminating connection"; it must not turn the exit code into a crash.
    process.on('uncaughtException', (error: Error & { code?: string }) => {
      if (error.code === '57P01' || /Connection terminated/.test(error.message)) return;
      throw error;
    });
    await server?.stop();
  }
}

/** The embedded server, or with `jit` Debian's PostgreSQL 15 forced to JIT (see jit.ts). */
async function startServer(jit: boolean): Promise<{ url(): string; stop(): Promise<void> }> {
  if (!jit) return startLocalPostgres();
  const available = detectJitServer();
  if (!available.available) throw new Error(`--jit: ${available.reason}`);
  return startJitServer(available.bin);
}

/**
 * Reduces fast-check's counterexample further (a statement out of its savepoint, a
 * concurrent step down to the statements that interleave, ...) and prints the result,
 * if smaller, as the reproduction to keep.
 */
async function reduceFurther(
  workload: Workload,
  scenario: { adminUrl: string; pipeline: PipelineKind; jit?: boolean },
): Promise<void> {
  let failing: ScenarioResult | undefined;
  const { workload: reduced, attempts } = await minimizeWorkload(
    workload,
    async (candidate) => {
      const result = await runScenario(candidate, scenario);
      if (!result.ok) failing = result;
      return !result.ok;
    },
    { deadline: Date.now() + SHRINK_ALLOWANCE_MS },
  );
  if (failing === undefined) {
    console.log(`reduction: nothing smaller fails (${attempts} candidates tried)`);
    return;
  }
  console.log(`reduced further (${attempts} candidates tried); keep this one:`);
  console.log(describeFailure(reduced, failing, scenario.pipeline));
}

main().then(
  (code) => process.exit(code),
  (error: unknown) => {
    console.error(error);
    process.exit(2);
  },
);

/**
 * Instructions per log line of the pgAudit path (`splitLogRecords` and
 * `AccessAuditPipeline`, what `pgaudit scan` and the alert Lambda run), counted by
 * `valgrind --tool=cachegrind`: a figure the machine's load cannot move, for A/B tests of
 * `src/access-audit` on a shared machine, where the wall-clock `parser_lines_per_s` is
 * noise (BENCHMARKS case 5).
 *
 * Usage: `npx tsx bench/tools/parser-instructions.ts [--lines N] [--rounds R] [--kit NAME=DIR]...`
 *
 * The corpus is case 5's (bench/lib/pgaudit-corpus.ts of this checkout, N physical lines,
 * 20,000 by default) with the case's config. Each variant (this checkout, and one per
 * `--kit`: another checkout, e.g. `git archive main | tar -x -C DIR` with node_modules
 * linked) is bundled with esbuild beside a small driver that runs the corpus through a new
 * pipeline P times. Per line = (count at P = 3 − count at P = 1) / (2 × N): start-up,
 * module loading, building the corpus and the first compilations cancel out, leaving the
 * warm cost the bench times. node runs with `--single-threaded --predictable --hash-seed=1
 * --random-seed=1`: with them two runs of one bundle agree within a few thousand
 * instructions of 2 G; without the seeds (V8 lays out each Map and Set by a random hash
 * seed) they differed by up to 0.5%. With `--rounds R` the pairs run R times, the variants
 * interleaved. Before counting, each variant runs once without valgrind and prints a
 * sha-256 of every outcome it returned: a change that moves the count must not move that.
 *
 * The variants, bundling, counting and printing: `kit-variants.ts`.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import {
  bundleDriver,
  cachegrindTotal,
  interleaved,
  parseKitArguments,
  printMedians,
  run,
} from './kit-variants';

const USAGE =
  'usage: tsx bench/tools/parser-instructions.ts [--lines N] [--rounds R] [--kit NAME=DIR]...\n';

/** V8 flags that make a run's instruction count repeatable (see the header). */
const DETERMINISTIC_NODE = [
  '--single-threaded',
  '--predictable',
  '--hash-seed=1',
  '--random-seed=1',
];

/** The driver each variant is bundled with: the kit's pipeline, this checkout's corpus. */
function driverSource(kit: string): string {
  const from = (module: string) => JSON.stringify(path.join(kit, module));
  const corpus = JSON.stringify(path.join(__dirname, '../lib/pgaudit-corpus'));
  return `
import { createHash } from 'node:crypto';
import { accessAuditSchema } from ${from('src/config/access-audit')};
import { AccessAuditPipeline, splitLogRecords } from ${from('src/access-audit')};
import { buildCorpus } from ${corpus};

const [lines, passes, digest] = [Number(process.argv[2]), Number(process.argv[3]), process.argv[4] === 'digest'];
const corpus = buildCorpus(lines);
// Case 5's config.
const config = accessAuditSchema.parse({
  auditedRoles: ['alice', 'bob', 'carol', 'dave'],
  serviceAccounts: ['app_svc'],
});
const hash = createHash('sha256');
let outcomes = 0;
for (let pass = 0; pass < passes; pass++) {
  const pipeline = new AccessAuditPipeline(config);
  const take = (out) => {
    outcomes += out.length;
    if (digest) for (const outcome of out) hash.update(JSON.stringify(outcome) + '\\n');
  };
  for (const record of splitLogRecords(corpus.text)) take(pipeline.push(record, undefined));
  take(pipeline.flush());
}
if (digest) console.log(JSON.stringify({ lines: corpus.lines, outcomes, sha256: hash.digest('hex') }));
`;
}

/** The outcomes' line of `node bundle lines 1 digest`, outside valgrind. */
async function outcomes(bundled: string, lines: number): Promise<string> {
  return (await run(process.execPath, [bundled, String(lines), '1', 'digest'])).trim();
}

/** Total instructions of `node bundle lines passes` under cachegrind. */
async function instructions(bundled: string, lines: number, passes: number): Promise<number> {
  return cachegrindTotal(`${bundled}.${passes}.cachegrind`, [
    ...DETERMINISTIC_NODE,
    bundled,
    String(lines),
    String(passes),
  ]);
}

async function main(): Promise<void> {
  const {
    count: lines,
    rounds,
    kits,
  } = parseKitArguments(process.argv.slice(2), USAGE, {
    flag: '--lines',
    least: 100,
    fallback: 20_000,
  });
  const dir = await mkdtemp(path.join(os.tmpdir(), 'audit-trail-parser-instructions-'));
  try {
    const bundles = await Promise.all(
      kits.map((kit) => bundleDriver(kit, dir, driverSource(kit.dir))),
    );
    for (let k = 0; k < kits.length; k++)
      process.stdout.write(`  ${kits[k]!.name.padEnd(16)} ${await outcomes(bundles[k]!, lines)}\n`);
    const perLine = await interleaved(kits, rounds, async (k) => {
      const once = await instructions(bundles[k]!, lines, 1);
      const thrice = await instructions(bundles[k]!, lines, 3);
      return (thrice - once) / (2 * lines);
    });
    process.stdout.write(
      `instructions per log line (case 5's corpus, ${lines} lines, 3 − 1 passes, median of ${rounds} round(s))\n`,
    );
    printMedians(kits, perLine, (value) => `${(value / 1e3).toFixed(2)}k`);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

void main().catch((error: unknown) => {
  process.stderr.write(`${error instanceof Error ? error.stack : String(error)}\n`);
  process.exit(1);
});

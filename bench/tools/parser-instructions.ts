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
 * Hand-written rather than a library: it drives valgrind on a bundle.
 */
import { spawn } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { build } from 'esbuild';
import { median } from '../lib/stats';

const USAGE =
  'usage: tsx bench/tools/parser-instructions.ts [--lines N] [--rounds R] [--kit NAME=DIR]...\n';

/** V8 flags that make a run's instruction count repeatable (see the header). */
const DETERMINISTIC_NODE = [
  '--single-threaded',
  '--predictable',
  '--hash-seed=1',
  '--random-seed=1',
];

interface Kit {
  readonly name: string;
  readonly dir: string;
}

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

async function bundle(kit: Kit, dir: string): Promise<string> {
  const outfile = path.join(dir, `${kit.name}.cjs`);
  await build({
    stdin: { contents: driverSource(kit.dir), resolveDir: kit.dir, loader: 'ts' },
    bundle: true,
    platform: 'node',
    target: 'node20',
    format: 'cjs',
    outfile,
    logLevel: 'warning',
  });
  return outfile;
}

/** Runs `command args`; its stdout, or an error with the end of its stderr. */
async function run(command: string, args: readonly string[]): Promise<string> {
  const stdout: string[] = [];
  const stderr: string[] = [];
  const code = await new Promise<number | null>((resolve, reject) => {
    const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    child.stdout.on('data', (chunk: Buffer) => stdout.push(chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => stderr.push(chunk.toString()));
    child.on('error', reject);
    child.on('close', resolve);
  });
  if (code !== 0) throw new Error(`${command} exited ${code}:\n${stderr.join('').slice(-2000)}`);
  return stdout.join('');
}

/** The outcomes' line of `node bundle lines 1 digest`, outside valgrind. */
async function outcomes(bundled: string, lines: number): Promise<string> {
  return (await run(process.execPath, [bundled, String(lines), '1', 'digest'])).trim();
}

/** Total instructions of `node bundle lines passes` under cachegrind. */
async function instructions(bundled: string, lines: number, passes: number): Promise<number> {
  const out = `${bundled}.${passes}.cachegrind`;
  await run('valgrind', [
    '--tool=cachegrind',
    '--cache-sim=no',
    '--branch-sim=no',
    '--smc-check=all-non-file',
    `--cachegrind-out-file=${out}`,
    process.execPath,
    ...DETERMINISTIC_NODE,
    bundled,
    String(lines),
    String(passes),
  ]);
  const summary = /^summary:\s+(\d+)/m.exec(await readFile(out, 'utf8'));
  await rm(out, { force: true });
  if (!summary) throw new Error(`no summary line in ${out}`);
  return Number(summary[1]);
}

function parseArguments(argv: readonly string[]): { lines: number; rounds: number; kits: Kit[] } {
  let lines = 20_000;
  let rounds = 1;
  const kits: Kit[] = [{ name: 'this', dir: process.cwd() }];
  for (let i = 0; i < argv.length; i++) {
    const [arg, value] = [argv[i]!, argv[i + 1]];
    if (arg === '--help') {
      process.stdout.write(USAGE);
      process.exit(0);
    }
    const number = Number(value);
    if (arg === '--lines' && Number.isInteger(number) && number >= 100) lines = number;
    else if (arg === '--rounds' && Number.isInteger(number) && number >= 1) rounds = number;
    else if (arg === '--kit' && /^[\w.-]+=.+$/.test(value ?? '')) {
      const [name, dir] = [
        value!.slice(0, value!.indexOf('=')),
        value!.slice(value!.indexOf('=') + 1),
      ];
      kits.push({ name, dir: path.resolve(dir) });
    } else {
      process.stderr.write(`bad argument ${JSON.stringify(arg)} ${value ?? ''}\n${USAGE}`);
      process.exit(2);
    }
    i++;
  }
  return { lines, rounds, kits };
}

async function main(): Promise<void> {
  const { lines, rounds, kits } = parseArguments(process.argv.slice(2));
  const dir = await mkdtemp(path.join(os.tmpdir(), 'audit-trail-parser-instructions-'));
  try {
    const bundles = await Promise.all(kits.map((kit) => bundle(kit, dir)));
    for (let k = 0; k < kits.length; k++)
      process.stdout.write(`  ${kits[k]!.name.padEnd(16)} ${await outcomes(bundles[k]!, lines)}\n`);
    const perLine: number[][] = kits.map(() => []);
    for (let r = 0; r < rounds; r++) {
      for (let k = 0; k < kits.length; k++) {
        const index = (k + r) % kits.length; // the order rotates each round
        const once = await instructions(bundles[index]!, lines, 1);
        const thrice = await instructions(bundles[index]!, lines, 3);
        perLine[index]!.push((thrice - once) / (2 * lines));
      }
    }
    process.stdout.write(
      `instructions per log line (case 5's corpus, ${lines} lines, 3 − 1 passes, median of ${rounds} round(s))\n`,
    );
    const first = median(perLine[0]!);
    const thousands = (value: number) => `${(value / 1e3).toFixed(2)}k`;
    kits.forEach((kit, k) => {
      const values = perLine[k]!;
      const range =
        values.length > 1
          ? ` (${thousands(Math.min(...values))}–${thousands(Math.max(...values))})`
          : '';
      const ratio = k === 0 ? '' : `  ×${(median(values) / first).toFixed(3)} of ${kits[0]!.name}`;
      process.stdout.write(
        `  ${kit.name.padEnd(16)} ${thousands(median(values))}${range}${ratio}\n`,
      );
    });
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

void main().catch((error: unknown) => {
  process.stderr.write(`${error instanceof Error ? error.stack : String(error)}\n`);
  process.exit(1);
});

/**
 * What the instruction-counting tools share (`das-instructions.ts`, `parser-instructions.ts`):
 * the variants (`--kit NAME=DIR`, this checkout first), each bundled with esbuild beside a
 * driver of the tool's own, counted under `valgrind --tool=cachegrind`, interleaved round by
 * round, and printed as medians with their range and ratio to the first.
 *
 * Hand-written rather than a library: it drives valgrind on a bundle.
 */
import { spawn } from 'node:child_process';
import { readFile, rm } from 'node:fs/promises';
import path from 'node:path';
import { build } from 'esbuild';
import { median } from '../lib/stats';

/** A checkout whose code a tool measures: this one, or one named by `--kit NAME=DIR`. */
export interface Kit {
  readonly name: string;
  readonly dir: string;
}

/** The tool's own count option, e.g. `--records` (at least 1, 40 when not given). */
export interface CountOption {
  readonly flag: string;
  readonly least: number;
  readonly fallback: number;
}

/**
 * `[--COUNT N] [--rounds R] [--kit NAME=DIR]...`; `--help` prints `usage` and exits 0,
 * anything else it refuses with `usage` and exit 2.
 * @example
 * parseKitArguments(['--rounds', '2', '--kit', 'main=../main'], USAGE, { flag: '--records', least: 1, fallback: 40 });
 * // { count: 40, rounds: 2, kits: [{ name: 'this', dir: cwd }, { name: 'main', dir: '/abs/main' }] }
 */
export function parseKitArguments(
  argv: readonly string[],
  usage: string,
  option: CountOption,
): { count: number; rounds: number; kits: Kit[] } {
  let count = option.fallback;
  let rounds = 1;
  const kits: Kit[] = [{ name: 'this', dir: process.cwd() }];
  for (let i = 0; i < argv.length; i++) {
    const [arg, value] = [argv[i]!, argv[i + 1]];
    if (arg === '--help') {
      process.stdout.write(usage);
      process.exit(0);
    }
    const number = Number(value);
    if (arg === option.flag && Number.isInteger(number) && number >= option.least) count = number;
    else if (arg === '--rounds' && Number.isInteger(number) && number >= 1) rounds = number;
    else if (arg === '--kit' && /^[\w.-]+=.+$/.test(value ?? '')) {
      const [name, dir] = [
        value!.slice(0, value!.indexOf('=')),
        value!.slice(value!.indexOf('=') + 1),
      ];
      kits.push({ name, dir: path.resolve(dir) });
    } else {
      process.stderr.write(`bad argument ${JSON.stringify(arg)} ${value ?? ''}\n${usage}`);
      process.exit(2);
    }
    i++;
  }
  return { count, rounds, kits };
}

/** Bundles `driver` (TypeScript, resolved from the kit's checkout) into `dir/NAME.cjs`. */
export async function bundleDriver(kit: Kit, dir: string, driver: string): Promise<string> {
  const outfile = path.join(dir, `${kit.name}.cjs`);
  await build({
    stdin: { contents: driver, resolveDir: kit.dir, loader: 'ts' },
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
export async function run(command: string, args: readonly string[]): Promise<string> {
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

/** Total instructions of `node ...nodeArgs` under cachegrind (`out`: its output file). */
export async function cachegrindTotal(out: string, nodeArgs: readonly string[]): Promise<number> {
  await run('valgrind', [
    '--tool=cachegrind',
    '--cache-sim=no',
    '--branch-sim=no',
    '--smc-check=all-non-file',
    `--cachegrind-out-file=${out}`,
    process.execPath,
    ...nodeArgs,
  ]);
  const summary = /^summary:\s+(\d+)/m.exec(await readFile(out, 'utf8'));
  await rm(out, { force: true });
  if (!summary) throw new Error(`no summary line in ${out}`);
  return Number(summary[1]);
}

/**
 * `measure(k)` for every kit, `rounds` times, the order rotating each round so that no
 * variant always runs first; the values per kit, in kit order.
 */
export async function interleaved(
  kits: readonly Kit[],
  rounds: number,
  measure: (kit: number) => Promise<number>,
): Promise<number[][]> {
  const values: number[][] = kits.map(() => []);
  for (let r = 0; r < rounds; r++) {
    for (let k = 0; k < kits.length; k++) {
      const index = (k + r) % kits.length;
      values[index]!.push(await measure(index));
    }
  }
  return values;
}

/**
 * One line per kit: the median (`format`ted, then `unit`), the range over rounds, the ratio
 * to the first kit's.
 */
export function printMedians(
  kits: readonly Kit[],
  values: readonly number[][],
  format: (value: number) => string,
  unit = '',
): void {
  const first = median(values[0]!);
  kits.forEach((kit, k) => {
    const own = values[k]!;
    const range =
      own.length > 1 ? ` (${format(Math.min(...own))}–${format(Math.max(...own))})` : '';
    const ratio = k === 0 ? '' : `  ×${(median(own) / first).toFixed(3)} of ${kits[0]!.name}`;
    process.stdout.write(
      `  ${kit.name.padEnd(16)} ${format(median(own))}${unit}${range}${ratio}\n`,
    );
  });
}

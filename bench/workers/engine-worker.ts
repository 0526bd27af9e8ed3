/**
 * Runs the kit's engine once until idle in its own process, so the parent can read
 * this process's peak resident set (VmHWM) without counting the benchmark runner.
 * Input: one JSON argument {sourceUrl, targetUrl, tables}. Output: one JSON line on
 * stdout {changes, applyMs, baselineHwmKb, peakHwmKb}.
 */
import { readFileSync } from 'node:fs';
import { createEngine, silentLogger } from '../../src/engine';
import { benchConfig } from '../lib/engine-capture';

function hwmKb(): number {
  const match = /^VmHWM:\s+(\d+) kB/m.exec(readFileSync('/proc/self/status', 'utf8'));
  return match ? Number(match[1]) : NaN;
}

async function main(): Promise<void> {
  const input = JSON.parse(process.argv[2] ?? '{}') as {
    sourceUrl: string;
    targetUrl: string;
    tables: string[];
  };
  const engine = createEngine({
    config: benchConfig(input.tables),
    sourceUrl: input.sourceUrl,
    targetUrl: input.targetUrl,
    logger: silentLogger,
    lagIntervalMs: 0,
  });
  const baselineHwmKb = hwmKb();
  const started = process.hrtime.bigint();
  const result = await engine.runUntilIdle();
  const applyMs = Number(process.hrtime.bigint() - started) / 1e6;
  process.stdout.write(
    `${JSON.stringify({ changes: result.changes, applyMs, baselineHwmKb, peakHwmKb: hwmKb() })}\n`,
  );
}

main().catch((error: unknown) => {
  console.error(error instanceof Error ? error.stack : error);
  process.exit(1);
});

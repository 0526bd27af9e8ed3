/**
 * Runs `verify --integrity` once in its own process (the library call the CLI makes), so
 * the parent can read this process's peak resident set (VmHWM) without counting the
 * benchmark runner. Input: one JSON argument {targetUrl, auditSchema}. Output: one JSON
 * line on stdout {ok, rows, blocks, findingCount, verifyMs, baselineHwmKb, peakHwmKb}.
 */
import { readFileSync } from 'node:fs';
import { verifyIntegrity } from '../../src/trust/integrity';

function hwmKb(): number {
  const match = /^VmHWM:\s+(\d+) kB/m.exec(readFileSync('/proc/self/status', 'utf8'));
  return match ? Number(match[1]) : NaN;
}

async function main(): Promise<void> {
  const input = JSON.parse(process.argv[2] ?? '{}') as { targetUrl: string; auditSchema: string };
  const baselineHwmKb = hwmKb();
  const started = process.hrtime.bigint();
  const report = await verifyIntegrity({
    targetUrl: input.targetUrl,
    auditSchema: input.auditSchema,
  });
  const verifyMs = Number(process.hrtime.bigint() - started) / 1e6;
  const { ok, rows, blocks, findingCount } = report;
  process.stdout.write(
    `${JSON.stringify({ ok, rows, blocks, findingCount, verifyMs, baselineHwmKb, peakHwmKb: hwmKb() })}\n`,
  );
}

main().catch((error: unknown) => {
  console.error(error instanceof Error ? error.stack : error);
  process.exit(1);
});

/**
 * Preloaded into a process the bench measures (`node --import <this> ...`): plain
 * JavaScript, so it adds nothing a user's process would not load. Samples
 * process.memoryUsage() every 250 ms and, as the process exits, writes one line to
 * stderr: `PEAK_MEMORY {json}` with the peak resident set (VmHWM, kB) at start and at the
 * end, the largest of each memoryUsage field seen (bytes), and the process's CPU time.
 */
import { readFileSync } from 'node:fs';
import process from 'node:process';
import { setInterval } from 'node:timers';

const PREFIX = 'PEAK_MEMORY ';
const FIELDS = ['rss', 'heapTotal', 'heapUsed', 'external', 'arrayBuffers'];

function hwmKb() {
  const match = /^VmHWM:\s+(\d+) kB/m.exec(readFileSync('/proc/self/status', 'utf8'));
  return match ? Number(match[1]) : null;
}

const startHwmKb = hwmKb();
const largest = Object.fromEntries(FIELDS.map((field) => [field, 0]));
function sample() {
  const usage = process.memoryUsage();
  for (const field of FIELDS) largest[field] = Math.max(largest[field], usage[field]);
}
setInterval(sample, 250).unref();

process.on('exit', () => {
  sample();
  const cpu = process.cpuUsage();
  process.stderr.write(
    `${PREFIX}${JSON.stringify({
      startHwmKb,
      peakHwmKb: hwmKb(),
      largest,
      cpuUserMs: cpu.user / 1000,
      cpuSystemMs: cpu.system / 1000,
    })}\n`,
  );
});

import os from 'node:os';
import { readFileSync } from 'node:fs';

/** What the numbers were measured on, written into the results JSON. */
export interface MachineInfo {
  readonly cpus: number;
  readonly cpuModel: string;
  readonly memoryGb: number;
  readonly os: string;
  readonly kernel: string;
  readonly node: string;
  readonly loadAverageAtStart: readonly number[];
  readonly note: string;
}

/** Describes this machine, including how loaded it was when the run began. */
export function describeMachine(): MachineInfo {
  const cpus = os.cpus();
  return {
    cpus: cpus.length,
    cpuModel: cpus[0]?.model.trim() ?? 'unknown',
    memoryGb: Math.round((os.totalmem() / 1024 ** 3) * 10) / 10,
    os: osRelease(),
    kernel: os.release(),
    node: process.version,
    loadAverageAtStart: os.loadavg().map((value) => Math.round(value * 100) / 100),
    note:
      `All processes (workload clients, source and target PostgreSQL, the engine, the runner) ` +
      `share these ${cpus.length} CPUs, so capture competes with the workload it observes.`,
  };
}

function osRelease(): string {
  try {
    const text = readFileSync('/etc/os-release', 'utf8');
    return /^PRETTY_NAME="?([^"\n]*)"?/m.exec(text)?.[1] ?? os.type();
  } catch {
    return os.type();
  }
}

import { PerformanceObserver, performance } from 'node:perf_hooks';
import v8 from 'node:v8';
import { round } from './stats';

/** One V8 collection's main-thread pause (`performance.now()` times, ms). */
interface Pause {
  readonly start: number;
  readonly end: number;
  /** A scavenge (young generation); otherwise a full or incremental mark-compact step. */
  readonly minor: boolean;
}

/** A timed call, as `performance.now()` saw it. */
export interface Span {
  readonly start: number;
  readonly end: number;
}

/** perf_hooks' gc entry kind of a scavenge (NODE_PERFORMANCE_GC_MINOR). */
const MINOR = 1;

/**
 * The V8 collections that paused the main thread while a case timed its calls
 * (PerformanceObserver, entry type gc), to tell a slow call that waited on the collector
 * from one that did not. Also the young generation's size when the timing started:
 * after a long idle wait (a case's data load) V8's memory reducer shrinks it, and a small
 * one is collected every few calls.
 */
export class GcPauses {
  readonly #pauses: Pause[] = [];
  readonly #observer = new PerformanceObserver((list) => {
    for (const entry of list.getEntries()) {
      this.#pauses.push({
        start: entry.startTime,
        end: entry.startTime + entry.duration,
        minor: (entry as { detail?: { kind?: number } }).detail?.kind === MINOR,
      });
    }
  });
  #started = 0;
  #newSpaceMb = 0;

  start(): void {
    this.#newSpaceMb = newSpaceMb();
    this.#started = performance.now();
    this.#observer.observe({ entryTypes: ['gc'] });
  }

  /** Stops observing (after the entries still queued are delivered). */
  async stop(): Promise<void> {
    await new Promise((resolve) => setTimeout(resolve, 20));
    this.#observer.disconnect();
  }

  /** The pause time inside one call, ms. */
  inside(call: Span): number {
    return this.#pauses
      .filter((p) => p.end > call.start && p.start < call.end)
      .reduce((sum, p) => sum + Math.min(p.end, call.end) - Math.max(p.start, call.start), 0);
  }

  /** Collections while timing, and how many of `calls` had a pause inside. */
  summary(calls: readonly Span[]): Record<string, number> {
    const since = this.#pauses.filter((p) => p.start >= this.#started);
    const minor = since.filter((p) => p.minor);
    const full = since.filter((p) => !p.minor);
    const total = (list: readonly Pause[]) =>
      round(
        list.reduce((s, p) => s + p.end - p.start, 0),
        2,
      );
    return {
      newSpaceMbAtStart: round(this.#newSpaceMb, 1),
      newSpaceMbAtEnd: round(newSpaceMb(), 1),
      scavenges: minor.length,
      scavengeMs: total(minor),
      fullCollectionSteps: full.length,
      fullCollectionMs: total(full),
      callsWithAPause: calls.filter((call) => this.inside(call) > 0).length,
    };
  }
}

function newSpaceMb(): number {
  const space = v8.getHeapSpaceStatistics().find((s) => s.space_name === 'new_space');
  return (space?.space_size ?? 0) / 2 ** 20;
}

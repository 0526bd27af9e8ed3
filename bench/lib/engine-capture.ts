import type { CaptureDriver } from './capture';
import type { BenchContext } from './profile';

/** Where the capture runs and what it covers. */
export interface CaptureOptions {
  readonly sourceUrl: string;
  readonly targetUrl: string;
  /** Audited tables in `public`. */
  readonly tables: readonly string[];
}

/** Installs the kit on the target and returns a driver for the engine, or why there is none. */
export async function createCapture(
  _ctx: BenchContext,
  _options: CaptureOptions,
): Promise<{ driver: CaptureDriver | null; missing?: string }> {
  return { driver: null, missing: 'the local CDC engine (src/engine) has not landed yet' };
}

import type { BenchContext } from '../lib/profile';

/** Placeholder until the alert Lambda lands: reports that it could not be measured. */
export async function measureLambda(_ctx: BenchContext): Promise<Record<string, unknown>> {
  return { note: 'the alert Lambda (src/lambda/access-alert) has not landed yet' };
}

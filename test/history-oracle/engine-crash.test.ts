import fc from 'fast-check';
import { inject } from 'vitest';
import { SHORT_RUN_FEATURES } from '../support/oracle/arbitraries';
import { historyProperty } from '../support/oracle/property';

/**
 * Generated workloads while the engine is killed (kill -9, through the test-only fault
 * hook) at random points and restarted: history must still match the oracle change
 * by change. Long run: `npm run fuzz -- --crashes`.
 */
const SEED = Number(process.env.HISTORY_ORACLE_SEED ?? Date.now() % 2 ** 31);

describe('history oracle: engine crashes and restarts', () => {
  it(`history matches the oracle across kill -9 and restart (seed ${SEED})`, async () => {
    await fc.assert(
      historyProperty({
        adminUrl: inject('pgAdminUrl'),
        pipeline: 'engine',
        features: SHORT_RUN_FEATURES,
        crashes: true,
      }),
      { seed: SEED, numRuns: 1, endOnFailure: true },
    );
  }, 180_000);
});

import fc from 'fast-check';
import { SHORT_RUN_FEATURES, workloadArbitrary } from '../support/oracle/arbitraries';
import { coverageOf, REQUIRED_COVERAGE } from '../support/oracle/coverage';
import { FIXED_SEEDS, RUNS_PER_SEED } from './short-run';

describe('history oracle generator', () => {
  it("covers every #17 item the oracle watches with the short run's fixed seeds", () => {
    // The same workloads generated.test.ts runs (fc.sample draws what fc.assert does).
    const covered = new Set(
      FIXED_SEEDS.flatMap((seed) =>
        fc
          .sample(workloadArbitrary(SHORT_RUN_FEATURES), { seed, numRuns: RUNS_PER_SEED })
          .flatMap((workload) => [...coverageOf(workload)]),
      ),
    );
    expect(REQUIRED_COVERAGE.filter((label) => !covered.has(label))).toEqual([]);
  });
});

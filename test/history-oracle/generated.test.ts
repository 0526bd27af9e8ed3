import fc from 'fast-check';
import { inject } from 'vitest';
import { featuresFrom, REFUSALS, SHORT_RUN_FEATURES } from '../support/oracle/arbitraries';
import { historyProperty } from '../support/oracle/property';
import type { PipelineKind } from '../support/oracle/scenario';
import { FEATURE_RUN, FIXED_SEEDS, REFUSAL_SEED, RUNS_PER_SEED } from './short-run';

/**
 * The short run of the history oracle (the long one: `npm run fuzz`): generated
 * workloads on both pipelines, compared change by change with the oracle. Fixed seeds
 * plus one random seed, printed so a failure can be replayed with
 * `npm run fuzz -- --seed S --pipeline P --features short`, and the seeds of the
 * features the fixed ones leave out (`FEATURE_RUN`, replayed with its `features`).
 */
const RANDOM_SEED = Number(process.env.HISTORY_ORACLE_SEED ?? Date.now() % 2 ** 31);
const RUNS: readonly { readonly seed: number; readonly features: string }[] = [
  ...FIXED_SEEDS.map((seed) => ({ seed, features: 'short' })),
  ...FEATURE_RUN.seeds.map((seed) => ({ seed, features: FEATURE_RUN.features })),
  { seed: RANDOM_SEED, features: 'short' },
];

describe('history oracle: generated workloads', () => {
  beforeAll(() => console.log(`history oracle short run: random seed ${RANDOM_SEED}`));

  for (const pipeline of ['engine', 'dms'] as PipelineKind[])
    for (const { seed, features } of RUNS)
      it(`${pipeline} pipeline matches the oracle (seed ${seed}${features === 'short' ? '' : `, features ${features}`})`, async () => {
        await fc.assert(
          historyProperty({
            adminUrl: inject('pgAdminUrl'),
            pipeline,
            features: featuresFrom(features),
          }),
          { seed, numRuns: RUNS_PER_SEED, endOnFailure: true },
        );
      }, 120_000);
});

/**
 * Tables the kit must refuse up front, with the reason (#17 items 11, 12, 14, 15, 17):
 * one generated workload each, on both pipelines. migrate refuses before it creates
 * anything (a header-named column added mid-stream: when it is added); the engine
 * refuses the same table before it creates its publication; and the source's own
 * writes keep working afterwards.
 */
describe('history oracle: generated workloads with a table the kit must refuse', () => {
  for (const pipeline of ['engine', 'dms'] as PipelineKind[])
    for (const refusal of REFUSALS)
      it(`${pipeline} pipeline: migrate refuses ${refusal} with its reason`, async () => {
        await fc.assert(
          historyProperty({
            adminUrl: inject('pgAdminUrl'),
            pipeline,
            features: SHORT_RUN_FEATURES,
            refusal,
          }),
          { seed: REFUSAL_SEED, numRuns: 1, endOnFailure: true },
        );
      }, 60_000);
});

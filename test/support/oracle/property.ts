import fc from 'fast-check';
import {
  crashWorkloadArbitrary,
  refusedWorkloadArbitrary,
  workloadArbitrary,
  type Features,
  type Refusal,
} from './arbitraries';
import { describeFailure, runScenario, type PipelineKind, type ScenarioOptions } from './scenario';

/** Options for {@link historyProperty}. */
export interface HistoryPropertyOptions extends Omit<ScenarioOptions, 'pipeline'> {
  readonly pipeline: PipelineKind;
  readonly features: Features;
  /** Crash the engine (kill -9) at random points and restart it. @default false */
  readonly crashes?: boolean;
  /** Every workload has a table migrate must refuse for this reason. @default none */
  readonly refusal?: Refusal;
}

/**
 * The property: for every generated workload, the pipeline's history equals the
 * oracle's. A failure's message is the shrunk workload as a script plus config.
 */
export function historyProperty(options: HistoryPropertyOptions) {
  const workloads = options.refusal
    ? refusedWorkloadArbitrary(options.features, options.refusal)
    : options.crashes
      ? crashWorkloadArbitrary(options.features)
      : workloadArbitrary(options.features);
  return fc.asyncProperty(workloads, async (workload) => {
    const result = await runScenario(workload, options);
    if (!result.ok) throw new Error(describeFailure(workload, result, options.pipeline));
    if (options.refusal && result.refused === undefined)
      throw new Error(
        `migrate did not refuse (${options.refusal}):\n${describeFailure(workload, result, options.pipeline)}`,
      );
  });
}

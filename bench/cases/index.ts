import type { Figure, FigureId } from '../lib/figures';
import type { BenchContext } from '../lib/profile';
import { chainCostCase } from './chain-cost';
import { dasCase } from './das';
import { dmsApplyCase } from './dms-apply';
import { engineCase, memoryCase } from './engine';
import { historyCase } from './history';
import { parserCase } from './parser';
import { sourceCase } from './source';
import { sourceContextCase } from './source-context';
import { targetTriggerCase } from './target-trigger';
import { verifyIntegrityCase } from './verify-integrity';

/** What a case returns: its figures and the numbers behind them. */
export interface CaseResult {
  readonly figures: readonly Figure[];
  readonly detail: Record<string, unknown>;
}

/** One benchmark case as the runner sees it. */
export interface BenchCase {
  readonly title: string;
  /** The figures it produces (reported as missing when it fails). */
  readonly figures: readonly FigureId[];
  run(ctx: BenchContext): Promise<CaseResult>;
}

/** The cases, in run order. */
export const CASES = {
  source: sourceCase,
  context: sourceContextCase,
  engine: engineCase,
  memory: memoryCase,
  trigger: targetTriggerCase,
  dms: dmsApplyCase,
  chain: chainCostCase,
  verify: verifyIntegrityCase,
  history: historyCase,
  parser: parserCase,
  das: dasCase,
} satisfies Record<string, BenchCase>;

export type CaseName = keyof typeof CASES;

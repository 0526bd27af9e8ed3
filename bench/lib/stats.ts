/** Small statistics helpers: benchmarks report medians and spreads, never one time. */

/** Sorted copy of `values` (ascending). */
export function sorted(values: readonly number[]): number[] {
  return [...values].sort((a, b) => a - b);
}

/**
 * The `p`-th percentile (0–100) by linear interpolation between closest ranks.
 * @throws Error for an empty sample, which would otherwise hide a broken case.
 */
export function percentile(values: readonly number[], p: number): number {
  if (values.length === 0) throw new Error('percentile of an empty sample');
  const ordered = sorted(values);
  const rank = (p / 100) * (ordered.length - 1);
  const low = Math.floor(rank);
  const high = Math.ceil(rank);
  const lowValue = ordered[low] as number;
  const highValue = ordered[high] as number;
  return lowValue + (highValue - lowValue) * (rank - low);
}

/** The median of `values`. */
export function median(values: readonly number[]): number {
  return percentile(values, 50);
}

/** How a sample is spread: min, max and the median, for the table and the JSON. */
export interface Spread {
  readonly n: number;
  readonly median: number;
  readonly min: number;
  readonly max: number;
}

/** Median, min and max of `values`. */
export function spread(values: readonly number[]): Spread {
  return {
    n: values.length,
    median: median(values),
    min: Math.min(...values),
    max: Math.max(...values),
  };
}

/** Rounds to `digits` significant digits, so the JSON stays readable. */
export function round(value: number, digits = 4): number {
  if (!Number.isFinite(value) || value === 0) return value;
  return Number(value.toPrecision(digits));
}

/** Rounds every number in a spread. */
export function roundSpread(value: Spread, digits = 4): Spread {
  return {
    n: value.n,
    median: round(value.median, digits),
    min: round(value.min, digits),
    max: round(value.max, digits),
  };
}

import { createLogEntryParser, splitLogRecords } from '../../src/access-audit';
import { FIGURE_IDS, figure, missing } from '../../bench/lib/figures';
import { buildCorpus } from '../../bench/lib/pgaudit-corpus';
import { percentile, spread } from '../../bench/lib/stats';

describe('benchmark harness', () => {
  it('judges figures against their goals and reports missing ones as not met', () => {
    expect(figure('engine_lag_p99_ms', 120).met).toBe(true);
    expect(figure('engine_lag_p99_ms', 900).met).toBe(false);
    expect(figure('parser_lines_per_s', 250_000)).toMatchObject({ goal: '>= 200000', met: true });
    expect(missing('history_p99_ms', 'not run')).toMatchObject({
      value: null,
      met: false,
      note: 'not run',
    });
    expect(new Set(FIGURE_IDS).size).toBe(26);
  });

  it("holds #14's goal for the catch-up rate, so a slow catch-up reads as missed", () => {
    expect(figure('catchup_changes_per_s', 6_600)).toMatchObject({
      goal: '>= 20000',
      met: false,
    });
    expect(figure('catchup_changes_per_s', 21_000).met).toBe(true);
  });

  it('computes percentiles by interpolation and spreads', () => {
    expect(percentile([1, 2, 3, 4], 50)).toBe(2.5);
    expect(percentile([5], 99)).toBe(5);
    expect(spread([3, 1, 2])).toEqual({ n: 3, median: 2, min: 1, max: 3 });
  });

  it('feeds the parser a corpus it reads without errors', () => {
    const corpus = buildCorpus(200);
    const parse = createLogEntryParser();
    const items = splitLogRecords(corpus.text).map((record) => parse(record));
    expect(items.filter((item) => item?.kind === 'unreadable')).toEqual([]);
    expect(items.filter((item) => item?.kind === 'audit').length).toBeGreaterThan(100);
  });
});

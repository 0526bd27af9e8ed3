/**
 * `npx tsx bench/render-markdown.ts [bench/results/latest.json]`: prints the results
 * as a Markdown table, for BENCHMARKS.md.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import type { Figure } from './lib/figures';

const file = process.argv[2] ?? path.join(__dirname, 'results', 'latest.json');
const results = JSON.parse(readFileSync(file, 'utf8')) as {
  profile: string;
  startedAt: string;
  durationSeconds: number;
  machine: Record<string, unknown>;
  figures: Figure[];
};
const cell = (text: string) => text.replace(/\|/g, '\\|');
console.log(
  `Profile **${results.profile}**, started ${results.startedAt}, ${results.durationSeconds} s.\n`,
);
console.log('| figure | value | unit | goal | met | spread | note |');
console.log('| --- | ---: | --- | --- | --- | --- | --- |');
for (const item of results.figures) {
  const value = item.value === null ? 'n/a' : item.value.toLocaleString('en-US');
  const met = item.value === null ? 'missing' : item.met ? 'yes' : '**no**';
  console.log(
    `| \`${item.id}\` | ${value} | ${item.unit} | ${item.goal ?? '–'} | ${met} | ${describeSpread(item)} | ${cell(item.note ?? '')} |`,
  );
}

/** `min–max over n rounds` for rates and ratios, `p50 x` for latencies. */
function describeSpread(item: Figure): string {
  const detail = (item.detail ?? {}) as Record<string, unknown>;
  const rounds = (detail.perRoundRatios ?? detail.perRound ?? detail.bySize) as
    { n?: number; min?: number; max?: number } | undefined;
  if (rounds && typeof rounds.min === 'number') {
    return `${rounds.min.toLocaleString('en-US')}–${(rounds.max ?? 0).toLocaleString('en-US')} over ${rounds.n} rounds`;
  }
  if (typeof detail.p50 === 'number') return `p50 ${detail.p50} ms`;
  return '';
}

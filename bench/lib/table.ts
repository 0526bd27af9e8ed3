import type { Figure } from './figures';

/** Prints the figures as an aligned text table on stdout. */
export function printTable(figures: readonly Figure[], profile: string): void {
  const rows = figures.map((item) => [
    item.id,
    item.value === null ? 'n/a' : formatValue(item.value),
    item.unit,
    item.goal ?? '-',
    item.value === null ? 'MISSING' : item.met ? 'yes' : 'NO',
    item.note ?? '',
  ]);
  const header = ['figure', 'value', 'unit', 'goal', 'met', 'note'];
  const widths = header.map((title, column) =>
    Math.max(title.length, ...rows.map((row) => Math.min(row[column]!.length, 60))),
  );
  const line = (cells: readonly string[]) =>
    cells
      .map((cell, i) => cell.slice(0, 80).padEnd(widths[i]!))
      .join('  ')
      .trimEnd();
  console.log(
    `\naudit-trail benchmarks (${profile} profile; ratios are medians of per-round ratios)`,
  );
  console.log(line(header));
  console.log(line(widths.map((width) => '-'.repeat(width))));
  for (const row of rows) console.log(line(row));
}

function formatValue(value: number): string {
  if (Math.abs(value) >= 1000) return Math.round(value).toLocaleString('en-US');
  return String(value);
}

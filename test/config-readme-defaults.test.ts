import { readFileSync } from 'node:fs';
import path from 'node:path';
import { parseConfig } from '../src/config';

// Defaults are stated once, in the zod schema. The README's config tables repeat them
// for readers; this test holds every default the README states to what the schema
// applies, so the two cannot drift apart.

const README = readFileSync(path.join(__dirname, '..', 'README.md'), 'utf8');

/** The config with every default applied: one table and an empty access-audit section. */
const DEFAULTS = parseConfig({ tables: [{ table: 't' }], accessAudit: {} });

/** Which part of the config a README `| field | meaning | default |` table describes. */
function sectionOf(tableStart: number): unknown {
  const heading = [...README.slice(0, tableStart).matchAll(/^## (.+)$/gm)].at(-1)?.[1];
  if (heading === 'Change history') return DEFAULTS;
  if (heading?.startsWith('Access audit')) return DEFAULTS.accessAudit;
  throw new Error(`README config table under "## ${heading}": say which config section it is`);
}

/** A value at a README path such as `alerts.digestThreshold` or `tables[].ignoreColumns`. */
function valueAt(section: unknown, field: string): unknown {
  const parts = field.split('.');
  // `rules[]` names the whole list; `tables[].x` a field of its (first) element.
  return parts.reduce<unknown>((value, part, i) => {
    const list = part.endsWith('[]');
    const found = (value as Record<string, unknown> | undefined)?.[list ? part.slice(0, -2) : part];
    return list && i < parts.length - 1 ? (found as unknown[] | undefined)?.[0] : found;
  }, section);
}

/** `a.b` / `c` names `a.b` and `a.c`: a later name is relative to the first one's parent. */
function fieldPaths(cell: string): string[] {
  const names = [...cell.matchAll(/`([^`]+)`/g)].map((match) => match[1]!);
  const parent = names[0]?.includes('.') ? names[0].slice(0, names[0].lastIndexOf('.') + 1) : '';
  return names.map((name, i) => (i === 0 || name.startsWith(parent) ? name : parent + name));
}

interface StatedDefault {
  readonly field: string;
  readonly stated: unknown;
  readonly applied: unknown;
}

/** Every default the README states as JSON in backticks, with what the schema applies. */
function statedDefaults(): StatedDefault[] {
  const found: StatedDefault[] = [];
  for (const table of README.matchAll(
    /^\| field \| meaning \| default \|\n\| --- .*\n((?:\|.*\n)+)/gm,
  )) {
    const section = sectionOf(table.index);
    for (const row of table[1]!.trim().split('\n')) {
      const cells = row
        .split(/(?<!\\)\|/)
        .slice(1, -1)
        .map((cell) => cell.trim());
      const fields = fieldPaths(cells[0] ?? '');
      const literals = [...(cells[2] ?? '').matchAll(/`([^`]+)`/g)].map((match) => match[1]!);
      if (literals.length === 0) continue; // a default in words ("read from the source catalog")
      const values = literals.map((literal) => JSON.parse(literal) as unknown);
      fields.forEach((field, i) =>
        found.push({
          field,
          stated: values.length === 1 ? values[0] : values[i],
          applied: valueAt(section, field),
        }),
      );
    }
  }
  return found;
}

describe('README config defaults', () => {
  it('match the defaults the zod schema applies, field by field', () => {
    const stated = statedDefaults();
    // Both tables (change history and access audit) are read: dozens of fields.
    expect(stated.length).toBeGreaterThan(30);
    const drifted = stated.filter(
      ({ stated: s, applied }) => JSON.stringify(s) !== JSON.stringify(applied),
    );
    expect(drifted).toEqual([]);
  });
});

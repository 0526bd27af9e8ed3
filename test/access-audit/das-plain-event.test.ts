import { describe, expect, it } from 'vitest';
import { normalizeDasEvent } from '../../src/access-audit/das/normalize';
import { dasActivityEventSchema, isPlainActivityEvent } from '../../src/access-audit/das/record';
import { activityEvent, EDGE_FIELD_VALUES, FIELD_VALUES, withField } from './support/das';

/** Every kind of value a field may hold, JSON's and beyond (what zod refuses included). */
const VALUES: readonly unknown[] = [...FIELD_VALUES, ...EDGE_FIELD_VALUES];

const FIELDS = Object.keys(dasActivityEventSchema.shape);
/** Fields read from the schema: one added there and not to the check fails the tests below. */
const acceptsEvent = isPlainActivityEvent;

/** The schema's fields of `raw`, as zod's parse would copy them. */
function schemaFields(raw: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(FIELDS.filter((field) => field in raw).map((f) => [f, raw[f]]));
}

/** Every disagreement with zod: accepted where zod refuses, or zod's values differ. */
function disagreements(raws: readonly Record<string, unknown>[]): string[] {
  const found: string[] = [];
  for (const raw of raws) {
    if (!acceptsEvent(raw)) continue;
    const parsed = dasActivityEventSchema.safeParse(raw);
    if (!parsed.success) found.push(`accepted, zod refuses: ${shown(raw)}`);
    else if (!Object.is(JSON.stringify(parsed.data), JSON.stringify(schemaFields(raw))))
      found.push(`zod's values differ: ${shown(raw)}`);
  }
  return found;
}

function shown(raw: Record<string, unknown>): string {
  return JSON.stringify(raw, (_, value: unknown) =>
    typeof value === 'bigint' || (typeof value === 'number' && !Number.isFinite(value))
      ? String(value)
      : value,
  );
}

describe('isPlainActivityEvent: the decrypt function skips zod only where zod accepts', () => {
  it('for every field and every kind of value, and what it accepts zod parses to the same values', () => {
    const raws = FIELDS.flatMap((field) =>
      VALUES.map((value) => withField(activityEvent(), field, value)),
    );
    expect(disagreements(raws)).toEqual([]);
    // Exactly zod's verdict on each, both ways: never stricter either (that would only be slower).
    const verdicts = raws.map((raw) => [
      acceptsEvent(raw),
      dasActivityEventSchema.safeParse(raw).success,
    ]);
    expect(verdicts.filter(([ours, zods]) => ours !== zods)).toEqual([]);
    // Not vacuous: both kinds occur in numbers.
    expect(verdicts.filter(([ours]) => ours).length).toBeGreaterThan(100);
    expect(verdicts.filter(([ours]) => !ours).length).toBeGreaterThan(150);
  });

  it('for every pair of fields at once', () => {
    const sample = [null, '', 7, Number.NaN, [], {}, undefined];
    let checked = 0;
    for (const [i, first] of FIELDS.entries())
      for (const second of FIELDS.slice(i + 1))
        for (const a of sample)
          for (const b of sample) {
            const raw = withField(withField(activityEvent(), first, a), second, b);
            expect(acceptsEvent(raw)).toBe(dasActivityEventSchema.safeParse(raw).success);
            checked++;
          }
    expect(checked).toBe(((FIELDS.length * (FIELDS.length - 1)) / 2) * sample.length ** 2);
  });

  it('refuses what is not an object, as zod does', () => {
    for (const raw of [null, undefined, 'record', 7, true, [], [activityEvent()], 1n])
      expect(acceptsEvent(raw)).toBe(false);
  });

  it('normalizes an accepted event as zod would have: the same event', () => {
    const raw = activityEvent({
      paramList: ['a', 7, null, { b: 1 }],
      remotePort: '5432',
      pid: 4242,
      exitCode: '1',
      errorMessage: 'permission denied',
      futureField: 'kept out',
    });
    expect(acceptsEvent(raw)).toBe(true);
    // zod's copy, normalized: it holds the schema's fields only, which the predicate also accepts.
    const viaZod = normalizeDasEvent(dasActivityEventSchema.parse(raw));
    expect(normalizeDasEvent(raw)).toEqual(viaZod);
    expect(JSON.stringify(normalizeDasEvent(raw))).toBe(JSON.stringify(viaZod));
  });
});

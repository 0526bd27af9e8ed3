import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { decodeDasRecords } from '../../src/access-audit/das/decode';
import { staticDataKeySource } from '../../src/access-audit/das/keys';
import { normalizeDasEvent } from '../../src/access-audit/das/normalize';
import { dasActivityEventSchema } from '../../src/access-audit/das/record';
import { activityEvent, dasRecord, FIELD_VALUES, streamKeys, withField } from './support/das';

// The oracle: the same fields as a loose zod object, the schema the decrypt function
// used before it became a plain (compiled) object schema.
const looseOracle = z.looseObject(dasActivityEventSchema.shape);

/** What the oracle says: refused by the schema, or missing a field every rule reads. */
function oracleRefuses(raw: unknown): boolean {
  const parsed = looseOracle.safeParse(raw);
  if (!parsed.success) return true;
  if (parsed.data.type === 'heartbeat' || parsed.data.dbUserName === 'rdsadmin') return false;
  return (['class', 'command', 'dbUserName'] as const).some(
    (field) => typeof parsed.data[field] !== 'string' || parsed.data[field] === '',
  );
}

describe('normalizeDasEvent refuses exactly what the schema refuses', () => {
  it('for every field of the schema and every kind of value', () => {
    const disagreements: string[] = [];
    let refused = 0;
    for (const field of Object.keys(dasActivityEventSchema.shape)) {
      for (const value of FIELD_VALUES) {
        const raw = withField(activityEvent(), field, value);
        const ours = normalizeDasEvent(raw).kind === 'invalid';
        if (ours) refused++;
        if (ours !== oracleRefuses(raw))
          disagreements.push(`${field} = ${JSON.stringify(value) ?? 'absent'}: ours ${ours}`);
      }
    }
    expect(disagreements).toEqual([]);
    // Not a vacuous agreement: most of those shapes are malformed.
    expect(refused).toBeGreaterThan(150);
  });

  it('for events that are not objects', () => {
    for (const raw of [null, undefined, 'record', 7, true, [], [activityEvent()]])
      expect(normalizeDasEvent(raw)).toMatchObject({
        kind: 'invalid',
        error: expect.stringMatching(/expected object/) as unknown,
      });
  });

  it('keeps the fields it does not read out of the event, and reads the same values', () => {
    const raw = activityEvent({ serverHost: '10.0.3.192', futureField: { a: 1 } });
    const normalized = normalizeDasEvent(raw);
    expect(normalized.kind).toBe('event');
    expect(JSON.stringify(normalized)).not.toMatch(/serverHost|futureField/);
  });

  it('counts every malformed event of a record, where it sits, and decodes the rest', async () => {
    const keys = streamKeys();
    const malformed = [
      activityEvent({ class: null }),
      activityEvent({ pid: { not: 'a number' } }),
      activityEvent({ paramList: 'not a list' }),
      activityEvent({ type: 7 }),
      'not an event',
      activityEvent({ dbUserName: '' }),
    ];
    const record = await dasRecord(keys, [activityEvent(), ...malformed, activityEvent()]);
    const result = await decodeDasRecords([record], staticDataKeySource(keys.dataKey));
    expect(result.events.map(({ position }) => position)).toEqual([0, 7]);
    expect(result.failures.map(({ event, error }) => [event, error.split(':')[0]])).toEqual([
      [1, 'class'],
      [2, 'pid'],
      [3, 'paramList'],
      [4, 'type'],
      [5, '(root)'],
      [6, 'activity event without dbUserName'],
    ]);
  });
});

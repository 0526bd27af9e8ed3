import { isLosslessNumber, LosslessNumber, parse } from 'lossless-json';
import { parseRowJson } from '../../src/history/row-json';

/** The lossless parse alone: every number that does not print back as itself kept as text. */
const oracle = (text: string): unknown =>
  parse(text, null, (n: string) => (String(Number(n)) === n ? Number(n) : new LosslessNumber(n)));

/** Structure and number kinds: a LosslessNumber and a number of the same text differ. */
const shape = (value: unknown): string =>
  JSON.stringify(value, (_key, v: unknown) => (isLosslessNumber(v) ? `LN:${v.value}` : v));

describe('parseRowJson', () => {
  // The native JSON.parse path is taken only when every number round-trips.
  it.each([
    '{"a": 1.10}',
    '{"a": 1.5, "b": "x\\"1.10"}',
    '{"a": "\\\\", "b": 2.50}',
    '{"a": "\\\\\\"", "b": 7, "c": "9007199254740993"}',
    '{"a": -0}',
    '{"a": 1e400, "b": 1E5, "c": 1e+21, "d": -1.5e-7, "e": 100000}',
    '{"a": 9007199254740993, "b": 9007199254740992}',
    '{"a": [1, 2.0, [3.10]], "b": {"c": 0.1}}',
    '{"__proto__": 1.5, "t": true, "f": false, "n": null}',
    '{"e": "1e5", "E": 1}',
    '"1.10"',
    '12.0',
    '12',
    'null',
  ])('gives what the lossless parse gives for %s', (text) => {
    const parsed = parseRowJson<unknown>(text);
    expect(shape(parsed)).toBe(shape(oracle(text)));
    if (parsed !== null && typeof parsed === 'object') {
      expect(Object.getPrototypeOf(parsed)).toBe(Object.getPrototypeOf(oracle(text)));
    }
  });
});

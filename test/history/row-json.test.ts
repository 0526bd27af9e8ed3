import fc from 'fast-check';
import * as losslessJson from 'lossless-json';
import { isLosslessNumber, LosslessNumber, parse } from 'lossless-json';
import { exactNumbers } from '../../src/history/exact-numbers';
import { copyRowJson, parseRowDocument, parseRowJson } from '../../src/history/row-json';

// lossless-json's parser, counted: parseRowJson should need it only in the rare case below.
vi.mock('lossless-json', async (actual) => {
  const module = await actual<typeof losslessJson>();
  return { ...module, parse: vi.fn(module.parse) };
});

/** The lossless parse alone: every number that does not print back as itself kept as text. */
const oracle = (text: string): unknown =>
  parse(text, null, (n: string) => (String(Number(n)) === n ? Number(n) : new LosslessNumber(n)));

/** Structure and number kinds: a LosslessNumber and a number of the same text differ. */
const shape = (value: unknown): string =>
  JSON.stringify(value, (_key, v: unknown) => (isLosslessNumber(v) ? `LN:${v.value}` : v));

/**
 * Deterministic (seeded) documents: numbers that do and do not print back as themselves,
 * strings with escapes and with U+0000 first, booleans, nesting.
 */
function generatedDocuments(count: number): string[] {
  let seed = 20261203;
  const next = (n: number) => {
    seed = (seed * 1103515245 + 12345) % 2147483648;
    return seed % n;
  };
  const numbers = [
    '0',
    '-0',
    '7',
    '1.5',
    '1.10',
    '2.50',
    '-1.5e-7',
    '1E5',
    '1e400',
    '0.1',
    '9007199254740993',
    '9007199254740992',
    '123456789012345678901234567890',
    '100.0',
  ];
  const strings = ['"x"', '"1.10"', '"\\u0000"', '"\\u00002.50"', '"a\\"b"', '"\\\\"', '"e"'];
  const value = (depth: number): string => {
    const pick = next(depth > 2 ? 5 : 7);
    if (pick <= 1) return numbers[next(numbers.length)]!;
    if (pick === 2) return strings[next(strings.length)]!;
    if (pick === 3) return ['true', 'false', 'null'][next(3)]!;
    if (pick === 4) return numbers[next(numbers.length)]!;
    if (pick === 5)
      return `[${Array.from({ length: next(4) }, () => value(depth + 1)).join(', ')}]`;
    // Distinct keys (jsonb has no duplicates); the first is sometimes __proto__ itself.
    const keys = ['a', '__proto__', 'e', '1.10', 'b'];
    const key = (i: number) => (i === 0 && next(3) === 0 ? '__proto__' : `${keys[next(5)]}${i}`);
    return `{${Array.from({ length: next(4) }, (_, i) => `"${key(i)}": ${value(depth + 1)}`).join(', ')}}`;
  };
  return Array.from({ length: count }, () => value(0));
}

/** JSON texts of every number form, as jsonb could hold them (fast-check). */
function jsonDocument(): fc.Arbitrary<string> {
  // Numbers of any form JSON allows (sign, a lone 0 or digits, a fraction with leading
  // zeros, an exponent of either case and sign; up to 25 digits: past 15, the digit
  // rules must hand over to String), between strings whose escapes put a quote, a
  // backslash or the U+0000 marker where the scan looks, at any depth, with whitespace.
  const digits = (min: number, max: number) =>
    fc.string({ unit: fc.constantFrom(...'0123456789'), minLength: min, maxLength: max });
  const integer = fc.oneof(
    fc.constant('0'),
    fc.tuple(fc.constantFrom(...'123456789'), digits(0, 24)).map(([a, b]) => a + b),
  );
  const fraction = fc.oneof(
    digits(1, 25),
    fc.tuple(fc.nat(9), digits(1, 17)).map(([zeros, b]) => '0'.repeat(zeros) + b),
  );
  const exponent = fc.tuple(fc.constantFrom('e', 'E'), fc.constantFrom('', '+', '-'), digits(1, 4));
  const number = fc
    .tuple(fc.boolean(), integer, fc.option(fraction), fc.option(exponent))
    .map(
      ([minus, i, f, e]) =>
        `${minus ? '-' : ''}${i}${f === null ? '' : `.${f}`}${e?.join('') ?? ''}`,
    );
  const piece = fc.oneof(
    fc.constantFrom(
      '\\"',
      '\\\\',
      '\\u0000',
      '\\u0022',
      '\\n',
      '1.10',
      '-0',
      ' ',
      'é',
      ':',
      ',',
      '{',
    ),
    fc.string({ maxLength: 3 }),
  );
  // Pieces that are not valid inside a JSON string as they are (a lone quote or
  // backslash) are written by JSON.stringify instead.
  const string = fc.array(piece, { maxLength: 6 }).map((pieces) => {
    const body = pieces.join('');
    try {
      JSON.parse(`"${body}"`);
      return `"${body}"`;
    } catch {
      return JSON.stringify(body);
    }
  });
  const space = fc.constantFrom('', ' ', '\n', '\t ');
  const { value } = fc.letrec<{ value: string; array: string; object: string }>((tie) => ({
    value: fc.oneof(
      { depthSize: 'small' },
      number,
      number,
      string,
      fc.constantFrom('true', 'false', 'null'),
      tie('array'),
      tie('object'),
    ),
    array: fc
      .array(fc.tuple(space, tie('value'), space), { maxLength: 5 })
      .map((items) => `[${items.map((item) => item.join('')).join(',')}]`),
    // A jsonb document has no duplicate keys (lossless-json refuses them).
    object: fc
      .uniqueArray(fc.tuple(string, space, tie('value')), {
        maxLength: 5,
        selector: ([key]) => JSON.parse(key) as string,
      })
      .map((members) => `{${members.map(([k, s, v]) => `${k}${s}:${s}${v}`).join(',')}}`),
  }));
  return value;
}

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
    // Numbers JSON.parse would round beside booleans, nested, and at the top.
    '{"t": true, "f": false, "price": 2.50, "qty": 2}',
    '[true, 1.10, [false, {"a": [2.50, -0, 1e400]}], "1.10"]',
    '{"__proto__": 1.50, "b": {"__proto__": [0.10]}}',
    // A string that starts with U+0000 (what marks a number internally): the lossless parse.
    '{"s": "\\u0000", "a": 1.10}',
    '{"\\u00001.10": 2.50, "a": [1.10]}',
    '{"s": "x\\u00001.10", "a": 1.10}',
    // Integers settled without Number/String (up to 15 digits) and just beyond.
    '{"a": 999999999999999, "b": -999999999999999, "c": 9999999999999999, "d": 0, "e": -7}',
    '[0, -0, 10, -10, 1000000000000000, 12345678901234567]',
    // Decimals settled by their digits: a trailing zero, up to 15 significant digits, and
    // the small ones String writes with an exponent; beside them, those left to String.
    '[2.50, -0.0, 0.10, 100.0, 6.25, -0.5, 0.000001, -0.000001, 0.0000001, 0.00000012]',
    '[123456789012.345, 1234567890123.456, 9007199254740.993, 0.123456789012345, 0.1234567890123456]',
    '[0.000001234567890123, 0.0000012345678901234, 1e+30, 1.0e+30, 1.5E-7]',
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

  // The offsets of the inexact numbers are kept in one array reused by every parse: a
  // document read after one with more of them must use only its own.
  it('gives each document its own inexact numbers when one with more came before', () => {
    const texts = [
      '{"a": 1.10, "b": [2.50, 3.20, -0], "c": {"d": 9007199254740993}}',
      '{"x": "a", "y": 4.50}',
      '{"z": 1.5, "w": [7]}',
      '[10.0, 20.0, 30.0, 40.0, 50.0, 60.0, 70.0, 80.0, 90.0, 100.0]',
      '[0.10]',
      '{"s": "\\u0000", "a": 1.10}',
      '{"q": 12.30}',
    ];
    for (let round = 0; round < 3; round++) {
      for (const text of texts)
        expect(shape(parseRowJson<unknown>(text))).toBe(shape(oracle(text)));
    }
  });

  it('gives what the lossless parse gives for generated documents', () => {
    for (const text of generatedDocuments(3000)) {
      expect(shape(parseRowJson<unknown>(text)), text).toBe(shape(oracle(text)));
    }
  });

  it('gives what the lossless parse gives for documents of every JSON number form (fast-check)', () => {
    const value = jsonDocument();
    fc.assert(
      fc.property(value, (text) => shape(parseRowJson<unknown>(text)) === shape(oracle(text))),
      { numRuns: 5000 },
    );
  });

  it("needs lossless-json's parser only for a string that starts with U+0000", () => {
    const parser = vi.mocked(parse);
    parser.mockClear();
    // Booleans and numbers JSON.parse would round (2.50): before, both took the slow parse.
    const row = parseRowJson(
      '{"active": true, "price": 2.50, "note": "1.10", "big": 9007199254740993}',
    );
    expect(shape(row)).toBe(
      shape({
        active: true,
        price: new LosslessNumber('2.50'),
        note: '1.10',
        big: new LosslessNumber('9007199254740993'),
      }),
    );
    expect(parser).not.toHaveBeenCalled();
    parseRowJson('{"s": "\\u0000x", "price": 2.50}');
    expect(parser).toHaveBeenCalledTimes(1);
  });
});

describe('parseRowDocument', () => {
  /** What it stands for: the lossless parse, then the exact columns' numbers as text. */
  const twoSteps = (text: string, columns: readonly string[]) =>
    shape(exactNumbers(parseRowJson<unknown>(text), columns));

  /** The top-level object's member names (decoded), or none. */
  const memberNames = (text: string): string[] => {
    const parsed: unknown = JSON.parse(text);
    return parsed !== null && typeof parsed === 'object' && !Array.isArray(parsed)
      ? Object.keys(parsed)
      : [];
  };

  it.each([
    ['{"id": 7, "price": 2.50, "qty": 3}', ['id', 'price']],
    // Beside a number of a column that is not exact, and one nested under an exact name.
    ['{"f": 1.10, "price": 2.50, "x": {"price": 3.10}}', ['price']],
    ['{"price": [2.50, 1.5], "p": 2.50}', ['price']],
    ['{"a": "price", "b": 1.10}', ['price']],
    ['{"x": {"price": 1}, "price": 2.50}', ['price']],
    ['{"__proto__": 1.50, "a": 2.50}', ['__proto__', 'a']],
    // A name written with an escape is not that text: `a\u0062` is "ab", not the column.
    ['{"a\\u0062": 2.50, "c": 1.10}', ['a\\u0062']],
    ['{"a\\u0062": 2.50}', ['ab']],
    ['{"a\\\\b": 2.50}', ['a\\b']],
    ['{"s": "\\u0000", "price": 2.50}', ['price']],
    ['[2.50, {"price": 2.50}]', ['price']],
    ['{"big": 9007199254740993, "n": 1e400, "price": 100.0}', ['big', 'n', 'price']],
    ['null', ['price']],
  ] as const)('gives exactNumbers(parseRowJson()) for %s with %j', (text, columns) => {
    expect(shape(parseRowDocument(text, columns))).toBe(twoSteps(text, columns));
  });

  it('gives exactNumbers(parseRowJson()) for generated documents and columns', () => {
    let seed = 7;
    const next = (n: number) => {
      seed = (seed * 1103515245 + 12345) % 2147483648;
      return seed % n;
    };
    for (const text of generatedDocuments(3000)) {
      // Some of its own member names, a name it does not have, one with a backslash.
      const columns = memberNames(text).filter(() => next(3) > 0);
      if (next(2) === 0) columns.push('zz', 'a\\0');
      expect(shape(parseRowDocument(text, columns)), `${text} ${JSON.stringify(columns)}`).toBe(
        twoSteps(text, columns),
      );
    }
  });

  it('gives exactNumbers(parseRowJson()) for documents of every JSON number form (fast-check)', () => {
    fc.assert(
      fc.property(jsonDocument(), fc.array(fc.boolean(), { maxLength: 6 }), (text, picks) => {
        const columns = memberNames(text).filter((_, i) => picks[i] ?? true);
        return shape(parseRowDocument(text, columns)) === twoSteps(text, columns);
      }),
      { numRuns: 5000 },
    );
  });

  it('leaves a document with a marker-like string to the lossless parse, as parseRowJson', () => {
    const text = '{"s": "\\u00002.50", "price": 2.50, "q": 1.10}';
    expect(shape(parseRowDocument(text, ['price']))).toBe(
      shape({ s: '\u00002.50', price: '2.50', q: new LosslessNumber('1.10') }),
    );
  });
});

describe('copyRowJson', () => {
  it('copies a parsed document exactly, sharing no object, array or number with it', () => {
    const text =
      '{"id": 9007199254740993, "price": 2.50, "tags": ["a", {"n": 1.10}], "meta": {"deep": [null, true]}, "__proto__": {"x": 1}}';
    const original = parseRowJson(text);
    const copy = copyRowJson(original);
    expect(shape(copy)).toBe(shape(original));
    expect(copy).toStrictEqual(parseRowJson(text));
    expect(Object.getPrototypeOf(copy)).toBe(Object.prototype);
    expect(Object.keys(copy)).toEqual(['id', 'price', 'tags', 'meta', '__proto__']);
    const o = original as { id: LosslessNumber; tags: unknown[]; meta: { deep: unknown[] } };
    o.id.value = '1';
    o.tags.push('x');
    (o.tags[1] as { n: LosslessNumber }).n.value = '0';
    o.meta.deep.pop();
    (original as Record<string, unknown>)['__proto__'] = null;
    expect(shape(copy)).toBe(shape(parseRowJson(text)));
  });

  it('copies only own members, whatever Object.prototype holds', () => {
    const original = parseRowJson('{"a": 1, "b": {"c": 2.50}}');
    const prototype = Object.prototype as Record<string, unknown>;
    prototype['polluted'] = { x: 1 };
    try {
      const copy = copyRowJson(original);
      expect(Object.keys(copy)).toEqual(['a', 'b']);
      expect(Object.prototype.hasOwnProperty.call(copy, 'polluted')).toBe(false);
      expect(shape(copy)).toBe(shape(original));
    } finally {
      delete prototype['polluted'];
    }
  });

  it('copies values that are not objects as they are', () => {
    for (const value of [null, 1, 'a', true, [1, [2]]]) expect(copyRowJson(value)).toEqual(value);
  });
});

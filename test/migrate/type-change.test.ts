import { isWideningTypeChange } from '../../src/migrate/type-change';

describe('type changes staging follows in place', () => {
  it.each([
    ['numeric(10,2)', 'numeric(12,4)'],
    ['numeric(10,2)', 'numeric'],
    ['character varying(5)', 'character varying(20)'],
    ['character varying(5)', 'text'],
    ['integer', 'bigint'],
    ['smallint', 'integer'],
    ['integer', 'numeric'],
    ['integer', 'numeric(12,0)'],
    ['integer[]', 'bigint[]'],
    ['timestamp(3) without time zone', 'timestamp without time zone'],
  ])('%s -> %s keeps every value', (from, to) => {
    expect(isWideningTypeChange(from, to)).toBe(true);
  });

  it.each([
    ['numeric(12,4)', 'numeric(10,2)'],
    ['numeric(10,2)', 'numeric(10,4)'], // fewer integer digits
    ['numeric', 'numeric(20,4)'],
    ['character varying(20)', 'character varying(5)'],
    ['text', 'character varying(20)'],
    ['bigint', 'integer'],
    ['integer', 'numeric(9,0)'],
    ['integer', 'text'],
    ['text', 'integer'],
    ['real', 'double precision'], // 0.1::real::double precision is 0.100000001490116
    ['timestamp without time zone', 'timestamp with time zone'],
    ['character(5)', 'character(10)'], // re-padded: the value changes
    ['integer[]', 'bigint'],
  ])('%s -> %s is refused', (from, to) => {
    expect(isWideningTypeChange(from, to)).toBe(false);
  });
});

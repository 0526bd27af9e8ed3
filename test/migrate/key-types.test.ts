import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import pg from 'pg';
import { parseConfig } from '../../src/config';
import { checkSource, SourceSetupError } from '../../src/engine/source-setup';
import { SourceTableError } from '../../src/migrate/introspect';
import { SUPPORTED_KEY_TYPES } from '../../src/migrate/key-types';
import { migrateTarget } from '../../src/migrate/migrate-target';
import { verifyAuditTrail } from '../../src/verify/verify';
import { createTestDatabase, withClient } from '../support/databases';

/**
 * #17 item 6 for every key type: the audit log keys a row's versions by its key's JSON,
 * so a key type whose equal values have several texts splits one row's history
 * (DELETE k = '1 day' and INSERT k = '24:00:00' in one transaction were recorded as two
 * rows). Supported key types are checked against their type's `=` here; every other
 * type is refused by migrate and by the engine's, doctor's and verify's pre-flight.
 */

const SOURCE_DDL = `
  CREATE EXTENSION citext;
  CREATE COLLATION nocase (provider = icu, locale = 'und-u-ks-level2', deterministic = false);
  CREATE DOMAIN span AS interval;
  CREATE DOMAIN nocase_text AS text COLLATE nocase;
  CREATE DOMAIN code AS varchar(8);
  CREATE TYPE pair AS (a numeric, b text);
  CREATE TYPE mood AS ENUM ('happy', 'sad');
  CREATE DOMAIN mood_key AS mood;
  CREATE TABLE plain (id int PRIMARY KEY, v text);
  CREATE TABLE by_interval (k interval PRIMARY KEY, v text);
  CREATE TABLE by_span (k span PRIMARY KEY, v text);
  CREATE TABLE by_citext (k citext PRIMARY KEY, v text);
  CREATE TABLE by_nocase (k text COLLATE nocase PRIMARY KEY, v text);
  CREATE TABLE by_nocase_domain (k nocase_text PRIMARY KEY, v text);
  CREATE TABLE by_jsonb (k jsonb PRIMARY KEY, v text);
  CREATE TABLE by_numeric_array (k numeric[] PRIMARY KEY, v text);
  CREATE TABLE by_int_array (k int[] PRIMARY KEY, v text);
  CREATE TABLE by_pair (k pair PRIMARY KEY, v text);
  CREATE TABLE by_range (k numrange PRIMARY KEY, v text);
  CREATE TABLE by_bpchar (k bpchar PRIMARY KEY, v text);
  CREATE TABLE by_id_and_span (id int, "Span ""q""" interval, v text, PRIMARY KEY (id, "Span ""q"""));
  CREATE TABLE every_supported (
    k1 int2, k2 int4, k3 int8, k4 numeric, k5 float4, k6 float8, k7 bool, k8 text,
    k9 varchar(10), k10 char(3), k11 uuid, k12 bool, k13 date, k14 time, k15 timetz,
    k16 timestamp, k17 timestamptz, k18 inet, k19 cidr, k20 macaddr, k21 macaddr8,
    k22 mood, k23 mood_key, k24 code, k25 text COLLATE "C", k26 bytea, k27 money,
    PRIMARY KEY (k1, k2, k3, k4, k5, k6, k7, k8, k9, k10, k11, k12, k13, k14, k15, k16, k17,
                 k18, k19, k20, k21, k22, k23, k24, k25, k26, k27));`;

/** Each refused table: what its refusal must say (column, type, why). */
const REFUSED: ReadonlyArray<readonly [string, RegExp]> = [
  ['by_interval', /key column "k" of type interval, .*'1 day' = '24:00:00'/],
  ['by_span', /key column "k" of type span, a domain over interval, .*'1 day' = '24:00:00'/],
  ['by_citext', /key column "k" of type citext, .*ignores case.*'Bob' = 'bob'/],
  ['by_nocase', /key column "k" of type text, .*collation public\.nocase is nondeterministic/],
  [
    'by_nocase_domain',
    /key column "k" of type nocase_text, a domain over text, .*nondeterministic/,
  ],
  ['by_jsonb', /key column "k" of type jsonb, .*\{"a": 1\.0\} = \{"a": 1\}/],
  ['by_numeric_array', /key column "k" of type numeric\[\], .*lower bounds/],
  ['by_int_array', /key column "k" of type integer\[\], .*lower bounds/],
  ['by_pair', /key column "k" of type pair, .*equal rows can have several texts/],
  ['by_range', /key column "k" of type numrange, .*equal ranges/],
  ['by_bpchar', /key column "k" of type bpchar, .*without a length ignores trailing spaces/],
  ['by_id_and_span', /key column "Span \\"q\\"" of type interval/],
];

describe('key types (#17 item 6)', () => {
  let sourceUrl: string;

  beforeAll(async () => {
    sourceUrl = await createTestDatabase('keysrc');
    await withClient(sourceUrl, (client) => client.query(SOURCE_DDL));
  }, 60_000);

  const migrate = async (table: string) =>
    migrateTarget({
      config: parseConfig({ tables: [{ table: 'plain' }, { table }] }),
      sourceUrl,
      targetUrl: await createTestDatabase('keytgt'),
    });

  it.each(REFUSED)(
    'migrate refuses %s, naming the table, the column, the type, why and the remedy',
    async (table, says) => {
      const failure = migrate(table);
      await expect(failure).rejects.toBeInstanceOf(SourceTableError);
      const message = await failure.catch((error: Error) => error.message);
      expect(message).toMatch(new RegExp(`public\\.${table} has key column`));
      expect(message).toMatch(says);
      expect(message).toMatch(/one row's history would be split.*"Supported schemas"/);
      expect(message).not.toMatch(/public\.plain/);
    },
    60_000,
  );

  it('the engine (and doctor, verify) refuse the same before creating a publication', async () => {
    const tables = parseConfig({
      tables: [{ table: 'by_interval' }, { table: 'by_citext' }],
    }).tables;
    const client = new pg.Client({ connectionString: sourceUrl });
    await client.connect();
    try {
      const failure = checkSource(client, tables);
      await expect(failure).rejects.toBeInstanceOf(SourceSetupError);
      await expect(failure).rejects.toThrow(
        /public\.by_interval has key column "k" of type interval.*public\.by_citext has key column "k" of type citext/,
      );
      const { rows } = await client.query('SELECT pubname FROM pg_publication');
      expect(rows).toEqual([]);
    } finally {
      await client.end();
    }
  });

  it('verify refuses the same before it compares anything', async () => {
    const failure = verifyAuditTrail({
      config: parseConfig({ tables: [{ table: 'by_nocase' }] }),
      sourceUrl,
      targetUrl: await createTestDatabase('keytgt'),
    });
    await expect(failure).rejects.toBeInstanceOf(SourceTableError);
    await expect(failure).rejects.toThrow(/public\.by_nocase has key column "k" of type text/);
  });

  it('accepts a key of every supported type, enums and domains over them', async () => {
    await expect(migrate('every_supported')).resolves.toBeDefined();
  }, 60_000);

  /**
   * Spellings of values of each type: pairs equal under the type's `=` must have the same
   * key JSON (as the capture functions make it: key_of over to_jsonb, TimeZone UTC,
   * extra_float_digits 1), and pairs not equal different ones.
   */
  const SPELLINGS: Readonly<Record<string, readonly string[]>> = {
    int2: ['1', '01', '+1', ' 1', '0', '-0', '-32768'],
    int4: ['1', '01', '+1', '0', '-0', '2147483647'],
    int8: ['1', '01', '9007199254740993', '9007199254740992', '-0', '0'],
    numeric: [
      '2',
      '2.0',
      '2.00',
      '2e0',
      '0.002e3',
      '-0',
      '0.0',
      'NaN',
      'nan',
      '1e-3',
      '0.001',
      // 'Infinity': PostgreSQL 14 and later (a string in JSON, as NaN).
    ],
    float4: [
      '1',
      '1.0',
      '1e0',
      '-0',
      '0',
      'NaN',
      'Infinity',
      'inf',
      '0.1',
      '0.100000001',
      '16777217',
    ],
    float8: ['0.3', '0.30000000000000004', '0.1e1', '1', '-0', '0', 'NaN', '-Infinity', '1e308'],
    bool: ['t', 'true', 'yes', 'on', '1', 'f', 'false', 'off', '0'],
    text: ['Bob', 'bob', 'a', 'a ', 'ü', 'u\u0308'],
    varchar: ['Bob', 'bob', 'a', 'a '],
    bpchar: ['a', 'a ', 'a  ', 'A', 'ab'],
    uuid: [
      'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11',
      'A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11',
      '{a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11}',
      'a0eebc999c0b4ef8bb6d6bb9bd380a11',
      'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a12',
    ],
    date: [
      '2024-01-02',
      '2024-1-2',
      '20240102',
      'Jan 2 2024',
      '2024-01-03',
      'infinity',
      '0001-01-01 BC',
    ],
    time: ['10:00', '10:00:00', '10:00:00.000000', '24:00', '00:00', '10:00:00.000001'],
    timetz: ['12:00+01', '11:00+00', '12:00:00+01:00', '11:00Z', '12:00+0100'],
    timestamp: [
      '2024-01-01 00:00',
      '2024-01-01T00:00:00.000000',
      'Jan 1 2024',
      'infinity',
      '2024-01-01 00:00:00.000001',
    ],
    timestamptz: [
      '2024-01-01 01:00+01',
      '2024-01-01 00:00+00',
      '2024-01-01 00:00Z',
      '2023-12-31 19:00 America/New_York',
      '2024-01-01 00:00:00.000001+00',
    ],
    inet: [
      '1.2.3.4',
      '1.2.3.4/32',
      '::ffff:1.2.3.4',
      '::1',
      '0:0:0:0:0:0:0:1',
      '1.2.3.4/24',
      '::1/128',
    ],
    cidr: ['1.2.3.0/24', '1.2.3/24', '::/0', '0::/0', '1.2.3.0/25'],
    macaddr: [
      '08:00:2b:01:02:03',
      '08-00-2B-01-02-03',
      '08002b010203',
      '0800.2b01.0203',
      '08:00:2b:01:02:04',
    ],
    macaddr8: [
      '08:00:2b:01:02:03:04:05',
      '08-00-2B-01-02-03-04-05',
      '08002b0102030405',
      '08:00:2b:ff:fe:01:02:03',
      '08:00:2b:01:02:03',
    ],
    // Hex and escape input of the same bytes; the empty value.
    bytea: ['\\x61', 'a', '\\141', '\\x6162', 'ab', '\\x', '', '\\x00', '\\000'],
    // Input rounds to cents: 0.001 is $0.00.
    money: ['1234.5', '$1,234.50', '1,234.50', '1234.50', '0', '-0', '0.001', '-1.5', '($1.50)'],
  };

  /**
   * Pairs of spellings where `=` and the key JSON disagree, for values made by
   * `cast` (SQL over the spelling `s`).
   */
  const disagreements = (targetUrl: string, cast: string, spellings: readonly string[]) =>
    withClient(targetUrl, async (client) => {
      // The output settings the capture functions pin (triggers/capture-change.sql).
      await client.query(
        "SET TimeZone = 'UTC'; SET extra_float_digits = 1; SET DateStyle = 'ISO, MDY'; " +
          "SET IntervalStyle = 'postgres'; SET bytea_output = 'hex'; SET lc_monetary = 'C'",
      );
      const keyOf = (v: string) =>
        `audit.key_of(pg_catalog.jsonb_build_object('k', pg_catalog.to_jsonb(${v})), '{k}')::text`;
      const { rows } = await client.query<{ a: string; b: string; equal: boolean }>(
        `WITH v AS (SELECT u.s, ${cast} AS v FROM unnest($1::text[]) AS u(s))
         SELECT a.s AS a, b.s AS b, a.v = b.v AS equal
           FROM v a, v b
          WHERE a.s < b.s AND (a.v = b.v) IS DISTINCT FROM (${keyOf('a.v')} = ${keyOf('b.v')})`,
        [spellings],
      );
      return rows;
    });

  describe("one key per value, under the type's equality", () => {
    let targetUrl: string;
    beforeAll(async () => {
      targetUrl = await createTestDatabase('keytgt');
      await migrateTarget({
        config: parseConfig({ tables: [{ table: 'plain' }] }),
        sourceUrl,
        targetUrl,
      });
      await withClient(targetUrl, (client) => client.query(SOURCE_DDL));
    }, 60_000);

    it('the README lists every supported type, and no other', () => {
      const readme = readFileSync(join(__dirname, '../../README.md'), 'utf8');
      const keys = readme.slice(
        readme.indexOf('- **Keys**:'),
        readme.indexOf('- a domain counts as'),
      );
      const listed = [...keys.matchAll(/`([a-z][a-z0-9]*)`/g)].map((m) => m[1]!);
      expect(new Set(listed.filter((name) => name !== 'deterministic'))).toEqual(
        new Set(Object.keys(SUPPORTED_KEY_TYPES)),
      );
    });

    it('every supported type has spellings here', () => {
      expect(Object.keys(SPELLINGS).sort()).toEqual(Object.keys(SUPPORTED_KEY_TYPES).sort());
    });

    it.each(Object.entries(SPELLINGS))('%s', async (type, spellings) => {
      const typed = type === 'bpchar' ? 'char(3)' : type === 'varchar' ? 'varchar(10)' : type;
      expect(await disagreements(targetUrl, `CAST(u.s AS ${typed})`, spellings)).toEqual([]);
    });

    it('an enum (one label per value), and text under a deterministic non-default collation', async () => {
      expect(await disagreements(targetUrl, 'CAST(u.s AS mood)', ['happy', 'sad'])).toEqual([]);
      expect(
        await disagreements(targetUrl, 'CAST(u.s AS text) COLLATE "C"', ['Bob', 'bob', 'a', 'a ']),
      ).toEqual([]);
    });

    // The refusals' reasons, shown: equal values with two keys, or two values with one.
    it.each([
      [
        'interval',
        'CAST(u.s AS interval)',
        ['1 day', '24:00:00', '86400 seconds', '1 mon', '30 days'],
      ],
      ['citext', 'CAST(u.s AS citext)', ['Bob', 'bob']],
      ['a nondeterministic collation', 'CAST(u.s AS text) COLLATE nocase', ['Bob', 'bob']],
      ['jsonb', 'CAST(u.s AS jsonb)', ['{"a": 1.0}', '{"a": 1}']],
      ['numeric[]', 'CAST(u.s AS numeric[])', ['{1.0}', '{1}']],
      ['int[] (lower bounds)', 'CAST(u.s AS int[])', ['[2:3]={1,2}', '{1,2}']],
      ['a composite', 'CAST(u.s AS pair)', ['(1.0,x)', '(1,x)']],
      ['numrange', 'CAST(u.s AS numrange)', ['[1.0,2)', '[1,2)']],
      ['bpchar without a length', 'CAST(u.s AS bpchar)', ['a', 'a ']],
    ])('refused: %s', async (_, cast, spellings) => {
      expect((await disagreements(targetUrl, cast, spellings)).length).toBeGreaterThan(0);
    });
  });
});

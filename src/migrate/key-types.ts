/**
 * Which primary-key types history can be keyed by: the one list `migrate`, the engine,
 * `doctor` and `verify` check (through `unpublishableReasons`), the README's "Supported
 * schemas" and the history oracle follow.
 *
 * The audit log keys each version by its key's JSON (`key_of` over `to_jsonb` of the
 * staging row). One row has one history only if equal keys, under the equality the
 * source's unique index uses, always have the same JSON. That holds for the types
 * below, as the capture functions render them (TimeZone UTC and extra_float_digits
 * pinned), and `key_of` normalises the numbers; `test/migrate/key-types.test.ts` checks
 * each claim against the type's `=`. Any other type is refused, naming the column: an
 * interval key `'1 day'` deleted and inserted again as `'24:00:00'` would otherwise be
 * recorded as two rows.
 */
import type { QueryRunner, TableName } from './publishable';

/**
 * Built-in (pg_catalog) key types whose values have one JSON each under the type's
 * equality, and why. Domains count as their base type; enums are accepted too (one
 * label per value).
 */
export const SUPPORTED_KEY_TYPES: Readonly<Record<string, string>> = {
  int2: 'one text per value',
  int4: 'one text per value',
  int8: 'one text per value',
  numeric: 'normalised: trailing zeros of the scale are dropped (2 and 2.00 are one key)',
  float4: 'normalised: -0 and 0 are one key; shortest exact text',
  float8: 'normalised: -0 and 0 are one key; shortest exact text',
  bool: 'one text per value',
  text: 'with a deterministic collation, equality is byte equality',
  varchar: 'with a deterministic collation, equality is byte equality',
  bpchar: 'with a length (char(n)) and a deterministic collation: values are padded to it',
  uuid: 'one text per value (lower case)',
  date: 'one text per value',
  time: 'one text per value',
  timetz: "equality compares the time and the zone ('12:00+01' <> '11:00+00')",
  timestamp: 'one text per value',
  timestamptz: 'one text per value: rendered in UTC',
  inet: 'one text per value',
  cidr: 'one text per value',
  macaddr: 'one text per value',
  macaddr8: 'one text per value',
  bytea: 'one text per value: hex (bytea_output pinned wherever keys are rendered)',
  money: "one text per value under lc_monetary 'C' (pinned wherever keys are rendered)",
};

/** Why a type that is not supported splits histories, where the reason is specific. */
const REFUSED_BECAUSE: Readonly<Record<string, string>> = {
  interval:
    "equal intervals have several texts ('1 day' = '24:00:00' = '86400 seconds', '1 mon' = '30 days')",
  citext:
    "citext equality ignores case as the source database's default collation lowercases " +
    "('Bob' = 'bob'), which the target cannot reproduce exactly",
  jsonb: 'equal documents have several texts (numbers: {"a": 1.0} = {"a": 1})',
};

/** The remedy, the same for every refused key (it lists {@link SUPPORTED_KEY_TYPES}). */
const REMEDY =
  'audit the table with a primary key of a supported type (README, "Supported schemas": ' +
  `${Object.keys(SUPPORTED_KEY_TYPES).join(', ')} (text, varchar and bpchar with a ` +
  'deterministic collation, bpchar with a length), an enum, or a domain over one of these)';

interface KeyColumnRow {
  name: string;
  declared: string;
  base_type: string;
  base_name: string;
  builtin: boolean;
  kind: string;
  is_array: boolean;
  typmod: number;
  collation: string | null;
  deterministic: boolean | null;
}

/**
 * Each primary-key column of the table, its type followed through domains to the base
 * type (with the typmod a domain sets), and its collation (a domain's, or the column's
 * own COLLATE: the one the primary key's index uses).
 */
const KEY_COLUMNS_SQL = `
  WITH RECURSIVE key_column AS (
    SELECT a.attname::text AS name, k.ord, a.atttypid, a.atttypmod, a.attcollation
      FROM pg_catalog.pg_index i
      CROSS JOIN LATERAL pg_catalog.unnest(i.indkey::int2[]) WITH ORDINALITY AS k(attnum, ord)
      JOIN pg_catalog.pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum
     WHERE i.indrelid OPERATOR(pg_catalog.=) pg_catalog.to_regclass(pg_catalog.format('%I.%I', $1::text, $2::text)) AND i.indisprimary
  ), base AS (
    SELECT name, ord, atttypid AS type_oid, atttypmod AS typmod FROM key_column
    UNION ALL
    SELECT b.name, b.ord, t.typbasetype,
           CASE WHEN t.typtypmod <> -1 THEN t.typtypmod ELSE b.typmod END
      FROM base b JOIN pg_catalog.pg_type t ON t.oid = b.type_oid
     WHERE t.typtype = 'd'
  )
  SELECT kc.name, pg_catalog.format_type(kc.atttypid, kc.atttypmod) AS declared,
         pg_catalog.format_type(t.oid, b.typmod) AS base_type, t.typname::text AS base_name,
         t.typnamespace OPERATOR(pg_catalog.=) 'pg_catalog'::pg_catalog.regnamespace AS builtin, t.typtype::text AS kind,
         t.typcategory = 'A' AS is_array, b.typmod,
         CASE WHEN kc.attcollation OPERATOR(pg_catalog.<>) 0 THEN pg_catalog.format('%I.%I', cn.nspname, c.collname) END AS collation,
         c.collisdeterministic AS deterministic
    FROM key_column kc
    JOIN base b ON b.name = kc.name
    JOIN pg_catalog.pg_type t ON t.oid = b.type_oid AND t.typtype <> 'd'
    LEFT JOIN pg_catalog.pg_collation c ON c.oid = kc.attcollation
    LEFT JOIN pg_catalog.pg_namespace cn ON cn.oid = c.collnamespace
   ORDER BY kc.ord`;

/** A primary-key column's type, as {@link keyColumnTypes} reads it. */
export interface KeyColumnType {
  readonly name: string;
  /**
   * The base type (domains followed) when it is built in (pg_catalog), e.g. `numeric`;
   * null for an enum or any other type.
   */
  readonly builtin: string | null;
  /** Why the type cannot key a history, or null when it is supported. */
  readonly unsupported: string | null;
}

/**
 * Each primary-key column of a table, in key order, with its base type and whether it
 * is a supported key type. The engine reads its staging tables' keys with it.
 *
 * @example
 * ```ts
 * await keyColumnTypes(run, { schema: 'audit', table: 'orders_staging' });
 * // [{ name: 'id', builtin: 'numeric', unsupported: null }]
 * ```
 */
export async function keyColumnTypes(run: QueryRunner, table: TableName): Promise<KeyColumnType[]> {
  const columns = await run<KeyColumnRow>(KEY_COLUMNS_SQL, [table.schema, table.table]);
  return columns.map((column) => ({
    name: column.name,
    builtin: column.builtin && column.kind === 'b' ? column.base_name : null,
    unsupported: unsupportedBecause(column),
  }));
}

/**
 * Why each primary-key column of each table cannot key its history, with the remedy.
 * Empty when every key is of a supported type (see {@link SUPPORTED_KEY_TYPES}).
 *
 * @example
 * ```ts
 * await unsupportedKeyReasons(run, [{ schema: 'public', table: 'slots' }]);
 * // ['public.slots has key column "length" of type interval, ...']
 * ```
 */
export async function unsupportedKeyReasons(
  run: QueryRunner,
  tables: readonly TableName[],
): Promise<string[]> {
  const reasons: string[] = [];
  for (const table of tables) {
    const columns = await run<KeyColumnRow>(KEY_COLUMNS_SQL, [table.schema, table.table]);
    for (const column of columns) {
      const why = unsupportedBecause(column);
      if (why === null) continue;
      const type =
        column.declared === column.base_type
          ? column.declared
          : `${column.declared}, a domain over ${column.base_type}`;
      reasons.push(
        `${table.schema}.${table.table} has key column ${JSON.stringify(column.name)} of type ` +
          `${type}, which cannot key its history: ${why}, so one row's history would be ` +
          `split (or two rows' merged); ${REMEDY}`,
      );
    }
  }
  return reasons;
}

/** Why a key column's type does not give one key per value, or null when it does. */
function unsupportedBecause(column: KeyColumnRow): string | null {
  if (column.is_array) {
    return (
      "an array key's JSON drops its lower bounds ('[2:3]={1,2}' and '{1,2}' are different " +
      'keys) and keeps the spelling of equal elements (numeric {1.0} = {1})'
    );
  }
  if (column.kind === 'e') return null;
  if (column.kind === 'r' || column.kind === 'm') {
    return "equal ranges can have several texts (numrange '[1.0,2)' = '[1,2)')";
  }
  if (column.kind === 'c') {
    return "equal rows can have several texts (a numeric member: '(1.0)' = '(1)')";
  }
  if (!column.builtin || !(column.base_name in SUPPORTED_KEY_TYPES)) {
    return (
      REFUSED_BECAUSE[column.base_name] ??
      `the kit does not know that equal ${column.base_type} values have one text each`
    );
  }
  if (column.deterministic === false) {
    return (
      `its collation ${column.collation} is nondeterministic: values with different text ` +
      "are equal ('Bob' = 'bob' under a case-insensitive collation)"
    );
  }
  if (column.base_name === 'bpchar' && column.typmod < 0) {
    return "bpchar without a length ignores trailing spaces ('a' = 'a  ') but keeps them in its text";
  }
  return null;
}

import { quoteIdent, quoteQualified } from '../../../src/postgres/identifiers';
import { SUPPORTED_KEY_TYPES } from '../../../src/migrate/key-types';

/**
 * A generated workload: plain data, so it can be printed, stored in a regression test
 * and replayed exactly. Statements refer to columns and values by small numbers that
 * are resolved against the table's columns *at that step* (schema changes move them),
 * so fast-check can shrink any part without making the rest invalid.
 */
export interface Workload {
  /** `ALTER DATABASE <source> SET name = value` before anything runs (session settings that must not leak). */
  readonly sourceSettings: Readonly<Record<string, string>>;
  /** Literals of {@link TYPES} the workload does not use, by type. @default {} */
  readonly excludedValues?: Readonly<Record<string, readonly string[]>>;
  readonly tables: readonly TableSpec[];
  readonly steps: readonly Step[];
  /**
   * Engine crashes: the n-th catch-up runs the engine as a process that kills itself
   * (`kill -9`) at `crashes[n]`, then restarts it. None when absent.
   */
  readonly crashes?: readonly (CrashSpec | null)[];
  /** The config's `auditSchema` (#17 item 17: any name works). @default 'audit' */
  readonly auditSchema?: string;
  /**
   * After the final comparison, a staging row is edited directly on the target (#17
   * item 10): verify must then report exactly that row. None when absent.
   */
  readonly tamper?: Tamper;
  /**
   * The target starts as release 0.1.0 left it (test/migrate/fixtures/target-0.1.0.sql:
   * `public.items` audited, with history), so the first `migrate` is an upgrade (#17
   * item 20) that also sees `public.items` gone from the config (item 19). Only with the
   * default audit schema. @default none (a fresh target)
   */
  readonly upgradeFrom?: '0.1.0';
  /**
   * A table removed from the config may be added back by a later `configure` step (#17
   * item 19, round trip: reloaded, see expected-history.ts rule 1). @default false (a
   * removed table stays out)
   */
  readonly readdTables?: boolean;
  /**
   * Every `migrate` runs with `--drop-staging`: a removed table's staging table is
   * dropped with its removal, and one added back loads into a new staging table (#17
   * item 19). @default false (the staging table is kept)
   */
  readonly dropStaging?: boolean;
}

/**
 * A direct edit of one live staging row (the first by key): a recorded value column set
 * to NULL where it is not, the row flagged deleted, or the row deleted. No audit row
 * records it, so only verify's staging check can see it.
 */
export interface Tamper {
  readonly table: number;
  readonly kind: 'null-value' | 'flag-deleted' | 'delete';
  /**
   * Edit a row as the initial load left it (empty change sequence) rather than one a
   * change wrote (once recorded as a second SNAPSHOT version: #17 item 10, see
   * regressions/issue-17.test.ts). @default false
   */
  readonly loadedRow?: boolean;
}

/** Where the engine kills itself (see src/engine/fault-injection.ts), and its batch size. */
export interface CrashSpec {
  readonly point: 'load-batch' | 'apply-batch' | 'after-commit' | 'after-ack';
  /** Crash the nth time the point is reached. */
  readonly nth: number;
  /** Rows per apply statement (small: big transactions span several batches). */
  readonly batchSize: number;
  /**
   * A generated crash point the catch-up may never reach (nothing to load, fewer
   * batches than `nth`): then the run simply finishes. Without it the run must be killed
   * there, or the scenario fails: a regression's crash point that is never reached
   * proves nothing. @default false
   */
  readonly mayNotBeReached?: boolean;
}

/** A source table. Its first `keyCount` columns are the primary key. */
export interface TableSpec {
  readonly schema: string;
  readonly name: string;
  readonly columns: readonly ColumnSpec[];
  readonly keyCount: number;
  /** The config's `ignoreColumns` (value columns only). @default [] */
  readonly ignoreColumns?: readonly string[];
  /** `CREATE UNLOGGED TABLE`: migrate must refuse it (#17 item 15). @default false */
  readonly unlogged?: boolean;
  /**
   * `REPLICA IDENTITY FULL`, `USING INDEX` on a unique index of the key columns (both
   * accepted, #17 item 12), or `USING INDEX` on another column (refused). @default the key
   */
  readonly replicaIdentity?: ReplicaIdentity;
  /**
   * `PRIMARY KEY ... DEFERRABLE`: migrate must refuse it (#17 item 14: under the default
   * identity, publishing it makes UPDATE and DELETE fail on the source; under FULL, a
   * one-statement key swap would stop the pipeline). @default false
   */
  readonly deferrableKey?: boolean;
  /**
   * A child table `<name>_child () INHERITS (<table>)`, without a key: migrate must refuse
   * the parent (#17 items 11 and 14). @default false
   */
  readonly inheritanceChild?: boolean;
  /**
   * Not in the config at the start: a `configure` step adds it after the first run
   * (#17 item 13: it must be loaded consistently with the running stream). @default false
   */
  readonly laterInConfig?: boolean;
  /**
   * Partitioned by HASH of its first hashable key column ({@link partitionColumn}) into
   * this many leaf partitions `<name>_p0`, ... (#17 item 11), all listed in the config's
   * `partitions`; a key change may move a row to another partition.
   * @default not partitioned
   */
  readonly partitions?: number;
  /**
   * The config's `partitions` leaves the last partition out: migrate must refuse the
   * list (it would lose that partition's changes under DMS). @default false
   */
  readonly partitionMissing?: boolean;
  /** The last partition has REPLICA IDENTITY NOTHING: migrate must refuse it. @default false */
  readonly partitionWithoutIdentity?: boolean;
  /**
   * A stored generated column `gen_nulls` (see {@link generatedColumnSql}) over the first
   * value column (#17 item 5: pgoutput does not send it before PostgreSQL 18; the kit
   * leaves it out of staging, history and verify). @default false
   */
  readonly generated?: boolean;
}

/** The name a table's generated column is created with (later ones add `_<n>`). */
export const GENERATED_COLUMN_PREFIX = 'gen_nulls';

/**
 * A stored generated column over `base`: `num_nulls` is immutable for any type, and an
 * UPDATE that sets `base` to or from NULL changes it.
 */
function generatedColumnSql(name: string, base: string): string {
  return `${quoteIdent(name)} integer GENERATED ALWAYS AS (num_nulls(${quoteIdent(base)})) STORED`;
}

/** The key column a partitioned table is partitioned by: its first hashable one. */
export function partitionColumn(table: TableSpec): ColumnSpec {
  const column = table.columns
    .slice(0, table.keyCount)
    .find((c) => KEY_TYPES[c.type]?.hashable !== false);
  if (!column) throw new Error(`table ${table.name} has no key column to partition by hash`);
  return column;
}

/** The leaf partitions of a partitioned table (empty when it is not partitioned). */
export function partitionNames(table: TableSpec): string[] {
  return Array.from({ length: table.partitions ?? 0 }, (_, i) => `${table.name}_p${i}`);
}

export type ReplicaIdentity = 'full' | 'key-index' | 'other-index';

/** A column: its name and a type of {@link TYPES} (or {@link KEY_TYPES} for key columns). */
export interface ColumnSpec {
  readonly name: string;
  readonly type: string;
}

/** A key value: `n` picks the value, `spelling` how it is written (2, 2.0, 2.00 for numeric). */
export interface KeyRef {
  readonly n: number;
  readonly spelling: number;
}

export type Statement =
  | {
      readonly kind: 'insert';
      readonly table: number;
      readonly key: readonly KeyRef[];
      readonly values: readonly number[];
    }
  | {
      readonly kind: 'update';
      readonly table: number;
      readonly key: readonly KeyRef[];
      readonly set: readonly (readonly [number, number])[];
    }
  | {
      readonly kind: 'updateKey';
      readonly table: number;
      readonly key: readonly KeyRef[];
      readonly newKey: readonly KeyRef[];
    }
  | { readonly kind: 'delete'; readonly table: number; readonly key: readonly KeyRef[] }
  | {
      readonly kind: 'savepoint';
      readonly statements: readonly Statement[];
      readonly rollback: boolean;
    };

/** A statement of one of two concurrent clients. */
export interface ClientStatement {
  readonly client: 0 | 1;
  readonly statement: Statement;
}

/** One source transaction. */
export interface Transaction {
  readonly statements: readonly Statement[];
  readonly end: 'commit' | 'rollback';
}

export type DdlChange =
  | { readonly kind: 'add'; readonly name: string; readonly type: string }
  | { readonly kind: 'drop'; readonly column: number }
  | { readonly kind: 'rename'; readonly column: number; readonly to: string }
  | { readonly kind: 'widen'; readonly column: number }
  /**
   * On the table's generated column (#17 item 5): adds one over the first value column
   * when it has none, else renames it (`rename`) or drops it.
   */
  | { readonly kind: 'generated'; readonly rename: boolean };

export type Step =
  | { readonly kind: 'tx'; readonly tx: Transaction }
  /**
   * Two clients at once: each statement runs on its client (0 or 1), in this order, inside
   * that client's transaction; then both end (`ends[client]`), the second first if
   * `secondEndsFirst`. A client without statements opens no transaction, so shrinking
   * can take a client away statement by statement (see {@link interleavedSql}).
   */
  | {
      readonly kind: 'concurrent';
      readonly statements: readonly ClientStatement[];
      readonly ends: readonly [Transaction['end'], Transaction['end']];
      readonly secondEndsFirst: boolean;
    }
  /** The pipeline catches up (the engine runs until idle, or DMS applies what is new). */
  | { readonly kind: 'replicate' }
  /**
   * DDL on the source, then the documented step: `audit-trail migrate` (with the config's
   * `ignoreColumns` following a dropped or renamed ignored column). With `migrateLater`
   * (#17 item 4, README "Schema changes while the engine runs"), the steps after it write
   * in the new shape before migrate runs: migrate waits for the next `replicate` step
   * (the engine first stops at the first change of the new shape), for the next `ddl` or
   * `configure` step, or for the end.
   */
  | {
      readonly kind: 'ddl';
      readonly table: number;
      readonly change: DdlChange;
      readonly migrateLater?: boolean;
    }
  /**
   * A config change, then `migrate`: the table is added to the config if it is not in it
   * (#17 item 13; added back, item 19), removed if it is (item 19). The last configured
   * table is never removed. The pipeline catches up before and after.
   */
  | { readonly kind: 'configure'; readonly table: number };

/** A column type and the literals the generator writes into it. */
export interface TypeSpec {
  /** SQL type; `{s}` is the table's schema (enums, domains, composites live there). */
  readonly sql: string;
  /** SQL literal expressions; the first is the simplest (what shrinking goes to). */
  readonly values: readonly string[];
  /** The wider type `ALTER COLUMN ... TYPE` may change it to. */
  readonly widensTo?: string;
}

const BIG_TEXT = `(SELECT string_agg(md5(i::text), '') FROM generate_series(1, 300) AS i)`;

/** Non-key column types: the built-in families and user-defined types. */
export const TYPES: Readonly<Record<string, TypeSpec>> = {
  int4: {
    sql: 'integer',
    values: ['1', 'NULL', '0', '-2147483648', '2147483647'],
    widensTo: 'int8',
  },
  int8: {
    sql: 'bigint',
    values: ['1', 'NULL', '9007199254740993', '-9223372036854775808', '9000000000'],
  },
  numeric: {
    sql: 'numeric',
    values: [
      '1',
      'NULL',
      '1.10',
      '1.100',
      '0.000',
      '-0.5',
      "'NaN'",
      "'Infinity'",
      '123456789012345678901234567890.123456789',
      '1e-20',
    ],
  },
  'numeric(10,2)': {
    sql: 'numeric(10,2)',
    values: ['1', 'NULL', '1.2', '-99999999.99', '0'],
    widensTo: 'numeric(12,4)',
  },
  'numeric(12,4)': { sql: 'numeric(12,4)', values: ['1', 'NULL', '1.2345', '99999999.9999'] },
  float8: {
    sql: 'double precision',
    values: [
      '1',
      'NULL',
      "'-0'",
      '0',
      "'NaN'",
      "'Infinity'",
      "'-Infinity'",
      '0.1',
      '1e-320',
      '1.7976931348623157e308',
      '123456.789012345',
    ],
  },
  float4: { sql: 'real', values: ['1', 'NULL', "'-0'", '0.1', '3.4e38', "'NaN'"] },
  text: {
    sql: 'text',
    values: [
      "'a'",
      'NULL',
      "''",
      "'Ünïcødé 🐘 ﷽'",
      "E'tab\\there\\nline\\r\\\\'",
      "'quote''s \"dq\"'",
      BIG_TEXT,
      "'NULL'",
      "E'\\x01\\x7f'",
    ],
  },
  'varchar(5)': {
    sql: 'varchar(5)',
    values: ["'a'", 'NULL', "'abcde'", "'é😀'"],
    widensTo: 'varchar(20)',
  },
  'varchar(20)': { sql: 'varchar(20)', values: ["'a'", 'NULL', "'abcdefghij'"] },
  'char(3)': { sql: 'char(3)', values: ["'a'", 'NULL', "'abc'", "''"] },
  bool: { sql: 'boolean', values: ['true', 'NULL', 'false'] },
  json: {
    sql: 'json',
    values: [
      '\'{"a":1}\'',
      'NULL',
      '\'{ "a" : 1 }\'',
      '\'{"a":1,"a":2}\'',
      "'1.10'",
      "'null'",
      '\'"x"\'',
      "'[1e400, -0]'",
    ],
  },
  jsonb: {
    sql: 'jsonb',
    values: [
      '\'{"a":1}\'',
      'NULL',
      '\'{"n": 1.10}\'',
      '\'{"n": 1.100}\'',
      '\'{"big": 9007199254740993}\'',
      "'123456789012345678901234567890'",
      "'null'",
      '\'{"u": "\\u00e9\\n"}\'',
    ],
  },
  date: {
    sql: 'date',
    values: [
      "'2024-02-01'",
      'NULL',
      "'2024-02-13'",
      "'infinity'",
      "'0044-03-15 BC'",
      "'-infinity'",
    ],
  },
  timestamp: {
    sql: 'timestamp',
    values: [
      "'2024-02-01 10:00:00'",
      'NULL',
      "'2024-02-13 23:59:59.999999'",
      "'infinity'",
      "'0044-03-15 12:00:00.5 BC'",
    ],
  },
  timestamptz: {
    sql: 'timestamptz',
    values: [
      "'2024-02-01 10:00:00+00'",
      'NULL',
      "'2024-07-13 23:59:59.123456+05:30'",
      "'-infinity'",
      "'1900-01-01 00:00:00+00'",
    ],
  },
  'timestamp(3)': {
    sql: 'timestamp(3)',
    values: ["'2024-02-01 10:00:00'", 'NULL', "'2024-02-13 01:02:03.4567'"],
  },
  time: { sql: 'time', values: ["'10:00'", 'NULL', "'23:59:59.999999'", "'24:00'"] },
  timetz: { sql: 'timetz', values: ["'10:00+00'", 'NULL', "'23:59:59.5-03:30'"] },
  interval: {
    sql: 'interval',
    values: ["'1 day'", 'NULL', "'1 year 2 mons 3 days 04:05:06.789'", "'-1 day +02:00'", "'PT0S'"],
  },
  bytea: {
    sql: 'bytea',
    values: ["'\\x00'", 'NULL', "'\\x'", "'\\xdeadbeef00ff'", "decode(repeat('ab', 5000), 'hex')"],
  },
  uuid: {
    sql: 'uuid',
    values: [
      "'00000000-0000-0000-0000-000000000001'",
      'NULL',
      "'A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11'",
    ],
  },
  inet: { sql: 'inet', values: ["'10.0.0.1'", 'NULL', "'192.168.0.0/24'", "'::1'"] },
  'int4[]': {
    sql: 'integer[]',
    values: ["'{1}'", 'NULL', "'{}'", "'{1,NULL,3}'", "'{{1,2},{3,4}}'", "'[0:1]={5,6}'"],
  },
  // JSON renders a JSON null element as it renders a NULL one, and an element that is a
  // JSON array as it renders a dimension: the kit records such an array as its text.
  'jsonb[]': {
    sql: 'jsonb[]',
    values: [
      "'{1}'",
      'NULL',
      '\'{"null",NULL}\'',
      "'{NULL}'",
      '\'{"[1, 2]"}\'',
      "'{{1,2},{3,4}}'",
      '\'{"{\\"a\\": null}"}\'',
      "'{}'",
    ],
  },
  // json keeps an element's text as written, whitespace around it included: an element
  // ' 1 ' is not '1', and 'null ' is not a JSON null (the JSON form keeps such text).
  'json[]': {
    sql: 'json[]',
    values: [
      '\'{"{ \\"a\\" : 1 }"}\'',
      'NULL',
      '\'{"null",NULL}\'',
      "'{NULL}'",
      '\'{"[1,2]"}\'',
      "'{{1,2},{3,4}}'",
      '\'{"{\\"a\\":1,\\"a\\":2}",1.10}\'',
      '\'{" 1 ","null ",2}\'',
      '\'{" [1, 2]",NULL}\'',
      '\'{" {\\"k\\": \\"a,]b\\"} "," []"}\'',
      'E\'{"\\n1\\t"}\'',
    ],
  },
  'text[]': { sql: 'text[]', values: ["'{a}'", 'NULL', '\'{"a b","c,d",NULL,"NULL"}\'', "'{}'"] },
  'numeric[]': { sql: 'numeric[]', values: ["'{1}'", 'NULL', "'{1.10,NaN,-0.0}'"] },
  int4range: { sql: 'int4range', values: ["'[1,5)'", 'NULL', "'empty'", "'(,3]'"] },
  tstzrange: {
    sql: 'tstzrange',
    values: [
      "'[2024-01-01 00:00+00,2024-02-01 00:00+00)'",
      'NULL',
      "'[2024-01-01 00:00+00,infinity)'",
    ],
  },
  'bit(4)': { sql: 'bit(4)', values: ["B'1010'", 'NULL', "B'0000'"] },
  money: { sql: 'money', values: ["'1.00'", 'NULL', "'-92233720368547758.08'"] },
  enum: { sql: '{s}.mood', values: ["'happy'", 'NULL', "'so-so'", "'sad'"] },
  'enum[]': { sql: '{s}.mood[]', values: ["'{happy}'", 'NULL', '\'{sad,"so-so"}\''] },
  domain: { sql: '{s}.positive', values: ['1', 'NULL', '2147483647'] },
  composite: {
    sql: '{s}.pair',
    values: ["ROW(1, 'a')", 'NULL', 'ROW(NULL, NULL)', "ROW(-2, 'x,(y)\"')"],
  },
};

/**
 * Key column types, with how key number n is written in each spelling. Text spelling 5
 * is a 2,624-byte incompressible key: the source's own index takes it (limit 2,704).
 */
/** The text key spelling that writes the 2,624-byte incompressible key. */
const HUGE_TEXT_KEY_SPELLING = 5;

export const KEY_TYPES: Readonly<
  Record<
    string,
    {
      sql: string;
      literal: (n: number, spelling: number) => string;
      /** false: no hash operator class, so no `PARTITION BY HASH` on it. @default true */
      hashable?: false;
    }
  >
> = {
  int4: { sql: 'integer', literal: (n) => String(n) },
  int8: { sql: 'bigint', literal: (n) => (n === 5 ? '9007199254740993' : String(n)) },
  text: {
    sql: 'text',
    literal: (n, spelling) =>
      spelling === HUGE_TEXT_KEY_SPELLING
        ? `(SELECT string_agg(md5(i::text || 'k${n}'), '') FROM generate_series(1, 82) AS i)`
        : n === 4
          ? `'k4 ü "q"'`
          : `'k${n}'`,
  },
  numeric: { sql: 'numeric', literal: (n, spelling) => `${n}${['', '.0', '.00'][spelling % 3]}` },
  // Two-digit numbers too: concurrent clients use keys up to 2 * KEY_POOL.
  uuid: {
    sql: 'uuid',
    literal: (n) => `'00000000-0000-0000-0000-${String(n).padStart(12, '0')}'`,
  },
  date: { sql: 'date', literal: (n) => `'2024-01-${String(n + 1).padStart(2, '0')}'` },
  // Equal under bytea '=', three input texts (hex, escape, octal escape); the key's JSON
  // is the hex text whatever bytea_output the applying session has (#17 item 2).
  bytea: {
    sql: 'bytea',
    literal: (n, spelling) => {
      const bytes = Buffer.from(`k${n}`);
      return [`'\\x${bytes.toString('hex')}'`, `'k${n}'`, `'\\${bytes[0]!.toString(8)}${n}'`][
        spelling % 3
      ]!;
    },
  },
  // Equal under money '=', three input texts; printed under lc_monetary C wherever the
  // kit renders a key (#17 item 2).
  money: {
    sql: 'money',
    literal: (n, spelling) => [`'${n}'`, `'${n}.00'`, `'$${n}.0'`][spelling % 3]!,
    hashable: false,
  },
  // Equal under interval '=', three texts: refused as a key (#17 item 6).
  interval: {
    sql: 'interval',
    literal: (n, spelling) =>
      [`'${n} days'`, `'${24 * n}:00:00'`, `'${86400 * n} seconds'`][spelling % 3]!,
  },
};

/** The user-defined types every workload schema gets (enum, domain, composite). */
export function userTypesSql(schema: string): string {
  const s = quoteIdent(schema);
  return `CREATE TYPE ${s}.mood AS ENUM ('happy', 'so-so', 'sad');
CREATE DOMAIN ${s}.positive AS integer CHECK (VALUE > 0);
CREATE TYPE ${s}.pair AS (a integer, b text);`;
}

function typeSql(type: string, schema: string): string {
  const spec = TYPES[type] ?? KEY_TYPES[type];
  if (!spec) throw new Error(`unknown generator type ${type}`);
  return spec.sql.replace('{s}', quoteIdent(schema));
}

/** The tables' current columns and config, as the steps so far have left them. */
export class SchemaState {
  readonly columns: ColumnSpec[][];
  /** Each table's `ignoreColumns` now. */
  readonly ignored: string[][];
  /** Every name each table's `ignoreColumns` ever held (no later column may take one). */
  readonly everIgnored: Set<string>[];
  /** Whether each table is in the config now. */
  readonly configured: boolean[];
  /** What the last applied DDL change did, as the schema-change log must record it. */
  lastChange: LoggedSchemaChange | undefined;
  /** The generated column the last applied DDL change added or renamed, by its new name. */
  lastGenerated: string | undefined;
  /** Whether each table has been in the config at some step so far. */
  private readonly everConfigured: boolean[];
  /**
   * Each column's identity (its `attnum` on the source, which RENAME and a type change
   * keep), parallel to {@link columns}.
   */
  private readonly ids: number[][];
  private nextId = 0;
  /** Each removed table's columns and their identities when it left the config. */
  private readonly atRemoval: ({ columns: ColumnSpec[]; ids: number[] } | undefined)[];
  /**
   * Each table's generated column now: its name and the identity of the column it is
   * computed from (which may then be neither dropped nor retyped).
   */
  private readonly generated: ({ name: string; base: number } | undefined)[];
  private generatedCount = 0;
  constructor(
    readonly tables: readonly TableSpec[],
    readonly excludedValues: Readonly<Record<string, readonly string[]>> = {},
    /** Whether a removed table may be added back (see {@link Workload.readdTables}). */
    private readonly readd = false,
  ) {
    this.columns = tables.map((t) => [...t.columns]);
    this.ignored = tables.map((t) => [...(t.ignoreColumns ?? [])]);
    this.everIgnored = this.ignored.map((names) => new Set(names));
    this.configured = initiallyConfigured(tables);
    this.everConfigured = [...this.configured];
    this.ids = this.columns.map((columns) => columns.map(() => this.nextId++));
    this.atRemoval = tables.map(() => undefined);
    this.generated = tables.map((t, i) =>
      t.generated && t.columns.length > t.keyCount
        ? { name: GENERATED_COLUMN_PREFIX, base: this.ids[i]![t.keyCount]! }
        : undefined,
    );
  }
  /**
   * Applies a `configure` step: adds table `t` to the config or removes it (a removed
   * table may be added back when the workload says so, #17 item 19). False when it does
   * not apply (the last configured table, or a removed one that must stay out).
   */
  configure(t: number): boolean {
    if (this.configured[t] && this.configured.filter(Boolean).length === 1) return false;
    if (!this.configured[t] && this.everConfigured[t] && !this.readd) return false;
    this.configured[t] = !this.configured[t];
    if (this.configured[t]) this.everConfigured[t] = true;
    else this.atRemoval[t] = { columns: [...this.columns[t]!], ids: [...this.ids[t]!] };
    return true;
  }
  /**
   * The column changes made to table `t` while it was out of the config, as `migrate`
   * logs them when it comes back with its staging table kept (#17 items 19 and 21): by
   * column identity, so a rename is one RENAME however often it happened; a column
   * added and dropped again left nothing. DROPs first, then each column in source order.
   */
  changesWhileOut(t: number): LoggedSchemaChange[] {
    const before = this.atRemoval[t];
    if (!before) return [];
    const now = new Map(this.ids[t]!.map((id, i) => [id, this.columns[t]![i]!]));
    const then = new Map(before.ids.map((id, i) => [id, before.columns[i]!]));
    const changes: LoggedSchemaChange[] = [];
    for (const [id, column] of then)
      if (!now.has(id))
        changes.push({ change: 'DROP', column: column.name, before: column.name, after: null });
    for (const [id, column] of now) {
      const old = then.get(id);
      if (!old) {
        changes.push({ change: 'ADD', column: column.name, before: null, after: column.name });
        continue;
      }
      if (old.name !== column.name)
        changes.push({
          change: 'RENAME',
          column: column.name,
          before: old.name,
          after: column.name,
        });
      if (old.type !== column.type)
        changes.push({
          change: 'RETYPE',
          column: column.name,
          before: column.name,
          after: column.name,
        });
    }
    return changes;
  }
  /** The config as it is now. */
  config(auditSchema: string | undefined): WorkloadConfig {
    return configOf(
      auditSchema,
      this.tables.flatMap((t, i) =>
        this.configured[i] ? [{ table: t, ignoreColumns: this.ignored[i]! }] : [],
      ),
    );
  }
  /** Non-key columns of table `t`. */
  valueColumns(t: number): ColumnSpec[] {
    return this.columns[t]!.slice(this.tables[t]!.keyCount);
  }
  /** Applies a DDL change and returns its SQL (undefined when it does not apply). */
  apply(t: number, change: DdlChange): string | undefined {
    const table = this.tables[t]!;
    // A table not yet in the config may change shape before it is added (its load is
    // expected from the source rows at the load). One removed from it may too when it
    // can come back: its reload is held against the source rows then, and migrate logs
    // what changed meanwhile (see changesWhileOut).
    if (!this.configured[t] && this.everConfigured[t] && !this.readd) return undefined;
    const target = quoteQualified(table.schema, table.name);
    const cols = this.columns[t]!;
    const valueCols = this.valueColumns(t);
    if (change.kind === 'generated') return this.applyGenerated(t, target, change.rename);
    if (change.kind === 'add') {
      if (cols.some((c) => c.name === change.name) || this.everIgnored[t]!.has(change.name))
        return undefined;
      cols.push({ name: change.name, type: change.type });
      this.ids[t]!.push(this.nextId++);
      this.lastChange = { change: 'ADD', column: change.name, before: null, after: change.name };
      return `ALTER TABLE ${target} ADD COLUMN ${quoteIdent(change.name)} ${typeSql(change.type, table.schema)}`;
    }
    if (valueCols.length === 0) return undefined;
    const column = valueCols[change.column % valueCols.length]!;
    const index = cols.indexOf(column);
    // PostgreSQL refuses to drop or retype the column a generated column is computed from.
    if (change.kind !== 'rename' && this.generated[t]?.base === this.ids[t]![index])
      return undefined;
    // The config names ignored columns: dropping or renaming one changes the config's
    // ignoreColumns with it (the user's step before migrate).
    const ignored = this.ignored[t]!;
    if (change.kind === 'drop') {
      cols.splice(index, 1);
      this.ids[t]!.splice(index, 1);
      this.lastChange = { change: 'DROP', column: column.name, before: column.name, after: null };
      if (ignored.includes(column.name)) ignored.splice(ignored.indexOf(column.name), 1);
      return `ALTER TABLE ${target} DROP COLUMN ${quoteIdent(column.name)}`;
    }
    if (change.kind === 'rename') {
      if (cols.some((c) => c.name === change.to) || this.everIgnored[t]!.has(change.to))
        return undefined;
      cols[index] = { ...column, name: change.to };
      this.lastChange = {
        change: 'RENAME',
        column: change.to,
        before: column.name,
        after: change.to,
      };
      if (ignored.includes(column.name)) {
        ignored[ignored.indexOf(column.name)] = change.to;
        this.everIgnored[t]!.add(change.to);
      }
      return `ALTER TABLE ${target} RENAME COLUMN ${quoteIdent(column.name)} TO ${quoteIdent(change.to)}`;
    }
    const wider = TYPES[column.type]?.widensTo;
    if (!wider) return undefined;
    cols[index] = { ...column, type: wider };
    this.lastChange = {
      change: 'RETYPE',
      column: column.name,
      before: column.name,
      after: column.name,
    };
    return `ALTER TABLE ${target} ALTER COLUMN ${quoteIdent(column.name)} TYPE ${typeSql(wider, table.schema)}`;
  }

  /**
   * A change of table `t`'s generated column (see {@link DdlChange}). migrate logs none:
   * the column is not in staging.
   */
  private applyGenerated(t: number, target: string, rename: boolean): string | undefined {
    const current = this.generated[t];
    if (!current) {
      const base = this.valueColumns(t)[0];
      if (!base) return undefined;
      const name = `${GENERATED_COLUMN_PREFIX}_${++this.generatedCount}`;
      this.generated[t] = { name, base: this.ids[t]![this.columns[t]!.indexOf(base)]! };
      this.lastGenerated = name;
      return `ALTER TABLE ${target} ADD COLUMN ${generatedColumnSql(name, base.name)}`;
    }
    if (rename) {
      const name = `${GENERATED_COLUMN_PREFIX}_${++this.generatedCount}`;
      this.generated[t] = { ...current, name };
      this.lastGenerated = name;
      return `ALTER TABLE ${target} RENAME COLUMN ${quoteIdent(current.name)} TO ${quoteIdent(name)}`;
    }
    this.generated[t] = undefined;
    return `ALTER TABLE ${target} DROP COLUMN ${quoteIdent(current.name)}`;
  }
}

/** The column `REPLICA IDENTITY USING INDEX` names for `other-index` (refused by migrate). */
const OTHER_IDENTITY_COLUMN = 'replica_identity_code';

/** The DDL that creates the workload's schemas, types and tables. */
export function setupSql(workload: Workload): string {
  const schemas = [...new Set(workload.tables.map((t) => t.schema))];
  return [
    ...schemas.map((s) => `CREATE SCHEMA ${quoteIdent(s)};\n${userTypesSql(s)}`),
    ...workload.tables.map((t) => {
      const columns = t.columns.map((c) => `${quoteIdent(c.name)} ${typeSql(c.type, t.schema)}`);
      const base = t.columns[t.keyCount];
      if (t.generated && base) columns.push(generatedColumnSql(GENERATED_COLUMN_PREFIX, base.name));
      if (t.replicaIdentity === 'other-index')
        columns.push(`${quoteIdent(OTHER_IDENTITY_COLUMN)} bigint GENERATED ALWAYS AS IDENTITY`);
      const key = t.columns
        .slice(0, t.keyCount)
        .map((c) => quoteIdent(c.name))
        .join(', ');
      const deferrable = t.deferrableKey ? ' DEFERRABLE' : '';
      const partitionBy = t.partitions
        ? ` PARTITION BY HASH (${quoteIdent(partitionColumn(t).name)})`
        : '';
      const leaves = partitionNames(t);
      return [
        `CREATE ${t.unlogged ? 'UNLOGGED ' : ''}TABLE ${quoteQualified(t.schema, t.name)} (\n  ${columns.join(',\n  ')},\n  PRIMARY KEY (${key})${deferrable}\n)${partitionBy};`,
        ...leaves.map(
          (leaf, i) =>
            `CREATE TABLE ${quoteQualified(t.schema, leaf)} PARTITION OF ${quoteQualified(t.schema, t.name)} FOR VALUES WITH (MODULUS ${leaves.length}, REMAINDER ${i});`,
        ),
        ...(t.partitionWithoutIdentity && leaves.length > 0
          ? [`ALTER TABLE ${quoteQualified(t.schema, leaves.at(-1)!)} REPLICA IDENTITY NOTHING;`]
          : []),
        ...replicaIdentitySql(t, key),
        ...(t.inheritanceChild
          ? [
              `CREATE TABLE ${quoteQualified(t.schema, `${t.name}_child`)} () INHERITS (${quoteQualified(t.schema, t.name)});`,
            ]
          : []),
      ].join('\n');
    }),
  ].join('\n');
}

function replicaIdentitySql(table: TableSpec, key: string): string[] {
  const target = quoteQualified(table.schema, table.name);
  // Index names are per schema: the table's name keeps two tables' indexes apart.
  const index = `${table.name}_replica_identity`;
  switch (table.replicaIdentity) {
    case undefined:
      return [];
    case 'full':
      return [`ALTER TABLE ${target} REPLICA IDENTITY FULL;`];
    case 'key-index':
      return [
        `CREATE UNIQUE INDEX ${quoteIdent(index)} ON ${target} (${key});`,
        `ALTER TABLE ${target} REPLICA IDENTITY USING INDEX ${quoteIdent(index)};`,
      ];
    case 'other-index':
      return [
        `CREATE UNIQUE INDEX ${quoteIdent(index)} ON ${target} (${quoteIdent(OTHER_IDENTITY_COLUMN)});`,
        `ALTER TABLE ${target} REPLICA IDENTITY USING INDEX ${quoteIdent(index)};`,
      ];
  }
}

/** Maps a key number to a client's own key space, so concurrent clients never wait on each other. */
export type KeySpace = (n: number) => number;

/** Renders one statement (savepoints as several) for the current schema. */
export function statementSql(
  state: SchemaState,
  statement: Statement,
  space: KeySpace = (n) => n,
  savepointName = 'sp',
): string[] {
  if (statement.kind === 'savepoint') {
    const inner = statement.statements.flatMap((s, i) =>
      statementSql(state, s, space, `${savepointName}_${i}`),
    );
    return [
      `SAVEPOINT ${savepointName}`,
      ...inner,
      statement.rollback
        ? `ROLLBACK TO SAVEPOINT ${savepointName}`
        : `RELEASE SAVEPOINT ${savepointName}`,
    ];
  }
  const t = statement.table % state.tables.length;
  const table = state.tables[t]!;
  const target = quoteQualified(table.schema, table.name);
  const keyCols = state.columns[t]!.slice(0, table.keyCount);
  // At most one huge text key column per table: two would exceed the source's own index
  // row limit (2,704 bytes), and the source, not the kit, would refuse the write.
  const hugeKeyColumn = keyCols.findIndex((column) => column.type === 'text');
  const keyLiteral = (refs: readonly KeyRef[], i: number) => {
    const ref = refs[i % refs.length] ?? { n: 0, spelling: 0 };
    const spelling =
      ref.spelling === HUGE_TEXT_KEY_SPELLING && i !== hugeKeyColumn ? 0 : ref.spelling;
    return KEY_TYPES[keyCols[i]!.type]!.literal(space(ref.n), spelling);
  };
  const where = (refs: readonly KeyRef[]) =>
    keyCols.map((c, i) => `${quoteIdent(c.name)} = ${keyLiteral(refs, i)}`).join(' AND ');
  const valueCols = state.valueColumns(t);
  const literal = (column: ColumnSpec, pick: number) => {
    const excluded = state.excludedValues[column.type] ?? [];
    const values = TYPES[column.type]!.values.filter((v) => !excluded.includes(v));
    return values[pick % values.length]!;
  };
  switch (statement.kind) {
    case 'insert': {
      const cols = [...keyCols, ...valueCols];
      const values = [
        ...keyCols.map((_, i) => keyLiteral(statement.key, i)),
        ...valueCols.map((c, i) =>
          literal(c, statement.values[i % Math.max(1, statement.values.length)] ?? 0),
        ),
      ];
      return [
        `INSERT INTO ${target} (${cols.map((c) => quoteIdent(c.name)).join(', ')}) VALUES (${values.join(', ')})`,
      ];
    }
    case 'update': {
      if (valueCols.length === 0 || statement.set.length === 0) return [];
      const assignments = new Map<string, string>();
      for (const [col, pick] of statement.set) {
        const column = valueCols[col % valueCols.length]!;
        assignments.set(quoteIdent(column.name), literal(column, pick));
      }
      return [
        `UPDATE ${target} SET ${[...assignments].map(([c, v]) => `${c} = ${v}`).join(', ')} WHERE ${where(statement.key)}`,
      ];
    }
    case 'updateKey':
      return [
        `UPDATE ${target} SET ${keyCols.map((c, i) => `${quoteIdent(c.name)} = ${keyLiteral(statement.newKey, i)}`).join(', ')} WHERE ${where(statement.key)}`,
      ];
    case 'delete':
      return [`DELETE FROM ${target} WHERE ${where(statement.key)}`];
  }
}

/** A column change as `audit.schema_change` must log it (#17 item 21): kind and names. */
export interface LoggedSchemaChange {
  readonly change: 'ADD' | 'DROP' | 'RENAME' | 'RETYPE';
  /** The column's name after the change (before it, for DROP). */
  readonly column: string;
  readonly before: string | null;
  readonly after: string | null;
}

/** A printable step for the reproduction script. */
export interface RenderedStep {
  readonly step: Step;
  /** For `tx`: the statements including BEGIN/COMMIT. For concurrent: per client. */
  readonly sql: readonly { client: number; sql: string }[];
  /** For `ddl`: the statement, or undefined when the change does not apply (skipped). */
  readonly ddl?: string;
  /**
   * The config after the step, when the step changed it: a `configure` step that
   * applies, or DDL on an ignored column. Undefined for a `configure` step that does not
   * apply (skipped).
   */
  readonly config?: WorkloadConfig;
  /**
   * For a `configure` step that adds a table with a column named like a DMS header
   * column: migrate must refuse it then (#17 item 17). @default false
   */
  readonly headerNamed?: boolean;
  /** For a `configure` step that applies: whether it added the table (else removed it). */
  readonly added?: boolean;
  /** For `ddl` that applies: what the schema-change log must record (if the table is audited). */
  readonly schemaChange?: LoggedSchemaChange;
  /** For `ddl` that adds or renames a generated column: its (new) name. */
  readonly generatedColumn?: string;
  /**
   * For a `configure` step that adds a table back: the column changes made while it was
   * out, which migrate logs when its staging table was kept (see
   * {@link SchemaState.changesWhileOut}).
   */
  readonly changesWhileOut?: readonly LoggedSchemaChange[];
}

/** Renders every step, tracking schema changes. */
export function renderSteps(workload: Workload): RenderedStep[] {
  const state = new SchemaState(workload.tables, workload.excludedValues, workload.readdTables);
  return workload.steps.map((step) => {
    switch (step.kind) {
      case 'replicate':
        return { step, sql: [] };
      case 'ddl': {
        const t = step.table % workload.tables.length;
        const before = JSON.stringify(state.ignored[t]);
        state.lastChange = undefined;
        state.lastGenerated = undefined;
        const ddl = state.apply(t, step.change);
        const changed = JSON.stringify(state.ignored[t]) !== before;
        return {
          step,
          sql: [],
          ddl,
          ...(ddl && state.lastChange ? { schemaChange: state.lastChange } : {}),
          ...(ddl && state.lastGenerated ? { generatedColumn: state.lastGenerated } : {}),
          ...(changed && state.configured[t] ? { config: state.config(workload.auditSchema) } : {}),
        };
      }
      case 'configure': {
        const t = step.table % workload.tables.length;
        if (!state.configure(t)) return { step, sql: [] };
        const added = state.configured[t]!;
        const whileOut = added ? state.changesWhileOut(t) : [];
        return {
          step,
          sql: [],
          config: state.config(workload.auditSchema),
          added,
          ...(whileOut.length > 0 ? { changesWhileOut: whileOut } : {}),
          ...(added && state.columns[t]!.some((c) => c.name.startsWith('ar_h_'))
            ? { headerNamed: true }
            : {}),
        };
      }
      case 'tx':
        return { step, sql: txSql(state, step.tx, (n) => n).map((sql) => ({ client: 0, sql })) };
      case 'concurrent':
        return { step, sql: interleavedSql(state, step) };
    }
  });
}

/**
 * The SQL of a concurrent step, client by client in the step's order. Each client's keys
 * are its own (even, odd), so neither waits for the other. A client opens its
 * transaction at its first statement and one without statements opens none: a step
 * shrunk to one client's statements is that client's transaction alone.
 */
export function interleavedSql(
  state: SchemaState,
  step: Extract<Step, { kind: 'concurrent' }>,
): { client: number; sql: string }[] {
  const spaces: KeySpace[] = [(n) => n * 2, (n) => n * 2 + 1];
  const sql: { client: number; sql: string }[] = [];
  const open = [false, false];
  const statementsOf = [0, 0];
  for (const { client, statement } of step.statements) {
    const lines = statementSql(state, statement, spaces[client], `sp${statementsOf[client]!++}`);
    if (lines.length === 0) continue;
    if (!open[client]) sql.push({ client, sql: 'BEGIN' });
    open[client] = true;
    sql.push(...lines.map((line) => ({ client, sql: line })));
  }
  const endOf = (client: 0 | 1) =>
    open[client] ? [{ client, sql: step.ends[client] === 'commit' ? 'COMMIT' : 'ROLLBACK' }] : [];
  sql.push(...(step.secondEndsFirst ? [...endOf(1), ...endOf(0)] : [...endOf(0), ...endOf(1)]));
  return sql;
}

function txBody(state: SchemaState, tx: Transaction, space: KeySpace): string[] {
  return tx.statements.flatMap((s, i) => statementSql(state, s, space, `sp${i}`));
}

function txSql(state: SchemaState, tx: Transaction, space: KeySpace): string[] {
  return ['BEGIN', ...txBody(state, tx, space), tx.end === 'commit' ? 'COMMIT' : 'ROLLBACK'];
}

/** A config file's content, as the scenario writes it. */
export interface WorkloadConfig {
  auditSchema?: string;
  tables: { schema: string; table: string; ignoreColumns?: string[]; partitions?: string[] }[];
}

/** The config the pipeline starts with (see {@link SchemaState.config} for later ones). */
export function workloadConfig(workload: Workload): WorkloadConfig {
  const configured = initiallyConfigured(workload.tables);
  return configOf(
    workload.auditSchema,
    workload.tables.flatMap((table, i) =>
      configured[i] ? [{ table, ignoreColumns: table.ignoreColumns ?? [] }] : [],
    ),
  );
}

/** Tables in the config at the start: all but `laterInConfig` ones, and always one. */
function initiallyConfigured(tables: readonly TableSpec[]): boolean[] {
  const configured = tables.map((t) => !t.laterInConfig);
  if (!configured.some(Boolean)) configured[0] = true;
  return configured;
}

function configOf(
  auditSchema: string | undefined,
  tables: readonly { table: TableSpec; ignoreColumns: readonly string[] }[],
): WorkloadConfig {
  return {
    ...(auditSchema === undefined ? {} : { auditSchema }),
    tables: tables.map(({ table, ignoreColumns }) => ({
      schema: table.schema,
      table: table.name,
      ...(ignoreColumns.length ? { ignoreColumns: [...ignoreColumns] } : {}),
      ...(table.partitions
        ? {
            partitions: partitionNames(table).slice(
              0,
              table.partitionMissing ? -1 : table.partitions,
            ),
          }
        : {}),
    })),
  };
}

/**
 * The workload as a runnable psql script plus config: what a failure prints. Runs as
 * is on a source database (`psql -v ON_ERROR_STOP=0`: a failing statement aborts its
 * transaction, as in the run); the comments say where the pipeline catches up and
 * where `audit-trail migrate` runs.
 */
export function workloadScript(workload: Workload): string {
  const lines = [
    ...(workload.upgradeFrom
      ? [`-- target: psql -f test/migrate/fixtures/target-${workload.upgradeFrom}.sql`]
      : []),
    `-- config: ${JSON.stringify(workloadConfig(workload))}`,
    ...Object.entries(workload.sourceSettings).map(
      ([name, value]) => `ALTER DATABASE :"DBNAME" SET ${name} = '${value}'; \\connect`,
    ),
    setupSql(workload),
    '-- audit-trail migrate',
  ];
  let catchUps = 0;
  const catchUp = () => {
    const crash = workload.crashes?.[catchUps++];
    lines.push(
      crash
        ? `-- AUDIT_TRAIL_ENGINE_CRASH_AT=${crash.point}:${crash.nth} audit-trail replicate --until-idle --batch-size ${crash.batchSize}; then again without the crash`
        : '-- audit-trail replicate --until-idle',
    );
  };
  // A DDL step's migrate that waits (`migrateLater`), as the scenario runs it.
  let pendingMigrate: RenderedStep | undefined;
  const migrateAfterDdl = (rendered: RenderedStep) => {
    if (rendered.config) lines.push(`-- config: ${JSON.stringify(rendered.config)}`);
    lines.push('-- audit-trail migrate');
  };
  const runPendingMigrate = () => {
    if (!pendingMigrate) return;
    lines.push(
      '-- audit-trail replicate --until-idle (the engine stops at the first change of the new shape; DMS waits)',
    );
    migrateAfterDdl(pendingMigrate);
    pendingMigrate = undefined;
  };
  for (const rendered of renderSteps(workload)) {
    const step = rendered.step;
    if (step.kind !== 'tx' && step.kind !== 'concurrent') runPendingMigrate();
    if (step.kind === 'replicate') catchUp();
    else if (step.kind === 'ddl') {
      if (!rendered.ddl) continue;
      lines.push(`${rendered.ddl};`);
      // As the scenario runs it: the pipeline catches up before migrate, once it started.
      const started = catchUps > 0;
      if (started) catchUp();
      if (step.migrateLater && started) pendingMigrate = rendered;
      else migrateAfterDdl(rendered);
    } else if (step.kind === 'configure') {
      if (!rendered.config) continue;
      const started = catchUps > 0;
      if (started) catchUp();
      lines.push(`-- config: ${JSON.stringify(rendered.config)}`, '-- audit-trail migrate');
      if (started) catchUp();
    } else if (step.kind === 'tx') lines.push(rendered.sql.map((s) => `${s.sql};`).join('\n'));
    else lines.push(rendered.sql.map((s) => `/* client ${s.client} */ ${s.sql};`).join('\n'));
  }
  runPendingMigrate();
  lines.push('-- audit-trail replicate --until-idle; then compare with the oracle');
  if (workload.tamper) {
    const table = workload.tables[workload.tamper.table % workload.tables.length]!;
    lines.push(
      `-- then on the target: ${workload.tamper.kind} on the first live staging row of ${table.schema}.${table.name}; audit-trail verify must report it`,
    );
  }
  return lines.join('\n');
}

/**
 * What `migrate` must refuse the workload's tables for, up front and with its reason
 * (#17 items 12, 15, 17): one pattern per reason the workload has (empty: it must
 * accept them).
 */
export function expectedRefusals(workload: Workload): RegExp[] {
  const reasons: RegExp[] = [];
  // Only what is in the config at the start: migrate looks at nothing else.
  const configured = initiallyConfigured(workload.tables);
  for (const table of workload.tables.filter((_, t) => configured[t])) {
    if (table.unlogged) reasons.push(/is UNLOGGED/);
    if (table.replicaIdentity === 'other-index')
      reasons.push(/REPLICA IDENTITY USING INDEX .* not on the primary key/);
    if (table.columns.some((c) => c.name.startsWith('ar_h_'))) reasons.push(HEADER_NAME_REFUSAL);
    if (table.deferrableKey) reasons.push(/has a DEFERRABLE primary key/);
    if (table.inheritanceChild) reasons.push(/has inheritance children/);
    if (table.partitionMissing) reasons.push(/misses: leaf partition\(s\) .* not listed/);
    if (table.partitionWithoutIdentity)
      reasons.push(/partition .* has REPLICA IDENTITY NOTHING: once published, UPDATE and DELETE/);
    for (const column of table.columns.slice(0, table.keyCount))
      if (!(column.type in SUPPORTED_KEY_TYPES))
        reasons.push(
          new RegExp(`has key column .* of type ${column.type}, which cannot key its history`),
        );
  }
  return reasons;
}

/**
 * What the engine, started on a config migrate refused, must stop with before it
 * creates its publication: the same reason, except for what only migrate checks (a
 * header-named column; a `partitions` list, which the engine does not need): there it
 * meets a staging table migrate never created (or, on a target a release left, the kit
 * roles that migrate never created), and says to run migrate.
 */
export function expectedEngineRefusals(workload: Workload): RegExp[] {
  const configured = initiallyConfigured(workload.tables);
  const migrateOnly = workload.tables.some(
    (t, i) =>
      configured[i] && (t.partitionMissing || t.columns.some((c) => c.name.startsWith('ar_h_'))),
  );
  return [
    ...expectedRefusals(workload),
    // On a target as a release before migration 0027 left it (no engine role yet), the
    // engine's login check meets the missing kit roles first; both say to run migrate.
    ...(migrateOnly
      ? [
          /staging table .* does not exist on the target: run "audit-trail migrate"/,
          ...(workload.upgradeFrom
            ? [/^the target has no kit role .*: the engine writes its position through it$/]
            : []),
        ]
      : []),
  ];
}

/** migrate's refusal of a source column named like a DMS header column (#17 item 17). */
export const HEADER_NAME_REFUSAL = /ar_h_.*DMS header column/s;

/** The column name a DDL change introduces (ADD or RENAME), if any. */
export function introducedColumn(change: DdlChange): string | undefined {
  return change.kind === 'add' ? change.name : change.kind === 'rename' ? change.to : undefined;
}

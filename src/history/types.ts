/** How a version came to be. */
export type Operation = 'SNAPSHOT' | 'INSERT' | 'UPDATE' | 'DELETE';

/**
 * The row shapes of the audited tables, by `"schema.table"`; used to type results.
 * Written as a constraint on the tables type itself (`Tables extends AuditedTables<Tables>`)
 * so that an `interface` works as well as a `type`: an interface has no index
 * signature, so it is not assignable to `Record<string, object>`.
 *
 * @example
 * ```ts
 * interface Tables {
 *   'public.items': { id: number; name: string };
 * }
 * const history = createHistory<Tables>(db, { auditSchema: 'audit' });
 * ```
 */
export type AuditedTables<Tables = Record<string, object>> = { [K in keyof Tables]: object };

/** Rows of any table when no types are given: column → JSON value. */
export type UntypedTables = Record<string, Record<string, unknown>>;

/** A table name accepted by the API: `"schema.table"`. */
export type TableName<Tables extends AuditedTables<Tables>> = keyof Tables & string;

/**
 * A row key: an object with every key column (`{ id: 42 }`) or the key values in key
 * order (`[42]`, `['EU', 7]`). Values may be strings, numbers, bigints or Dates.
 */
export type RowKey<Row> = { readonly [K in keyof Row]?: KeyValue } | readonly KeyValue[];

/** One key column value. */
export type KeyValue = string | number | bigint | boolean | Date;

/** An instant: an ISO-8601 string (microseconds kept) or a Date (milliseconds). */
export type Instant = string | Date;

/** One version of one row, as the audit log recorded it. */
export interface Version<Row = Record<string, unknown>> {
  /** Audit log id: increases in apply order. */
  readonly id: string;
  /** Source schema and table. */
  readonly schema: string;
  readonly table: string;
  /** Primary key values of the row. */
  readonly key: Partial<Row>;
  /** SNAPSHOT (full-load baseline), INSERT, UPDATE or DELETE. */
  readonly operation: Operation;
  /** Source commit time, ISO-8601 UTC with microseconds (`2026-11-22T22:39:36.123456Z`). */
  readonly commitTimestamp: string;
  /** Source transaction id (xids wrap: not unique over the life of a database). */
  readonly transactionId: string | null;
  /** DMS change sequence; null for SNAPSHOT versions. */
  readonly changeSeq: string | null;
  /** Source stream position (LSN); null for SNAPSHOT versions. */
  readonly streamPosition: string | null;
  /** The row before the change (UPDATE, DELETE, re-loaded SNAPSHOT). */
  readonly oldRow: Row | null;
  /** The row after the change (null for DELETE). */
  readonly newRow: Row | null;
  /**
   * The `jsonb` columns of {@link oldRow} whose value is the JSON `null` literal
   * (`'null'::jsonb`), sorted by name (byte order); empty when none. The row shows such a
   * value as `null`, exactly as it shows SQL NULL: this list tells them apart.
   *
   * ```ts
   * // UPDATE items SET attrs = 'null' WHERE id = 42  (attrs was SQL NULL)
   * version.oldRow.attrs; // null
   * version.newRow.attrs; // null
   * version.changedColumns; // ['attrs']
   * version.oldRowJsonNulls; // []
   * version.newRowJsonNulls; // ['attrs']: the JSON null literal, not SQL NULL
   * ```
   *
   * A `json` column needs no list: its value is its exact text, `"null"` for the literal.
   * Nor does an array: a `jsonb[]` or `json[]` value with a JSON null element is its
   * array text, a string (`'{"null",NULL}'`), where a JSON array would read the element
   * as NULL.
   */
  readonly oldRowJsonNulls: readonly string[];
  /** As {@link oldRowJsonNulls}, for {@link newRow}. */
  readonly newRowJsonNulls: readonly string[];
  /** Columns an UPDATE changed, sorted; null for other operations. */
  readonly changedColumns: readonly (keyof Row & string)[] | null;
  /**
   * Who and why: the context the source transaction set (`withAuditContext` /
   * `setAuditContext`), or null when it set none (and for SNAPSHOT versions). Joined by
   * source transaction id and exact commit time, so a wrapped xid never borrows another
   * transaction's context. The database role is not known: neither DMS nor the engine
   * carries it.
   */
  readonly context: VersionContext | null;
}

/** The context a source transaction set; fields it did not set are null. */
export interface VersionContext {
  readonly actor: string | null;
  readonly onBehalfOf: string | null;
  readonly requestId: string | null;
  readonly client: string | null;
  readonly reason: string | null;
  readonly metadata: Record<string, unknown> | null;
}

/** One column that differs between two row states. */
export interface ColumnChange {
  readonly column: string;
  readonly from: unknown;
  readonly to: unknown;
  /**
   * Present when the column is a `jsonb` JSON `null` literal on either side (read from
   * the versions' {@link Version.newRowJsonNulls}): `from` and `to` show it as `null`,
   * as they show SQL NULL, so a change between the two is `{ from: null, to: null,
   * jsonNull: { from: false, to: true } }`. Only versions carry the lists: when either
   * side is a plain row, JSON nulls are not compared and this is absent.
   */
  readonly jsonNull?: { readonly from: boolean; readonly to: boolean };
}

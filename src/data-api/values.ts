import type { ArrayValue, ColumnMetadata, Field, SqlParameter } from '@aws-sdk/client-rds-data';
import { AuditTrailError } from '../errors';

/**
 * A value the kit cannot carry through the RDS Data API without changing it: it stops
 * the query instead of rounding (an integer beyond 2^53 that arrived as a JSON number,
 * a parameter of a kind the Data API has no field for).
 */
export class DataApiValueError extends AuditTrailError {
  override readonly name = 'DataApiValueError';
  constructor(message: string) {
    super(message, { code: 'DATA_API_VALUE', kind: 'failure' });
  }
}

/**
 * The Data API's answer options every statement sends: `bigint` and `numeric` come back
 * as their exact text. With the defaults a `bigint` is a JSON number, which the SDK
 * parses into a double (9007199254740993 arrives as ...992), and `DOUBLE_OR_LONG` would
 * do the same to `numeric`.
 */
export const EXACT_RESULT_OPTIONS = {
  decimalReturnType: 'STRING',
  longReturnType: 'STRING',
} as const;

/** PostgreSQL integer types node-postgres returns as numbers (int8 stays a string). */
const SMALL_INTEGER_TYPES = new Set(['int2', 'int4', 'oid', 'serial', 'smallserial', 'xid']);

/**
 * One value kysely bound to a statement, as a named Data API parameter. Arrays are
 * sent as a PostgreSQL array literal (`{"a","b"}`: the Data API takes no array
 * parameters), so the SQL casts them (`$1::text[]`, as the kit's SQL does). Integers
 * beyond 2^53 go as `DECIMAL` text, never as a rounded `longValue`.
 *
 * @example
 * ```ts
 * toSqlParameter('p1', ['public', 'items']); // { name: 'p1', value: { stringValue: '{"public","items"}' } }
 * ```
 */
export function toSqlParameter(name: string, value: unknown): SqlParameter {
  if (value === null || value === undefined) return { name, value: { isNull: true } };
  if (typeof value === 'string') return { name, value: { stringValue: value } };
  if (typeof value === 'boolean') return { name, value: { booleanValue: value } };
  if (typeof value === 'bigint') {
    return Number.isSafeInteger(Number(value))
      ? { name, value: { longValue: Number(value) } }
      : { name, typeHint: 'DECIMAL', value: { stringValue: value.toString() } };
  }
  if (typeof value === 'number') {
    if (!Number.isFinite(value))
      throw new DataApiValueError(`parameter ${name}: ${value} has no Data API field`);
    return Number.isInteger(value)
      ? Number.isSafeInteger(value)
        ? { name, value: { longValue: value } }
        : { name, typeHint: 'DECIMAL', value: { stringValue: BigInt(value).toString() } }
      : { name, value: { doubleValue: value } };
  }
  if (value instanceof Uint8Array) return { name, value: { blobValue: value } };
  if (value instanceof Date) {
    if (Number.isNaN(value.getTime()))
      throw new DataApiValueError(`parameter ${name} is an invalid Date`);
    // ISO 8601 with its zone: the SQL casts it (::timestamptz), whatever the session's TimeZone.
    return { name, value: { stringValue: value.toISOString() } };
  }
  if (Array.isArray(value)) return { name, value: { stringValue: arrayLiteral(value, name) } };
  throw new DataApiValueError(
    `parameter ${name}: a ${typeof value === 'object' ? (value.constructor?.name ?? 'object') : typeof value} cannot be sent through the Data API (pass JSON as a string and cast it)`,
  );
}

/** A one-dimensional PostgreSQL array literal; every element quoted, NULL for null. */
function arrayLiteral(values: readonly unknown[], name: string): string {
  const elements = values.map((element) => {
    if (element === null || element === undefined) return 'NULL';
    if (
      typeof element === 'string' ||
      typeof element === 'number' ||
      typeof element === 'bigint' ||
      typeof element === 'boolean'
    ) {
      if (typeof element === 'number' && !Number.isFinite(element))
        throw new DataApiValueError(`parameter ${name}: ${element} has no array literal`);
      return `"${String(element).replace(/[\\"]/g, (c) => `\\${c}`)}"`;
    }
    throw new DataApiValueError(
      `parameter ${name}: only arrays of strings, numbers and booleans can be sent through the Data API`,
    );
  });
  return `{${elements.join(',')}}`;
}

/**
 * One returned field as the value node-postgres would give for the column, where that
 * is exact, and as exact text where node-postgres would round: `numeric` and `int8` are
 * strings, `int2`/`int4` numbers, `bytea` a Buffer, arrays arrays; `timestamptz` stays
 * the Data API's text (UTC, microseconds kept) instead of a millisecond `Date`, and
 * `json`/`jsonb` stay their text (parse them with `parseRowJson`, which keeps every digit).
 *
 * @throws DataApiValueError for an integer the SDK could only hand over rounded.
 */
export function fromField(field: Field, column: ColumnMetadata | undefined): unknown {
  if (field.isNull) return null;
  if (field.stringValue !== undefined) {
    const type = column?.typeName;
    if (type !== undefined && SMALL_INTEGER_TYPES.has(type)) return Number(field.stringValue);
    return field.stringValue;
  }
  if (field.booleanValue !== undefined) return field.booleanValue;
  if (field.longValue !== undefined) return exactLong(field.longValue, column);
  if (field.doubleValue !== undefined) return field.doubleValue;
  if (field.blobValue !== undefined) return Buffer.from(field.blobValue);
  if (field.arrayValue !== undefined) return fromArray(field.arrayValue, column);
  throw new DataApiValueError(
    `column ${column?.label ?? column?.name ?? '?'}: the Data API returned a field of no known kind`,
  );
}

function fromArray(array: ArrayValue, column: ColumnMetadata | undefined): unknown[] {
  if (array.stringValues !== undefined) return array.stringValues;
  if (array.booleanValues !== undefined) return array.booleanValues;
  if (array.doubleValues !== undefined) return array.doubleValues;
  if (array.longValues !== undefined)
    return array.longValues.map((v) => (v === null ? null : exactLong(v, column)));
  if (array.arrayValues !== undefined)
    return array.arrayValues.map((v) => (v === null ? null : fromArray(v, column)));
  return [];
}

/** A `longValue` is a JSON number: past 2^53 the SDK has already rounded it. */
function exactLong(value: number, column: ColumnMetadata | undefined): number | string {
  if (!Number.isSafeInteger(value)) {
    throw new DataApiValueError(
      `column ${column?.label ?? column?.name ?? '?'}: the Data API sent ${value} as a JSON number, which cannot be exact past 2^53; cast the column to text`,
    );
  }
  return column?.typeName === 'int8' ? String(value) : value;
}

import { once } from 'node:events';
import type { Writable } from 'node:stream';
import type { SchemaElement, Writer } from 'hyparquet-writer' with { 'resolution-mode': 'import' };
import { stringifyRowJson } from '../../history/row-json';
import { jsonNullsField } from './history-format';
import type { Version } from '../../history';
import { CliError } from '../errors';
import type { ExportSink } from './export';

// `export --format parquet`: one file, each table in its own row groups, with types that keep
// every value exact. Row documents stay JSON text (numbers as the kit stored them), since
// each table's columns differ; hyparquet-writer's own JSON conversion goes through
// JSON.stringify (9007199254740993 would become ...992, -0 would become 0), so JSON
// columns carry only the JSON logical type and are handed their text as is.

/** A column's Parquet type; its name and whether it may be null come from {@link ExportColumn}. */
type ColumnType = Omit<SchemaElement, 'name' | 'repetition_type'>;

const STRING: ColumnType = {
  type: 'BYTE_ARRAY',
  converted_type: 'UTF8',
  logical_type: { type: 'STRING' },
};
const JSON_TEXT: ColumnType = { type: 'BYTE_ARRAY', logical_type: { type: 'JSON' } };
const MICROS_UTC: ColumnType = {
  type: 'INT64',
  converted_type: 'TIMESTAMP_MICROS',
  logical_type: { type: 'TIMESTAMP', isAdjustedToUTC: true, unit: 'MICROS' },
};

type ParquetValue = string | bigint | null;

/** Changes per row group: a table's changes start a new one (the README states it). */
const ROW_GROUP_SIZE = 100_000;

/** One Parquet column: its name, its type and where its value comes from. */
interface ExportColumn {
  readonly name: string;
  readonly element: ColumnType;
  readonly required: boolean;
  readonly value: (version: Version) => ParquetValue;
}

const json = (value: unknown) =>
  value === null || value === undefined ? null : stringifyRowJson(value);

/**
 * The columns of a Parquet export: the CSV columns, with
 * `commit_timestamp` as TIMESTAMP(MICROS, UTC) and key, rows, changed columns,
 * context and the JSON-null lists as JSON.
 */
export const PARQUET_COLUMNS: readonly ExportColumn[] = [
  { name: 'table', element: STRING, required: true, value: (v) => `${v.schema}.${v.table}` },
  { name: 'key', element: JSON_TEXT, required: true, value: (v) => json(v.key) },
  { name: 'operation', element: STRING, required: true, value: (v) => v.operation },
  {
    name: 'commit_timestamp',
    element: MICROS_UTC,
    required: true,
    value: (v) => epochMicros(v.commitTimestamp),
  },
  { name: 'transaction_id', element: STRING, required: false, value: (v) => v.transactionId },
  { name: 'change_seq', element: STRING, required: false, value: (v) => v.changeSeq },
  {
    name: 'changed_columns',
    element: JSON_TEXT,
    required: false,
    value: (v) => json(v.changedColumns),
  },
  { name: 'old_row', element: JSON_TEXT, required: false, value: (v) => json(v.oldRow) },
  { name: 'new_row', element: JSON_TEXT, required: false, value: (v) => json(v.newRow) },
  { name: 'context', element: JSON_TEXT, required: false, value: (v) => json(v.context) },
  {
    name: 'old_json_nulls',
    element: JSON_TEXT,
    required: true,
    value: (v) => jsonNullsField(v.oldRowJsonNulls),
  },
  {
    name: 'new_json_nulls',
    element: JSON_TEXT,
    required: true,
    value: (v) => jsonNullsField(v.newRowJsonNulls),
  },
];

/**
 * Microseconds since the epoch of a history timestamp (`2026-11-22T23:29:34.308782Z`,
 * the only form the history API returns), exactly: a `Date` holds milliseconds only.
 *
 * ```ts
 * epochMicros('1970-01-01T00:00:01.000002Z'); // 1000002n
 * ```
 */
export function epochMicros(timestamp: string): bigint {
  const match = /^(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})\.(\d{6})Z$/.exec(timestamp);
  const seconds = match === null ? NaN : Date.parse(`${match[1]}Z`);
  if (match === null || Number.isNaN(seconds))
    throw new CliError(`cannot write commit time "${timestamp}" as a Parquet timestamp`, {
      code: 'EXPORT_TIMESTAMP',
    });
  return BigInt(seconds) * 1000n + BigInt(match[2]!);
}

/**
 * A Parquet file written to `out` as it goes: each row group is handed to the stream
 * before the next is encoded, waiting while the stream is full.
 */
export async function openParquetSink(out: Writable): Promise<ExportSink> {
  // ESM only, so import() finds its one copy (no CommonJS build to diverge from), and a
  // static import cannot reach it from the kit's CommonJS output.
  // eslint-disable-next-line no-restricted-syntax
  const { ByteWriter, ParquetWriter } = await import('hyparquet-writer');
  const writer = new ByteWriter();
  const handOver = async () => {
    const bytes = writer.getBytes().slice();
    writer.index = 0;
    if (!out.write(bytes)) await once(out, 'drain');
  };
  const streaming: Writer = Object.assign(writer, { flush: handOver, finish: handOver });
  const parquet = new ParquetWriter({
    writer: streaming,
    schema: [
      { name: 'root', num_children: PARQUET_COLUMNS.length },
      ...PARQUET_COLUMNS.map(({ name, element, required }) => ({
        name,
        ...element,
        repetition_type: required ? ('REQUIRED' as const) : ('OPTIONAL' as const),
      })),
    ],
    createdBy: 'audit-trail export',
  });
  return {
    async write(versions) {
      if (versions.length === 0) return;
      await parquet.write({
        columnData: PARQUET_COLUMNS.map(({ name, element, value }) => ({
          name,
          data: versions.map(value),
          // min/max of JSON documents tell a reader nothing
          statistics: element.logical_type?.type !== 'JSON',
        })),
        rowGroupSize: ROW_GROUP_SIZE,
      });
    },
    async finish() {
      await parquet.finish();
    },
  };
}

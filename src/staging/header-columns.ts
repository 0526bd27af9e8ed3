/**
 * The DMS header columns every staging table carries, in one place: the DMS table
 * mapping adds them (`add-column` rules with these expressions and data types), the
 * target migrations create them with the PostgreSQL types DMS produces for those data
 * types, the local engine fills them as DMS would, and the audit trigger reads them.
 */
export interface HeaderColumn {
  /** Column name on the staging table (lower case, so it needs no quoting). */
  readonly name: string;
  /** The DMS transformation expression that fills it. */
  readonly expression: string;
  /** The DMS `data-type` of the add-column rule. */
  readonly dmsDataType:
    | { readonly type: 'string'; readonly length: number }
    | { readonly type: 'datetime'; readonly precision: 6 };
  /** The PostgreSQL type DMS creates for that data type on a PostgreSQL target. */
  readonly postgresType: string;
  /** What the column means. */
  readonly description: string;
}

/** `INSERT`, `UPDATE` or `DELETE` during CDC; `INSERT` during full load. */
export const OPERATION_COLUMN = {
  name: 'ar_h_operation',
  expression: '$AR_H_OPERATION',
  dmsDataType: { type: 'string', length: 16 },
  postgresType: 'varchar(16)',
  description: 'INSERT, UPDATE or DELETE during CDC; INSERT during full load',
} as const satisfies HeaderColumn;

/** Source commit time (UTC, microseconds) during CDC; the copy time during full load. */
export const COMMIT_TIMESTAMP_COLUMN = {
  name: 'ar_h_commit_timestamp',
  expression: '$AR_H_COMMIT_TIMESTAMP',
  // Precision 7-9 would become varchar(37) on PostgreSQL: 6 is the only safe choice.
  dmsDataType: { type: 'datetime', precision: 6 },
  postgresType: 'timestamp(6)',
  description: 'source commit time in UTC with microseconds (copy time during full load)',
} as const satisfies HeaderColumn;

/** 35 characters, unique and monotonic per task; empty during full load. */
export const CHANGE_SEQ_COLUMN = {
  name: 'ar_h_change_seq',
  expression: '$AR_H_CHANGE_SEQ',
  dmsDataType: { type: 'string', length: 35 },
  postgresType: 'varchar(35)',
  description: '16-digit UTC timestamp + 19-digit counter; empty for full-load rows',
} as const satisfies HeaderColumn;

/** The source transaction id (not unique across time: xids wrap). */
export const TRANSACTION_ID_COLUMN = {
  name: 'ar_h_transaction_id',
  expression: '$AR_H_TRANSACTION_ID',
  dmsDataType: { type: 'string', length: 64 },
  postgresType: 'varchar(64)',
  description: 'source transaction id',
} as const satisfies HeaderColumn;

/** The source LSN of the change; empty during full load. */
export const STREAM_POSITION_COLUMN = {
  name: 'ar_h_stream_position',
  expression: '$AR_H_STREAM_POSITION',
  dmsDataType: { type: 'string', length: 128 },
  postgresType: 'varchar(128)',
  description: 'source stream position (LSN); empty for full-load rows',
} as const satisfies HeaderColumn;

/**
 * `operation_indicator('D', 'U', 'I')`: with this column DMS keeps a deleted row and
 * sets it to `D` instead of deleting it, so the delete's commit time survives.
 */
export const OPERATION_INDICATOR_COLUMN = {
  name: 'ar_h_indicator',
  expression: "operation_indicator('D', 'U', 'I')",
  dmsDataType: { type: 'string', length: 1 },
  postgresType: 'varchar(1)',
  description: 'D for a deleted row, U for updated, I for inserted (DMS operation_indicator)',
} as const satisfies HeaderColumn;

/** Every header column, in the order they are added to a staging table. */
export const HEADER_COLUMNS: readonly HeaderColumn[] = [
  OPERATION_COLUMN,
  COMMIT_TIMESTAMP_COLUMN,
  CHANGE_SEQ_COLUMN,
  TRANSACTION_ID_COLUMN,
  STREAM_POSITION_COLUMN,
  OPERATION_INDICATOR_COLUMN,
];

/** Every header column's name starts with this; source columns may not (migrate refuses). */
export const HEADER_COLUMN_PREFIX = 'ar_h_';

/** Names of the header columns, which never appear in audited row JSON. */
export const HEADER_COLUMN_NAMES: readonly string[] = HEADER_COLUMNS.map((column) => column.name);

/** Indicator values written by `operation_indicator('D', 'U', 'I')`. */
export const Indicator = { deleted: 'D', updated: 'U', inserted: 'I' } as const;

/** Suffix DMS's rename rule appends to the source table name. */
export const STAGING_SUFFIX = '_staging';

/** The staging table name for a source table: `<table>_staging`. */
export function stagingTableName(sourceTable: string): string {
  return `${sourceTable}${STAGING_SUFFIX}`;
}

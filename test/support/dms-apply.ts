import type pg from 'pg';
import { quoteIdent, quoteQualified } from '../../src/postgres/identifiers';
import { stagingTableName } from '../../src/staging/header-columns';

/** DMS header values for one applied change. */
export interface Headers {
  operation: 'INSERT' | 'UPDATE' | 'DELETE';
  commitTimestamp: string; // 'YYYY-MM-DD HH:MI:SS.US' (UTC)
  changeSeq: string; // '' for full load
  transactionId: string;
  streamPosition: string;
}

let counter = 0n;

/** A DMS-shaped change sequence: 16-digit UTC timestamp + 19-digit counter. */
export function changeSeq(commitTimestamp: string): string {
  counter += 1n;
  const digits = commitTimestamp.replace(/\D/g, '').slice(0, 16).padEnd(16, '0');
  return `${digits}${counter.toString().padStart(19, '0')}`;
}

/** Builds CDC headers for a change committed at `commitTimestamp` in transaction `xid`. */
export function cdc(
  operation: Headers['operation'],
  commitTimestamp: string,
  xid: number,
  lsn = '0/16B3748',
): Headers {
  return {
    operation,
    commitTimestamp,
    changeSeq: changeSeq(commitTimestamp),
    transactionId: String(xid),
    streamPosition: lsn,
  };
}

/** Full-load headers: INSERT, copy time, empty change sequence and stream position. */
export function fullLoad(copyTime: string): Headers {
  return {
    operation: 'INSERT',
    commitTimestamp: copyTime,
    changeSeq: '',
    transactionId: '',
    streamPosition: '',
  };
}

const INDICATOR = { INSERT: 'I', UPDATE: 'U', DELETE: 'D' } as const;

function headerAssignments(headers: Headers): Record<string, string> {
  return {
    ar_h_operation: headers.operation,
    ar_h_commit_timestamp: headers.commitTimestamp,
    ar_h_change_seq: headers.changeSeq,
    ar_h_transaction_id: headers.transactionId,
    ar_h_stream_position: headers.streamPosition,
    ar_h_indicator: INDICATOR[headers.operation],
  };
}

/** The statements DMS issues against a PostgreSQL target for one staging table. */
export class DmsApplier {
  constructor(
    private readonly client: pg.Client,
    private readonly auditSchema: string,
    private readonly table: string,
    private readonly keyColumns: readonly string[],
    /** The staging table's name, when a DMS mapping says it (@default `<table>_staging`). */
    private readonly stagingName = stagingTableName(table),
  ) {}

  private get staging(): string {
    return quoteQualified(this.auditSchema, this.stagingName);
  }

  /** INSERT of a new row (CDC or full load). Values are text, as DMS sends them. */
  async insert(row: Record<string, string | null>, headers: Headers): Promise<void> {
    const values = { ...row, ...headerAssignments(headers) };
    const names = Object.keys(values);
    await this.client.query(
      `INSERT INTO ${this.staging} (${names.map(quoteIdent).join(', ')}) VALUES (${names.map((_, i) => `$${i + 1}`).join(', ')})`,
      Object.values(values),
    );
  }

  /**
   * INSERT under ApplyErrorInsertPolicy INSERT_RECORD: when the key exists (a row kept
   * with the D flag, or a replay), DMS updates the existing record with the inserted
   * values. Every column, the key's too: DMS's UPDATE sets key columns (that is how it
   * applies key changes), so a key equal by its type but spelled otherwise (numeric
   * 2.00 for 2) arrives as inserted, as the local engine writes it.
   */
  async insertRecord(row: Record<string, string | null>, headers: Headers): Promise<void> {
    const values = { ...row, ...headerAssignments(headers) };
    const names = Object.keys(values);
    await this.client.query(
      `INSERT INTO ${this.staging} (${names.map(quoteIdent).join(', ')}) VALUES (${names.map((_, i) => `$${i + 1}`).join(', ')})
       ON CONFLICT (${this.keyColumns.map(quoteIdent).join(', ')}) DO UPDATE SET ${names
         .map((name) => `${quoteIdent(name)} = excluded.${quoteIdent(name)}`)
         .join(', ')}`,
      Object.values(values),
    );
  }

  /** UPDATE by primary key with the changed columns and the change's headers. */
  async update(
    key: Record<string, string>,
    changes: Record<string, string | null>,
    headers: Headers,
  ): Promise<number> {
    return this.updateWhere(key, { ...changes, ...headerAssignments(headers) });
  }

  /** DELETE under operation_indicator: the row stays, flagged D, with the delete's headers. */
  async delete(key: Record<string, string>, headers: Headers): Promise<number> {
    return this.updateWhere(key, headerAssignments(headers));
  }

  private async updateWhere(
    key: Record<string, string>,
    assignments: Record<string, string | null>,
  ): Promise<number> {
    const names = Object.keys(assignments);
    const keyNames = Object.keys(key);
    const result = await this.client.query(
      `UPDATE ${this.staging} SET ${names.map((name, i) => `${quoteIdent(name)} = $${i + 1}`).join(', ')}
       WHERE ${keyNames.map((name, i) => `${quoteIdent(name)} = $${names.length + i + 1}`).join(' AND ')}`,
      [...Object.values(assignments), ...Object.values(key)],
    );
    return result.rowCount ?? 0;
  }
}

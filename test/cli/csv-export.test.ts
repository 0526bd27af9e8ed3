import { splitCsv } from '../../src/access-audit/csv';
import { CSV_COLUMNS, csvRecord } from '../../src/cli/commands/history-format';
import { PARQUET_COLUMNS } from '../../src/cli/commands/export-parquet';
import type { Version } from '../../src/history';

/** A version as the history API returns it, with the who-and-why context set. */
const version: Version = {
  id: '7',
  schema: 'shop',
  table: 'orders',
  key: { id: 1 },
  operation: 'UPDATE',
  commitTimestamp: '2026-11-22T22:39:36.123456Z',
  transactionId: '4711',
  changeSeq: '20261122223936123456000000000000001',
  streamPosition: '0/16B3748',
  oldRow: { id: 1, note: 'a' },
  newRow: { id: 1, note: 'b, "quoted"\nsecond line' },
  changedColumns: ['note'],
  oldRowJsonNulls: [],
  newRowJsonNulls: ['attrs', 'extra'],
  context: {
    actor: 'alice, "the admin"',
    onBehalfOf: null,
    requestId: 'r-1',
    client: null,
    reason: 'TICKET-7\nrefund',
    metadata: { ticket: 7 },
  },
};

describe('CSV export records', () => {
  it('carry the context after the rows, JSON text that survives RFC 4180 quoting', () => {
    const fields = splitCsv(csvRecord(version));
    expect(fields).toHaveLength(CSV_COLUMNS.length);
    const at = (column: (typeof CSV_COLUMNS)[number]) => fields[CSV_COLUMNS.indexOf(column)]!;
    // Columns added later come last: readers of the earlier ones are unaffected.
    expect(CSV_COLUMNS.slice(-3)).toEqual(['context', 'old_json_nulls', 'new_json_nulls']);
    expect(JSON.parse(at('context'))).toEqual(version.context);
    expect(JSON.parse(at('new_row'))).toEqual(version.newRow);
    expect(at('commit_timestamp')).toBe(version.commitTimestamp);
  });

  it('leave a null context empty', () => {
    const fields = splitCsv(csvRecord({ ...version, context: null }));
    expect(fields[CSV_COLUMNS.indexOf('context')]).toBe('');
  });

  it('list the JSON-null columns of each row as JSON text, [] for none', () => {
    const fields = splitCsv(csvRecord(version));
    expect(fields[CSV_COLUMNS.indexOf('old_json_nulls')]).toBe('[]');
    expect(JSON.parse(fields[CSV_COLUMNS.indexOf('new_json_nulls')]!)).toEqual(['attrs', 'extra']);
  });

  it('have the same columns, in the same order, as a Parquet export', () => {
    expect(PARQUET_COLUMNS.map((column) => column.name)).toEqual([...CSV_COLUMNS]);
  });
});

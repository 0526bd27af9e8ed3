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
  it('carry the context as the last column, JSON text that survives RFC 4180 quoting', () => {
    const fields = splitCsv(csvRecord(version));
    expect(fields).toHaveLength(CSV_COLUMNS.length);
    const at = (column: (typeof CSV_COLUMNS)[number]) => fields[CSV_COLUMNS.indexOf(column)]!;
    expect(CSV_COLUMNS.at(-1)).toBe('context');
    expect(JSON.parse(at('context'))).toEqual(version.context);
    expect(JSON.parse(at('new_row'))).toEqual(version.newRow);
    expect(at('commit_timestamp')).toBe(version.commitTimestamp);
  });

  it('leave a null context empty', () => {
    const fields = splitCsv(csvRecord({ ...version, context: null }));
    expect(fields.at(-1)).toBe('');
  });

  it('have the same columns, in the same order, as a Parquet export', () => {
    expect(PARQUET_COLUMNS.map((column) => column.name)).toEqual([...CSV_COLUMNS]);
  });
});

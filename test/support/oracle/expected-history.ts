import type { OracleEvent } from './install';

/**
 * What the audit log must hold, derived from the oracle's events. Exact everywhere
 * (every value's output text, µs commit time, xid), except for these deliberate,
 * documented differences, listed here and nowhere else:
 *
 * 1. **Initial load.** Rows that exist when the kit first loads a table appear as one
 *    `SNAPSHOT` version each, holding the row as loaded; the changes made before the
 *    load are not versions. A snapshot's commit time is the copy time (DMS full load)
 *    and it has no transaction id: neither is compared.
 * 2. **Updates that change nothing.** An UPDATE after which every recorded column
 *    prints the same text as before leaves no version (the staging row did not change).
 * 3. **Ignored columns** (`ignoreColumns` in the config) are in no row and in no
 *    `changed_columns`; an update changing only them leaves no version (rule 2).
 * 4. **Key changes.** An UPDATE that changes the key is a `DELETE` under the old key
 *    (old row) and an `UPDATE` under the new key whose old row shows the old key; both
 *    carry the change's commit time and xid.
 *
 * Keys are compared by the key type's equality: numeric keys by value (2 = 2.00).
 */
export const DELIBERATE_DIFFERENCES = [
  'initial load: one SNAPSHOT per loaded row, commit time and xid not compared',
  'an update that changes no recorded column leaves no version',
  'ignored columns are in no row and no changed_columns',
  'a key change is DELETE under the old key + UPDATE under the new key',
] as const;

/** A watched table as the comparison needs it. */
export interface ComparedTable {
  readonly schema: string;
  readonly table: string;
  /** Key columns in key order. */
  readonly keyColumns: readonly string[];
  /** Columns left out of history (every name the config ignored at any time). @default [] */
  readonly ignoreColumns?: readonly string[];
  /**
   * The oracle mark the table was loaded at, when not the pipeline's first catch-up (a
   * table added to the config later, #17 item 13). @default the `loadMark` passed in
   */
  readonly loadedAt?: number;
  /**
   * The last oracle event captured (a table removed from the config, #17 item 19: later
   * changes are not history); below the load mark, nothing is. @default every event
   */
  readonly capturedUntil?: number;
}

/** A row as column → output text (null for SQL NULL). */
export type TextRow = Readonly<Record<string, string | null>>;

/** One version the audit log must hold. */
export interface ExpectedVersion {
  /** Canonical key (JSON array of the key values' canonical text). */
  readonly key: string;
  readonly operation: 'SNAPSHOT' | 'INSERT' | 'UPDATE' | 'DELETE';
  /** Null for SNAPSHOT (rule 1). */
  readonly commitTimestamp: string | null;
  readonly transactionId: string | null;
  readonly oldRow: TextRow | null;
  readonly newRow: TextRow | null;
  /** Sorted; null unless UPDATE. */
  readonly changedColumns: readonly string[] | null;
  /** Column types at the time of the change (to decode the kit's values). */
  readonly types: Readonly<Record<string, string>>;
  /** The oracle event it comes from. */
  readonly seq: number;
}

/** Canonical text of a key value by its type's equality (numeric: 2.00 = 2). */
export function canonicalKeyValue(text: string | null, type: string): string | null {
  if (text === null) return null;
  if (/^numeric\b/.test(type)) return canonicalNumeric(text);
  return text;
}

function canonicalNumeric(text: string): string {
  const match = /^(-?)(\d+)(?:\.(\d*))?$/.exec(text);
  if (!match) return text; // NaN, Infinity
  const integer = match[2]!.replace(/^0+(?=\d)/, '');
  const fraction = (match[3] ?? '').replace(/0+$/, '');
  const sign = match[1] && (integer !== '0' || fraction !== '') ? '-' : '';
  return `${sign}${integer}${fraction ? `.${fraction}` : ''}`;
}

/** The canonical key of a row. */
export function keyOf(
  row: TextRow,
  keyColumns: readonly string[],
  types: Readonly<Record<string, string>>,
): string {
  return JSON.stringify(
    keyColumns.map((name) => canonicalKeyValue(row[name] ?? null, types[name] ?? 'text')),
  );
}

/**
 * Every version the audit log must hold for `table`, in order per key.
 * @param loadMark events with `seq <= loadMark` happened before the initial load.
 */
export function expectedHistory(
  events: readonly OracleEvent[],
  table: ComparedTable,
  loadMark: number,
): ExpectedVersion[] {
  const ignored = new Set(table.ignoreColumns ?? []);
  const recorded = (row: TextRow | null): TextRow | null =>
    row && Object.fromEntries(Object.entries(row).filter(([name]) => !ignored.has(name)));
  const from = table.loadedAt ?? loadMark;
  const until = table.capturedUntil ?? Infinity;
  if (until < from) return [];
  const mine = events.filter(
    (e) => e.schema === table.schema && e.table === table.table && e.seq <= until,
  );
  const versions: ExpectedVersion[] = [];

  // Rule 1: the rows that exist at the load, as loaded.
  const loaded = new Map<string, { row: TextRow; event: OracleEvent }>();
  for (const event of mine.filter((e) => e.seq <= from)) {
    if (event.oldText) loaded.delete(keyOf(event.oldText, table.keyColumns, event.columnTypes));
    if (event.newText)
      loaded.set(keyOf(event.newText, table.keyColumns, event.columnTypes), {
        row: event.newText,
        event,
      });
  }
  for (const [key, { row, event }] of loaded)
    versions.push({
      key,
      operation: 'SNAPSHOT',
      commitTimestamp: null,
      transactionId: null,
      oldRow: null,
      newRow: recorded(row),
      changedColumns: null,
      types: event.columnTypes,
      seq: event.seq,
    });

  for (const event of mine.filter((e) => e.seq > from)) {
    const base = {
      commitTimestamp: event.commitTimestamp,
      transactionId: event.xid,
      types: event.columnTypes,
      seq: event.seq,
    };
    const oldRow = recorded(event.oldText);
    const newRow = recorded(event.newText);
    const key = (row: TextRow) => keyOf(row, table.keyColumns, event.columnTypes);
    if (event.operation === 'INSERT') {
      versions.push({
        ...base,
        key: key(newRow!),
        operation: 'INSERT',
        oldRow: null,
        newRow,
        changedColumns: null,
      });
    } else if (event.operation === 'DELETE') {
      versions.push({
        ...base,
        key: key(oldRow!),
        operation: 'DELETE',
        oldRow,
        newRow: null,
        changedColumns: null,
      });
    } else {
      const changed = changedColumns(oldRow!, newRow!);
      if (changed.length === 0) continue; // rule 2 (and 3)
      const oldKey = key(oldRow!);
      const newKey = key(newRow!);
      if (oldKey !== newKey)
        // rule 4
        versions.push({
          ...base,
          key: oldKey,
          operation: 'DELETE',
          oldRow,
          newRow: null,
          changedColumns: null,
        });
      versions.push({
        ...base,
        key: newKey,
        operation: 'UPDATE',
        oldRow,
        newRow,
        changedColumns: changed,
      });
    }
  }
  return versions;
}

/** Columns whose text differs between two rows (a column on one side only counts), sorted. */
export function changedColumns(oldRow: TextRow, newRow: TextRow): string[] {
  const names = new Set([...Object.keys(oldRow), ...Object.keys(newRow)]);
  return [...names]
    .filter((name) => !(name in oldRow && name in newRow && oldRow[name] === newRow[name]))
    .sort();
}

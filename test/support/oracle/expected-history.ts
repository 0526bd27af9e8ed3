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
 *    **Reload** (a table removed from the config and added back, #17 item 19): the
 *    changes made while it was out are not versions; the load is a new baseline, one
 *    `SNAPSHOT` for each row whose recorded columns differ from its key's newest version
 *    or are not all in it (or whose newest version is a DELETE, or which has none), and one `DELETE` (old row:
 *    the newest version's row; commit time and transaction id not compared) for each
 *    key whose newest version is live but which the table no longer holds.
 * 2. **Updates that change nothing.** An UPDATE after which every recorded column
 *    prints the same text as before leaves no version (the staging row did not change).
 * 3. **Ignored columns** (`ignoreColumns` in the config) are in no row and in no
 *    `changed_columns`; an update changing only them leaves no version (rule 2).
 * 4. **Key changes.** An UPDATE that changes the key is a `DELETE` under the old key
 *    (old row) and an `UPDATE` under the new key whose old row shows the old key; both
 *    carry the change's commit time and xid.
 * 5. **Generated columns** (`GENERATED ALWAYS AS ... STORED`, #17 item 5) are left out
 *    like ignored columns (rule 3): pgoutput does not send them before PostgreSQL 18, and
 *    the kit keeps them out of staging, history and verify.
 *
 * Keys are compared by the key type's equality: numeric keys by value (2 = 2.00).
 */
export const DELIBERATE_DIFFERENCES = [
  'initial load: one SNAPSHOT per loaded row, commit time and xid not compared',
  'an update that changes no recorded column leaves no version',
  'ignored columns are in no row and no changed_columns',
  'a key change is DELETE under the old key + UPDATE under the new key',
  'generated columns are in no row and no changed_columns',
] as const;

/** A watched table as the comparison needs it. */
export interface ComparedTable {
  readonly schema: string;
  readonly table: string;
  /** Key columns in key order. */
  readonly keyColumns: readonly string[];
  /** Columns left out of history (every name the config ignored at any time). @default [] */
  readonly ignoreColumns?: readonly string[];
  /** Every name a generated column of the table had at any time (rule 5). @default [] */
  readonly generatedColumns?: readonly string[];
  /**
   * Each time the pipeline captured the table: loaded (at the first catch-up, when added
   * to the config later, #17 item 13, or added back, item 19) until removed from the
   * config (item 19). Empty: never captured. @default one window from the `loadMark`
   * passed in, its rows rebuilt from the events before it
   */
  readonly windows?: readonly CaptureWindow[];
}

/** One stretch of a table's capture: a load, then every change until `capturedUntil`. */
export interface CaptureWindow {
  /** The oracle mark the load happened at: later events are changes. */
  readonly loadedAt: number;
  /**
   * The rows the source held at the load, read from the source itself (the scenario
   * writes nothing while the pipeline loads): the independent witness of what a load
   * must copy, not rebuilt from events.
   */
  readonly rows: readonly TextRow[];
  /** The source's column types at the load (to decode the kit's values). */
  readonly types: Readonly<Record<string, string>>;
  /** The last oracle event captured (removed from the config then). @default every event */
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
  const ignored = new Set([...(table.ignoreColumns ?? []), ...(table.generatedColumns ?? [])]);
  const recorded = (row: TextRow | null): TextRow | null =>
    row && Object.fromEntries(Object.entries(row).filter(([name]) => !ignored.has(name)));
  const mine = events.filter((e) => e.schema === table.schema && e.table === table.table);
  const versions: ExpectedVersion[] = [];
  /** Each key's newest expected version: its row, and whether it is a DELETE. */
  const newest = new Map<string, { row: TextRow; deleted: boolean }>();
  const push = (version: ExpectedVersion) => {
    versions.push(version);
    const row = version.newRow ?? version.oldRow!;
    newest.set(version.key, { row, deleted: version.operation === 'DELETE' });
  };

  for (const window of table.windows ?? [windowFromEvents(mine, table, loadMark)]) {
    // Rule 1: the load, a baseline of the rows the source held then.
    const held = new Set<string>();
    for (const source of window.rows) {
      const row = recorded(source)!;
      const key = keyOf(row, table.keyColumns, window.types);
      held.add(key);
      const before = newest.get(key);
      if (before && !before.deleted && unchangedSince(before.row, row)) continue;
      push({
        key,
        operation: 'SNAPSHOT',
        commitTimestamp: null,
        transactionId: null,
        oldRow: null,
        newRow: row,
        changedColumns: null,
        types: window.types,
        seq: window.loadedAt,
      });
    }
    for (const [key, before] of [...newest])
      if (!before.deleted && !held.has(key))
        push({
          key,
          operation: 'DELETE',
          commitTimestamp: null,
          transactionId: null,
          oldRow: before.row,
          newRow: null,
          changedColumns: null,
          types: window.types,
          seq: window.loadedAt,
        });
    const until = window.capturedUntil ?? Infinity;
    for (const event of mine.filter((e) => e.seq > window.loadedAt && e.seq <= until))
      for (const version of eventVersions(event, table, recorded)) push(version);
  }
  return versions;
}

/**
 * The one capture window of a table the caller gave no windows: loaded at `loadMark`,
 * its rows rebuilt from the events up to it.
 */
function windowFromEvents(
  events: readonly OracleEvent[],
  table: ComparedTable,
  loadMark: number,
): CaptureWindow {
  const loaded = new Map<string, OracleEvent>();
  for (const event of events.filter((e) => e.seq <= loadMark)) {
    if (event.oldText) loaded.delete(keyOf(event.oldText, table.keyColumns, event.columnTypes));
    if (event.newText) loaded.set(keyOf(event.newText, table.keyColumns, event.columnTypes), event);
  }
  const last = [...loaded.values()].at(-1);
  return {
    loadedAt: loadMark,
    rows: [...loaded.values()].map((event) => event.newText!),
    types: last?.columnTypes ?? {},
  };
}

/** The versions one captured change makes (rules 2 to 4). */
function eventVersions(
  event: OracleEvent,
  table: ComparedTable,
  recorded: (row: TextRow | null) => TextRow | null,
): ExpectedVersion[] {
  const base = {
    commitTimestamp: event.commitTimestamp,
    transactionId: event.xid,
    types: event.columnTypes,
    seq: event.seq,
  };
  const oldRow = recorded(event.oldText);
  const newRow = recorded(event.newText);
  const key = (row: TextRow) => keyOf(row, table.keyColumns, event.columnTypes);
  if (event.operation === 'INSERT')
    return [
      {
        ...base,
        key: key(newRow!),
        operation: 'INSERT',
        oldRow: null,
        newRow,
        changedColumns: null,
      },
    ];
  if (event.operation === 'DELETE')
    return [
      {
        ...base,
        key: key(oldRow!),
        operation: 'DELETE',
        oldRow,
        newRow: null,
        changedColumns: null,
      },
    ];
  const changed = changedColumns(oldRow!, newRow!);
  if (changed.length === 0) return []; // rule 2 (and 3)
  const oldKey = key(oldRow!);
  const newKey = key(newRow!);
  const update: ExpectedVersion = {
    ...base,
    key: newKey,
    operation: 'UPDATE',
    oldRow,
    newRow,
    changedColumns: changed,
  };
  if (oldKey === newKey) return [update];
  // rule 4
  return [
    { ...base, key: oldKey, operation: 'DELETE', oldRow, newRow: null, changedColumns: null },
    update,
  ];
}

/**
 * Whether a reloaded row `loaded` is its key's newest version `newest` again: every
 * column it has prints the same there. A column the newest version lacks (added or
 * renamed while the table was out of the config) holds a value no version recorded, so
 * the row is a SNAPSHOT; a column only the newest version has was dropped, which is no
 * change of the row.
 */
function unchangedSince(newest: TextRow, loaded: TextRow): boolean {
  return Object.keys(loaded).every((name) => name in newest && newest[name] === loaded[name]);
}

/** Columns whose text differs between two rows (a column on one side only counts), sorted. */
export function changedColumns(oldRow: TextRow, newRow: TextRow): string[] {
  const names = new Set([...Object.keys(oldRow), ...Object.keys(newRow)]);
  return [...names]
    .filter((name) => !(name in oldRow && name in newRow && oldRow[name] === newRow[name]))
    .sort();
}

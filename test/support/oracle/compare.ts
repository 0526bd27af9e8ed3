import type pg from 'pg';
import { quoteQualified } from '../../../src/postgres/identifiers';
import {
  canonicalKeyValue,
  expectedHistory,
  type ComparedTable,
  type ExpectedVersion,
} from './expected-history';
import { decodeValues, readOracleEvents, type EncodedValue } from './install';

/** One version the kit recorded, as read from the audit log (row JSON kept as text). */
export interface KitVersion {
  readonly id: string;
  /** Canonical key, comparable with {@link ExpectedVersion.key}. */
  readonly key: string;
  readonly rowKeyJson: string;
  readonly operation: string;
  readonly commitTimestamp: string;
  readonly transactionId: string | null;
  readonly oldRowJson: string | null;
  readonly newRowJson: string | null;
  readonly changedColumns: readonly string[] | null;
  /** `old_json_nulls` / `new_json_nulls`: the jsonb columns holding the JSON null literal. */
  readonly oldJsonNulls: readonly string[] | null;
  readonly newJsonNulls: readonly string[] | null;
}

/** The first place where the kit's history and the oracle's disagree, for one key. */
export interface HistoryDifference {
  /** `schema.table` */
  readonly table: string;
  /** The key (canonical text of the key values). */
  readonly key: string;
  /** Position in the key's history (0 = oldest). */
  readonly index: number;
  /** The oracle event behind the expected version (undefined: the kit has an extra one). */
  readonly seq?: number;
  /** `operation`, `commitTimestamp`, `transactionId`, `oldRow.<column>`, `newRow.columns`, ... */
  readonly field: string;
  readonly expected: unknown;
  readonly got: unknown;
}

/** Options for {@link compareHistory}. */
export interface CompareOptions {
  /** Source connection (holds the oracle). */
  readonly source: pg.ClientBase;
  /** Target connection (holds the audit log). */
  readonly target: pg.ClientBase;
  /** The kit's audit schema. @default 'audit' */
  readonly auditSchema?: string;
  readonly tables: readonly ComparedTable[];
  /** Events with `seq <= loadMark` happened before the initial load (see {@link oracleMark}). */
  readonly loadMark: number;
  /**
   * Compare only audit rows with a larger id. For a target upgraded from a release
   * whose history this oracle never watched (it recorded those rows before the oracle
   * existed): the caller checks them on their own. @default every audit row
   */
  readonly recordedAfter?: string;
}

/** The result: empty `differences` means history is exactly the oracle's. */
export interface CompareReport {
  /** The first difference of each key that has one, oldest oracle event first. */
  readonly differences: readonly HistoryDifference[];
  /** Versions compared. */
  readonly versions: number;
}

/**
 * Lines up, key by key, the versions the oracle says must exist with the versions in
 * the kit's audit log, and reports each key's first difference precisely.
 */
export async function compareHistory(options: CompareOptions): Promise<CompareReport> {
  const events = await readOracleEvents(options.source);
  const differences: HistoryDifference[] = [];
  let versions = 0;
  for (const table of options.tables) {
    const expected = expectedHistory(events, table, options.loadMark);
    const keyTypes = latestTypes(events, table);
    const got = await readKitVersions(options, table, keyTypes);
    versions += expected.length;
    differences.push(...(await lineUp(options.source, table, expected, got)));
  }
  differences.sort((a, b) => (a.seq ?? Infinity) - (b.seq ?? Infinity));
  return { differences, versions };
}

/** A one-paragraph description of a difference, for assertion messages. */
export function describeDifference(d: HistoryDifference): string {
  return `${d.table} key ${d.key}, change #${d.index}${d.seq === undefined ? '' : ` (oracle event ${d.seq})`}: ${d.field} expected ${JSON.stringify(d.expected)}, got ${JSON.stringify(d.got)}`;
}

function latestTypes(
  events: Awaited<ReturnType<typeof readOracleEvents>>,
  table: ComparedTable,
): Record<string, string> {
  const mine = events.filter((e) => e.schema === table.schema && e.table === table.table);
  return { ...mine.at(-1)?.columnTypes };
}

async function readKitVersions(
  options: CompareOptions,
  table: ComparedTable,
  keyTypes: Readonly<Record<string, string>>,
): Promise<KitVersion[]> {
  const { rows } = await options.target.query<{
    id: string;
    row_key: string;
    operation: string;
    commit_ts: string;
    transaction_id: string | null;
    old_row: string | null;
    new_row: string | null;
    changed_columns: string[] | null;
    old_json_nulls: string[] | null;
    new_json_nulls: string[] | null;
  }>(
    `SELECT id::text, row_key::text, operation, transaction_id, old_row::text, new_row::text, changed_columns,
            old_json_nulls, new_json_nulls,
            to_char(commit_timestamp AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS.US') AS commit_ts
       FROM ${quoteQualified(options.auditSchema ?? 'audit', 'audit_log')}
      WHERE source_schema = $1 AND source_table = $2 AND id > $3
      -- History order, as the API reads it: a reload's SNAPSHOTs (no change sequence)
      -- come after the changes before it, by their copy time.
      ORDER BY commit_timestamp, change_seq NULLS FIRST, id`,
    [table.schema, table.table, options.recordedAfter ?? '0'],
  );
  const keyTexts = await decodeValues(
    options.source,
    rows.flatMap((row) =>
      table.keyColumns.map((column) => ({
        rowJson: row.row_key,
        column,
        type: keyTypes[column] ?? 'text',
      })),
    ),
  );
  const width = table.keyColumns.length;
  return rows.map((row, i) => ({
    id: row.id,
    key: JSON.stringify(
      table.keyColumns.map((column, k) =>
        canonicalKeyValue(keyTexts[i * width + k] ?? null, keyTypes[column] ?? 'text'),
      ),
    ),
    rowKeyJson: row.row_key,
    operation: row.operation,
    commitTimestamp: row.commit_ts,
    transactionId: row.transaction_id,
    oldRowJson: row.old_row,
    newRowJson: row.new_row,
    changedColumns: row.changed_columns,
    oldJsonNulls: row.old_json_nulls,
    newJsonNulls: row.new_json_nulls,
  }));
}

async function lineUp(
  source: pg.ClientBase,
  table: ComparedTable,
  expected: readonly ExpectedVersion[],
  got: readonly KitVersion[],
): Promise<HistoryDifference[]> {
  const label = `${table.schema}.${table.table}`;
  const byKey = <T extends { key: string }>(items: readonly T[]) => {
    const map = new Map<string, T[]>();
    for (const item of items) map.set(item.key, [...(map.get(item.key) ?? []), item]);
    return map;
  };
  const expectedByKey = byKey(expected);
  const gotByKey = byKey(got);
  const keys = [...new Set([...expectedByKey.keys(), ...gotByKey.keys()])];

  // First pass: everything but values; collect the values to decode.
  const pending: { key: string; pairs: [ExpectedVersion, KitVersion, number][] }[] = [];
  const differences: HistoryDifference[] = [];
  const decodeQueue: EncodedValue[] = [];
  for (const key of keys) {
    const want = expectedByKey.get(key) ?? [];
    const have = gotByKey.get(key) ?? [];
    const pairs: [ExpectedVersion, KitVersion, number][] = [];
    let found: HistoryDifference | undefined;
    for (let index = 0; index < Math.max(want.length, have.length) && !found; index++) {
      const e = want[index];
      const g = have[index];
      const diff = (field: string, expectedValue: unknown, gotValue: unknown) =>
        (found = {
          table: label,
          key,
          index,
          seq: e?.seq,
          field,
          expected: expectedValue,
          got: gotValue,
        });
      if (!e) diff('operation', '(no version)', `${g!.operation} (audit id ${g!.id})`);
      else if (!g) diff('operation', e.operation, '(no version)');
      else if (e.operation !== g.operation) diff('operation', e.operation, g.operation);
      else if (e.commitTimestamp !== null && e.commitTimestamp !== g.commitTimestamp)
        diff('commitTimestamp', e.commitTimestamp, g.commitTimestamp);
      else if (e.transactionId !== null && e.transactionId !== g.transactionId)
        diff('transactionId', e.transactionId, g.transactionId);
      else if (e.changedColumns && !sameSet(e.changedColumns, g.changedColumns ?? []))
        diff('changedColumns', e.changedColumns, g.changedColumns);
      else {
        for (const side of ['oldRow', 'newRow'] as const) {
          const columns = rowColumns(side === 'oldRow' ? g.oldRowJson : g.newRowJson);
          const wanted = e[side] ? Object.keys(e[side]).sort() : null;
          if (JSON.stringify(wanted) !== JSON.stringify(columns)) {
            diff(`${side}.columns`, wanted, columns);
            break;
          }
          // Which of them hold the JSON null literal is checked with the values; here,
          // that the list is the audit log's form: columns of the row, sorted, never empty.
          const listed = jsonNullsOf(g, side);
          if (listed !== null && !wellFormedJsonNulls(listed, columns ?? [])) {
            diff(`${side}.jsonNulls`, 'columns of the row, sorted, not empty', listed);
            break;
          }
        }
        if (!found) pairs.push([e, g, index]);
      }
    }
    if (found) differences.push(found);
    // Values are compared up to the first structural difference of the key.
    pending.push({ key, pairs });
    for (const [e, g] of pairs)
      for (const side of ['oldRow', 'newRow'] as const) {
        const json = side === 'oldRow' ? g.oldRowJson : g.newRowJson;
        for (const column of Object.keys(e[side] ?? {}))
          decodeQueue.push({ rowJson: json!, column, type: e.types[column] ?? 'text' });
      }
  }

  // Second pass: values, decoded to the source types' text in one round trip. A listed
  // jsonb column is the JSON null literal, whose text is `null` (its document value is
  // JSON null, as SQL NULL's is, so it decodes as NULL).
  const decoded = await decodeValues(source, decodeQueue);
  let next = 0;
  for (const { key, pairs } of pending) {
    let found: HistoryDifference | undefined;
    for (const [e, g, index] of pairs)
      for (const side of ['oldRow', 'newRow'] as const)
        for (const [column, text] of Object.entries(e[side] ?? {})) {
          const value = decoded[next++];
          const got = !jsonNullsOf(g, side)?.includes(column)
            ? value
            : value === null
              ? 'null'
              : `<listed as the JSON null literal, holds ${value}>`;
          if (!found && got !== text)
            found = {
              table: label,
              key,
              index,
              seq: e.seq,
              field: `${side}.${column}`,
              expected: text,
              got,
            };
        }
    if (found) {
      const earlier = differences.findIndex((d) => d.key === key && d.table === label);
      if (earlier === -1) differences.push(found);
      else if (differences[earlier]!.index > found.index) differences[earlier] = found;
    }
  }
  return differences;
}

function jsonNullsOf(version: KitVersion, side: 'oldRow' | 'newRow'): readonly string[] | null {
  return side === 'oldRow' ? version.oldJsonNulls : version.newJsonNulls;
}

/** Not empty, sorted in byte order (COLLATE "C") without repeats, each a column of the row. */
function wellFormedJsonNulls(listed: readonly string[], columns: readonly string[]): boolean {
  const bytes = (name: string) => Buffer.from(name);
  return (
    listed.length > 0 &&
    listed.every(
      (name, i) =>
        columns.includes(name) &&
        (i === 0 || Buffer.compare(bytes(listed[i - 1]!), bytes(name)) < 0),
    )
  );
}

function rowColumns(json: string | null): string[] | null {
  if (json === null) return null;
  return Object.keys(JSON.parse(json) as Record<string, unknown>).sort();
}

function sameSet(a: readonly string[], b: readonly string[]): boolean {
  return JSON.stringify([...a].sort()) === JSON.stringify([...b].sort());
}

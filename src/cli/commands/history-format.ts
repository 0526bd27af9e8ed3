import { stringifyRowJson } from '../../history/row-json';
import type { SchemaChange, SchemaColumn, Version } from '../../history';
import { printable } from '../../support/printable';

// How the history commands print versions (text, JSON, CSV), loaded when one of them runs.

/** The documented `--json` shape of one version. */
export function toJson(version: Version) {
  return {
    operation: version.operation,
    commitTimestamp: version.commitTimestamp,
    transactionId: version.transactionId,
    changeSeq: version.changeSeq,
    oldRow: version.oldRow,
    newRow: version.newRow,
    changedColumns: version.changedColumns,
    context: version.context,
    oldRowJsonNulls: version.oldRowJsonNulls,
    newRowJsonNulls: version.newRowJsonNulls,
  };
}

export function formatVersions(versions: readonly Version[]): string {
  if (versions.length === 0) return 'no history for that key\n';
  return versions.map(formatVersion).join('');
}

export function formatVersion(version: Version): string {
  const head = `${version.commitTimestamp}  ${version.operation.padEnd(8)} tx ${version.transactionId ?? '-'}${formatContext(version.context)}`;
  const lines = [head];
  if (version.operation === 'UPDATE') {
    for (const column of version.changedColumns ?? []) {
      const before = valueText(version.oldRow, version.oldRowJsonNulls, column);
      const after = valueText(version.newRow, version.newRowJsonNulls, column);
      lines.push(`    ${column}: ${before} → ${after}`);
    }
  } else {
    const row = version.newRow ?? version.oldRow;
    lines.push(`    ${stringifyRowJson(row)}`);
    const jsonNulls = version.newRow === null ? version.oldRowJsonNulls : version.newRowJsonNulls;
    if (jsonNulls.length > 0) lines.push(`    ${jsonNullsLine(jsonNulls)}`);
  }
  return `${lines.join('\n')}\n`;
}

/**
 * A value of an UPDATE's line: its JSON, or `null (JSON)` for a jsonb JSON `null` literal,
 * which the row shows as `null`, as it shows SQL NULL.
 */
function valueText(
  row: Record<string, unknown> | null,
  jsonNulls: readonly string[],
  column: string,
): string {
  return jsonNulls.includes(column) ? JSON_NULL_MARK : stringifyRowJson(row?.[column]);
}

/** How the text output shows a jsonb value that is the JSON `null` literal. */
export const JSON_NULL_MARK = 'null (JSON)';

/**
 * The line under a whole row (and under `history --as-of`'s row) naming its columns that
 * are `null (JSON)`: the JSON `null` literal, not SQL NULL. Names JSON-quoted (they may
 * hold anything).
 */
export function jsonNullsLine(columns: readonly string[]): string {
  return `${JSON_NULL_MARK}: ${columns.map((column) => JSON.stringify(column)).join(', ')}`;
}

/** `  by alice (TICKET-7)`; the actor or the reason alone when only one is set. */
function formatContext(context: Version['context']): string {
  if (context === null) return '';
  const by = context.actor === null ? '' : `  by ${printable(context.actor)}`;
  const why = context.reason === null ? '' : ` (${printable(context.reason)})`;
  return by === '' && why === '' ? '  (context without actor or reason)' : `${by}${why}`;
}

export function formatSchemaChanges(changes: readonly SchemaChange[]): string {
  if (changes.length === 0) return 'no schema changes recorded for that table\n';
  return changes
    .map((change) => {
      const where =
        change.sourceLsn === null
          ? ''
          : change.commitTimestamp === null
            ? ` at or before LSN ${change.sourceLsn}`
            : `; first source change in the new shape: LSN ${change.sourceLsn}, committed ${change.commitTimestamp}`;
      return `${change.detectedAt}  ${change.change.padEnd(6)} ${what(change)}  (seen by ${change.detectedBy}${where})\n`;
    })
    .join('');
}

/** `partition schema.name BOUND`, or `before -> after` of a column. */
function what(change: SchemaChange): string {
  if ('partition' in change) {
    const { schema, name, bound } = change.partition;
    return `partition ${printable(`${schema}.${name}`)} ${bound === null ? '(bound not known)' : printable(bound)}`;
  }
  const column = (definition: SchemaColumn | null) =>
    definition === null ? '-' : `${definition.name} ${definition.type}`;
  return `${column(change.before)} -> ${column(change.after)}`;
}

/** The documented `--json` shape of a version in a listing that spans rows or tables. */
export function toListedJson(version: Version) {
  return { table: `${version.schema}.${version.table}`, key: version.key, ...toJson(version) };
}

/** Versions across rows or tables, one block per change, each headed by its table and key. */
export function formatListed(versions: readonly Version[], empty: string): string {
  if (versions.length === 0) return `${empty}\n`;
  return versions
    .map(
      (version) =>
        `${version.schema}.${version.table} ${stringifyRowJson(version.key)}\n${indent(formatVersion(version))}`,
    )
    .join('');
}

function indent(text: string): string {
  return text
    .split('\n')
    .map((line) => (line === '' ? line : `  ${line}`))
    .join('\n');
}

/**
 * The CSV columns, in order; key, rows, changed columns, context and the JSON-null lists
 * are JSON text (exact numbers). Columns added later come last (`context`, then the
 * lists), so readers of the columns before them are unaffected.
 */
export const CSV_COLUMNS = [
  'table',
  'key',
  'operation',
  'commit_timestamp',
  'transaction_id',
  'change_seq',
  'changed_columns',
  'old_row',
  'new_row',
  'context',
  'old_json_nulls',
  'new_json_nulls',
] as const;

/** One RFC 4180 field: quoted (quotes doubled) when it holds a comma, quote, CR or LF. */
export function csvField(value: string | null): string {
  if (value === null) return '';
  return /[",\r\n]/.test(value) ? `"${value.replaceAll('"', '""')}"` : value;
}

function json(value: unknown): string | null {
  return value === null || value === undefined ? null : stringifyRowJson(value);
}

/** A version's JSON-null list as an export writes it: JSON text, `[]` for none (as `--json`). */
export function jsonNullsField(columns: readonly string[]): string {
  return JSON.stringify(columns);
}

/** One version as a CSV record (without the line end). */
export function csvRecord(version: Version): string {
  const fields = [
    `${version.schema}.${version.table}`,
    json(version.key),
    version.operation,
    version.commitTimestamp,
    version.transactionId,
    version.changeSeq,
    json(version.changedColumns),
    json(version.oldRow),
    json(version.newRow),
    json(version.context),
    jsonNullsField(version.oldRowJsonNulls),
    jsonNullsField(version.newRowJsonNulls),
  ];
  return fields.map(csvField).join(',');
}

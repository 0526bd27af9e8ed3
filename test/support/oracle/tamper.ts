import type pg from 'pg';
import { quoteIdent, quoteQualified } from '../../../src/postgres/identifiers';
import {
  CHANGE_SEQ_COLUMN,
  HEADER_COLUMN_PREFIX,
  Indicator,
  OPERATION_INDICATOR_COLUMN,
  stagingTableName,
} from '../../../src/staging/header-columns';
import type { ComparedTable } from './expected-history';
import type { Tamper } from './workload';

/**
 * Edits the first live staging row (by key) of `table` that a change wrote (with
 * `loadedRow`: that the initial load wrote and nothing changed since) directly on the target, as an
 * insider with write access to staging would (#17 item 10): no change sequence, so the
 * capture path records nothing. `null-value` sets the first recorded value column that
 * is not NULL to NULL (falling back to `flag-deleted` when every one is): a json or
 * jsonb JSON null literal too, which history records apart from SQL NULL.
 * Returns what it did, or undefined when the table has no live staging row.
 */
export async function tamperWithStaging(
  target: pg.ClientBase,
  source: pg.ClientBase,
  auditSchema: string,
  table: ComparedTable,
  kind: Tamper['kind'],
  loadedRow = false,
): Promise<string | undefined> {
  const staging = quoteQualified(auditSchema, stagingTableName(table.table));
  const indicator = quoteIdent(OPERATION_INDICATOR_COLUMN.name);
  // The full load leaves the change sequence empty (as DMS does).
  const loaded = `coalesce(${quoteIdent(CHANGE_SEQ_COLUMN.name)}, '') = ''`;
  const { rows } = await target.query<{ ctid: string }>(
    `SELECT ctid::text FROM ${staging}
      WHERE ${indicator} IS DISTINCT FROM '${Indicator.deleted}' AND ${loadedRow ? '' : 'NOT '}${loaded}
      ORDER BY ${table.keyColumns.map(quoteIdent).join(', ')} LIMIT 1`,
  );
  const ctid = rows[0]?.ctid;
  if (ctid === undefined) return undefined;
  const where = `ctid = '${ctid}'::tid`;
  if (kind === 'delete') {
    await target.query(`DELETE FROM ${staging} WHERE ${where}`);
    return `deleted staging row ${ctid}`;
  }
  if (kind === 'null-value')
    for (const column of await recordedValueColumns(source, table)) {
      const edited = await target.query(
        `UPDATE ${staging} SET ${quoteIdent(column)} = NULL WHERE ${where} AND ${quoteIdent(column)} IS NOT NULL`,
      );
      if (edited.rowCount === 1) return `set ${column} to NULL in staging row ${ctid}`;
    }
  await target.query(`UPDATE ${staging} SET ${indicator} = '${Indicator.deleted}' WHERE ${where}`);
  return `flagged staging row ${ctid} deleted`;
}

/**
 * The source table's columns today, without key, ignored, generated (not recorded: README
 * "Generated columns") and header-named ones.
 */
async function recordedValueColumns(source: pg.ClientBase, table: ComparedTable) {
  const { rows } = await source.query<{ name: string }>(
    `SELECT attname::text AS name FROM pg_catalog.pg_attribute
      WHERE attrelid = $1::regclass AND attnum > 0 AND NOT attisdropped AND attgenerated = ''
      ORDER BY attnum`,
    [quoteQualified(table.schema, table.table)],
  );
  return rows
    .map((r) => r.name)
    .filter(
      (name) =>
        !table.keyColumns.includes(name) &&
        !(table.ignoreColumns ?? []).includes(name) &&
        !name.startsWith(HEADER_COLUMN_PREFIX),
    );
}

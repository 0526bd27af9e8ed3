import { sql, type Transaction } from 'kysely';
import { quoteIdent, quoteLiteral, quoteQualified } from '../postgres/identifiers';
import { HEADER_COLUMN_NAMES, stagingTableName } from '../staging/header-columns';
import { GENERATED_PLACEHOLDER_TYPE } from '../staging/generated-placeholders';
import { jsonArrayNeedsTextSql, rowDocumentColumns } from '../staging/row-document';
import { SourceTableError, type SourceColumn, type SourceTable } from './introspect';
import { isWideningTypeChange } from './type-change';

/** A column as the schema-change log records it. */
export interface ColumnDefinition {
  readonly name: string;
  /** `format_type` of the column (the staging type: enums and extension types are `text`). */
  readonly type: string;
  /** The source `attnum`; null where it is not known (installs from before the log). */
  readonly attnum: number | null;
}

/** Kinds of column change. */
export type SchemaChangeKind = 'ADD' | 'DROP' | 'RENAME' | 'RETYPE';

/** One column change migrate found on a source table and applied to its staging table. */
export interface DetectedSchemaChange {
  readonly schema: string;
  readonly table: string;
  readonly change: SchemaChangeKind;
  /** The column's name after the change (before it, for DROP). */
  readonly column: string;
  readonly before: ColumnDefinition | null;
  readonly after: ColumnDefinition | null;
  /**
   * ADD only: the source rows that existed then hold this value in the new column (SQL
   * text; null for SQL NULL), written by no change the stream carries. Staging's
   * existing rows get it too, without an audit version, and the log records it as
   * `existingRows` in the new definition (the value as history records it).
   */
  readonly existingRowsText?: string | null;
}

interface KnownColumn {
  readonly attnum: number;
  readonly name: string;
  readonly type: string;
  /**
   * A generated column then: in staging as a placeholder only (see
   * src/staging/generated-placeholders.ts), never logged.
   */
  readonly generated: boolean;
}

/**
 * Brings a staging table's columns in line with its source table, and logs each change
 * in `<auditSchema>.schema_change`: added columns are added; dropped ones dropped (their
 * values are in the audit log already, and a stale value must not ride along into later
 * versions); renamed ones renamed (told from drop + add by the source `attnum`); widened
 * types widened in place. A type change that would alter values already in staging is
 * refused with the remedy. Generated columns' placeholders follow the source's generated
 * columns the same way, unlogged (see diffPlaceholders).
 * @param created the staging table was created by this run (nothing to compare with)
 * @param sourceLsn the source WAL position read after introspection: the changes
 *   happened at or before it
 */
export async function syncColumns(
  trx: Transaction<unknown>,
  auditSchema: string,
  table: SourceTable,
  created: boolean,
  sourceLsn: string | undefined,
): Promise<DetectedSchemaChange[]> {
  const staging = stagingTableName(table.table);
  const stagingColumns = await readStagingColumns(trx, auditSchema, staging);
  const known = await readKnownColumns(trx, auditSchema, table);
  // Staging's placeholders of generated columns: the ones migrate saw last time that
  // staging holds (none on an install from before placeholders).
  const placeholders = known.filter(
    (column) => column.generated && stagingColumns.has(column.name),
  );
  for (const placeholder of placeholders) stagingColumns.delete(placeholder.name);
  const changes = created
    ? []
    : known.length === 0
      ? diffByName(table, stagingColumns)
      : diffByAttnum(
          table,
          known.filter((column) => !column.generated),
          stagingColumns,
          new Set(known.filter((column) => column.generated).map((column) => column.attnum)),
        );
  assertApplicable(auditSchema, table, changes);
  const placeholderChanges = created ? [] : diffPlaceholders(table, placeholders);
  const lastAuditId =
    changes.length + placeholderChanges.length > 0
      ? await lockStaging(trx, auditSchema, quoteQualified(auditSchema, staging))
      : null;
  await applyToStaging(trx, quoteQualified(auditSchema, staging), [
    ...changes,
    ...placeholderChanges,
  ]);
  await saveKnownColumns(trx, auditSchema, table);
  await logChanges(trx, auditSchema, table, changes, sourceLsn, lastAuditId);
  return changes;
}

/**
 * Takes the staging table's exclusive lock (no version of it is written until this
 * transaction commits) and returns the newest audit id: every version of the table up to
 * it has the shape from before this run's changes, every later one the shape after them.
 */
async function lockStaging(
  trx: Transaction<unknown>,
  auditSchema: string,
  staging: string,
): Promise<string | null> {
  await sql.raw(`LOCK TABLE ${staging} IN ACCESS EXCLUSIVE MODE`).execute(trx);
  // Ordered by the bigint (as text, '9' would sort after '10').
  const { rows } = await sql<{ id: string }>`
    SELECT l.id::text AS id FROM ${sql.id(auditSchema, 'audit_log')} AS l
    ORDER BY l.id DESC LIMIT 1`.execute(trx);
  return rows[0]?.id ?? '0';
}

async function readStagingColumns(
  trx: Transaction<unknown>,
  auditSchema: string,
  staging: string,
): Promise<Map<string, string>> {
  const { rows } = await sql<{ name: string; type: string }>`
    SELECT a.attname AS name, format_type(a.atttypid, a.atttypmod) AS type
    FROM pg_catalog.pg_attribute a
    WHERE a.attrelid = to_regclass(${quoteQualified(auditSchema, staging)})
      AND a.attnum > 0 AND NOT a.attisdropped
    ORDER BY a.attnum`.execute(trx);
  return new Map(
    rows
      .filter((row) => !HEADER_COLUMN_NAMES.includes(row.name))
      .map((row) => [row.name, row.type]),
  );
}

async function readKnownColumns(
  trx: Transaction<unknown>,
  auditSchema: string,
  table: SourceTable,
): Promise<KnownColumn[]> {
  const { rows } = await sql<KnownColumn>`
    SELECT attnum, name, type, generated FROM ${sql.id(auditSchema, 'audited_column')}
    WHERE source_schema = ${table.schema} AND source_table = ${table.table}
    ORDER BY attnum`.execute(trx);
  return rows;
}

const definition = (column: { name: string; type: string; attnum?: number | null }) => ({
  name: column.name,
  type: column.type,
  attnum: column.attnum ?? null,
});

/**
 * A column added on the source, with what its existing rows hold. A default PostgreSQL
 * computed per row (or set after the ADD) left values no change stream carries: staging
 * and history cannot know them, so the table is refused with the remedy rather than
 * given NULLs the source does not hold.
 */
function added(table: SourceTable, column: SourceColumn): DetectedSchemaChange {
  const ignored = table.ignoreColumns.includes(column.name);
  if (column.existingRows === 'unknown' && !ignored) {
    throw new SourceTableError(
      `source column ${table.schema}.${table.table}.${column.name} was added with a default ` +
        `that PostgreSQL computed row by row (a volatile default such as random(), ` +
        `clock_timestamp() or a sequence), or got its default after it was added: the values ` +
        `the existing rows hold were written by no change that DMS or the engine sees, so ` +
        `staging and history cannot know them. Remove the table from the config, run ` +
        `migrate --drop-staging, then add it back and run migrate: it is loaded again (one ` +
        `SNAPSHOT version per row, with the new column) and its history continues`,
    );
  }
  const text = column.existingRows === 'unknown' ? null : (column.existingRows?.text ?? null);
  return {
    schema: table.schema,
    table: table.table,
    change: 'ADD',
    column: column.name,
    before: null,
    after: definition(column),
    ...(ignored ? {} : { existingRowsText: text }),
  };
}

/**
 * A generated column made plain (`ALTER COLUMN ... DROP EXPRESSION`) looks like a column
 * added without a default, but each row holds the value the source computed for it, and
 * no change carried it: staging and history would have NULL there.
 */
function madePlain(table: SourceTable, column: SourceColumn): SourceTableError {
  return new SourceTableError(
    `source column ${table.schema}.${table.table}.${column.name} was a generated column and ` +
      `is a plain one now (ALTER COLUMN ... DROP EXPRESSION): the values the rows hold in it ` +
      `were computed by the source and written by no change that DMS or the engine sees, so ` +
      `staging and history cannot know them. Remove the table from the config, run migrate ` +
      `--drop-staging, then add it back and run migrate: it is reloaded (a SNAPSHOT version ` +
      `for each row, with the column) and its history continues`,
  );
}

/** Without a baseline (an install from before the log): by name, as staging shows it. */
function diffByName(table: SourceTable, staging: Map<string, string>): DetectedSchemaChange[] {
  const of = { schema: table.schema, table: table.table };
  const changes: DetectedSchemaChange[] = [];
  const sourceNames = new Set(table.columns.map((column) => column.name));
  for (const [name, type] of staging) {
    if (!sourceNames.has(name)) {
      changes.push({
        ...of,
        change: 'DROP',
        column: name,
        before: { name, type, attnum: null },
        after: null,
      });
    }
  }
  for (const column of table.columns) {
    const stagingType = staging.get(column.name);
    if (stagingType === undefined) {
      changes.push(added(table, column));
    } else if (stagingType !== column.type) {
      changes.push({
        ...of,
        change: 'RETYPE',
        column: column.name,
        before: { ...definition(column), type: stagingType },
        after: definition(column),
      });
    }
  }
  return changes;
}

/**
 * With the columns migrate saw last time, matched by attnum. A column that was generated
 * then (`wasGenerated`, by attnum) and is plain now is refused: see madePlain.
 */
function diffByAttnum(
  table: SourceTable,
  known: readonly KnownColumn[],
  staging: Map<string, string>,
  wasGenerated: ReadonlySet<number>,
): DetectedSchemaChange[] {
  const of = { schema: table.schema, table: table.table };
  const changes: DetectedSchemaChange[] = [];
  const source = new Map(table.columns.map((column) => [column.attnum, column]));
  for (const column of known) {
    if (source.has(column.attnum)) continue;
    const type = staging.get(column.name) ?? column.type;
    changes.push({
      ...of,
      change: 'DROP',
      column: column.name,
      before: definition({ ...column, type }),
      after: null,
    });
  }
  const previous = new Map(known.map((column) => [column.attnum, column]));
  for (const column of table.columns) {
    const before = previous.get(column.attnum);
    const stagingType = before === undefined ? undefined : staging.get(before.name);
    if (wasGenerated.has(column.attnum)) throw madePlain(table, column);
    if (before === undefined || stagingType === undefined) {
      changes.push(added(table, column));
      continue;
    }
    if (before.name !== column.name) {
      changes.push({
        ...of,
        change: 'RENAME',
        column: column.name,
        before: definition({ ...before, type: stagingType }),
        after: definition({ ...column, type: stagingType }),
      });
    }
    if (stagingType !== column.type) {
      changes.push({
        ...of,
        change: 'RETYPE',
        column: column.name,
        before: definition({ ...column, type: stagingType }),
        after: definition(column),
      });
    }
  }
  return changes;
}

/**
 * The changes that bring staging's generated-column placeholders in line with the
 * source's generated columns, matched by attnum: one added, renamed or dropped on the
 * source is added (`text`, NULL in existing rows), renamed or dropped in staging. Never
 * logged, never checked for type: a placeholder's value is not history.
 */
function diffPlaceholders(
  table: SourceTable,
  placeholders: readonly KnownColumn[],
): DetectedSchemaChange[] {
  const of = { schema: table.schema, table: table.table };
  const column = (name: string, attnum: number) =>
    definition({ name, type: GENERATED_PLACEHOLDER_TYPE, attnum });
  const source = new Map(table.generatedColumns.map((c) => [c.attnum, c]));
  const previous = new Map(placeholders.map((c) => [c.attnum, c]));
  const changes: DetectedSchemaChange[] = [];
  for (const before of placeholders) {
    const after = source.get(before.attnum);
    if (after === undefined) {
      changes.push({
        ...of,
        change: 'DROP',
        column: before.name,
        before: column(before.name, before.attnum),
        after: null,
      });
    } else if (after.name !== before.name) {
      changes.push({
        ...of,
        change: 'RENAME',
        column: after.name,
        before: column(before.name, before.attnum),
        after: column(after.name, after.attnum),
      });
    }
  }
  for (const after of table.generatedColumns) {
    if (previous.has(after.attnum)) continue;
    changes.push({
      ...of,
      change: 'ADD',
      column: after.name,
      before: null,
      after: column(after.name, after.attnum),
    });
  }
  return changes;
}

function assertApplicable(
  auditSchema: string,
  table: SourceTable,
  changes: readonly DetectedSchemaChange[],
): void {
  for (const change of changes) {
    if (change.change !== 'RETYPE' || change.before === null || change.after === null) continue;
    if (isWideningTypeChange(change.before.type, change.after.type)) continue;
    const staging = quoteQualified(auditSchema, stagingTableName(table.table));
    throw new SourceTableError(
      `source column ${table.schema}.${table.table}.${change.column} changed type from ` +
        `${change.before.type} to ${change.after.type}; staging cannot follow in place without ` +
        `changing values it holds (only widening is applied: longer varchar, more numeric ` +
        `digits, larger integers). Either alter ${staging} column ${quoteIdent(change.column)} ` +
        `to ${change.after.type} yourself if every value there converts exactly, then run ` +
        `migrate again; or remove the table from the config, run migrate --drop-staging, and ` +
        `add it back (it is loaded again; its history continues)`,
    );
  }
}

async function applyToStaging(
  trx: Transaction<unknown>,
  staging: string,
  changes: readonly DetectedSchemaChange[],
): Promise<void> {
  const alter = (action: string) => sql.raw(`ALTER TABLE ${staging} ${action}`).execute(trx);
  for (const change of changes) {
    if (change.change === 'DROP') await alter(`DROP COLUMN IF EXISTS ${quoteIdent(change.column)}`);
  }
  // Renames in two steps, so that swapped names (a -> b, b -> a) do not collide.
  const renames = changes.filter((change) => change.change === 'RENAME');
  for (const [index, change] of renames.entries()) {
    await alter(
      `RENAME COLUMN ${quoteIdent(change.before?.name ?? '')} TO ${quoteIdent(`audit_trail_rename_${index}`)}`,
    );
  }
  for (const [index, change] of renames.entries()) {
    await alter(
      `RENAME COLUMN ${quoteIdent(`audit_trail_rename_${index}`)} TO ${quoteIdent(change.column)}`,
    );
  }
  for (const change of changes) {
    if (change.change === 'ADD') {
      const column = quoteIdent(change.column);
      const type = change.after?.type ?? 'text';
      if (change.existingRowsText === undefined || change.existingRowsText === null) {
        await alter(`ADD COLUMN ${column} ${type}`);
      } else {
        // As on the source: the existing rows get the value, and no row trigger fires
        // (they were not changed; the schema-change log says what they hold).
        await alter(
          `ADD COLUMN ${column} ${type} DEFAULT ${quoteLiteral(change.existingRowsText)}::${type}`,
        );
        await alter(`ALTER COLUMN ${column} DROP DEFAULT`);
      }
    }
    if (change.change === 'RETYPE') {
      const type = change.after?.type ?? 'text';
      await alter(
        `ALTER COLUMN ${quoteIdent(change.column)} TYPE ${type} USING ${quoteIdent(change.column)}::${type}`,
      );
    }
  }
}

async function saveKnownColumns(
  trx: Transaction<unknown>,
  auditSchema: string,
  table: SourceTable,
): Promise<void> {
  const registry = sql.id(auditSchema, 'audited_column');
  await sql`DELETE FROM ${registry} WHERE source_schema = ${table.schema} AND source_table = ${table.table}`.execute(
    trx,
  );
  // A generated column's type is of no use (never compared): its attnum is what counts.
  const columns = [
    ...table.columns.map((column) => ({ ...column, generated: false })),
    ...table.generatedColumns.map((column) => ({ ...column, type: '', generated: true })),
  ];
  await sql`
    INSERT INTO ${registry} (source_schema, source_table, attnum, name, type, generated)
    SELECT ${table.schema}, ${table.table}, c.attnum, c.name, c.type, c.generated
    FROM unnest(${columns.map((column) => column.attnum)}::int[],
                ${columns.map((column) => column.name)}::text[],
                ${columns.map((column) => column.type)}::text[],
                ${columns.map((column) => column.generated)}::boolean[])
         AS c(attnum, name, type, generated)`.execute(trx);
}

async function logChanges(
  trx: Transaction<unknown>,
  auditSchema: string,
  table: SourceTable,
  changes: readonly DetectedSchemaChange[],
  sourceLsn: string | undefined,
  lastAuditId: string | null,
): Promise<void> {
  for (const change of changes) {
    const existing =
      change.existingRowsText === undefined
        ? null
        : await existingRowsDocument(trx, auditSchema, table, change);
    const existingRows = existing?.value ?? null;
    await sql`
      INSERT INTO ${sql.id(auditSchema, 'schema_change')}
        (source_schema, source_table, change, column_name, old_definition, new_definition,
         source_lsn, detected_by, last_audit_id)
      VALUES (${change.schema}, ${change.table}, ${change.change}, ${change.column},
              ${change.before === null ? null : JSON.stringify(change.before)}::jsonb,
              ${change.after === null ? null : JSON.stringify(change.after)}::jsonb
                || CASE WHEN ${existingRows}::jsonb IS NULL THEN '{}'::jsonb
                        ELSE jsonb_build_object('existingRows', ${existingRows}::jsonb) END
                || CASE WHEN ${existing?.jsonNull === true} THEN '{"existingRowsJsonNull": true}'::jsonb
                        ELSE '{}'::jsonb END,
              ${sourceLsn ?? null}::pg_lsn, 'migrate', ${lastAuditId}::bigint)`.execute(trx);
  }
}

/**
 * The value an added column holds in the rows that existed before it, as history
 * records values (the capture trigger's exact_document: json text, float -0 kept; an
 * array whose lower bound is not 1, or a json[] / jsonb[] one with a JSON null or array
 * element, as its text, see bounded_arrays), as
 * jsonb text: `null` for SQL NULL; `jsonNull` when that `null` is a jsonb column's JSON
 * null literal (logged as `existingRowsJsonNull`, which verify reads as the capture's
 * `new_json_nulls` would have named the column).
 */
async function existingRowsDocument(
  trx: Transaction<unknown>,
  auditSchema: string,
  table: SourceTable,
  change: DetectedSchemaChange,
): Promise<{ value: string; jsonNull: boolean }> {
  if (change.existingRowsText === null || change.existingRowsText === undefined)
    return { value: 'null', jsonNull: false };
  const exact = rowDocumentColumns(table);
  const only = (names: readonly string[]) => names.filter((name) => name === change.column);
  const type = change.after?.type ?? 'text';
  // A json[] or jsonb[] value that JSON cannot keep: its text (bounded_arrays). Only for
  // such a column, as the cast to text[] is not defined for every type.
  const jsonElements =
    only(exact.jsonArray).length > 0
      ? sql`WHEN ${sql.raw(jsonArrayNeedsTextSql(`r.${quoteIdent(change.column)}`))} THEN to_jsonb(r.${sql.id(change.column)}::text)`
      : sql``;
  const { rows } = await sql<{ value: string; json_null: boolean }>`
    SELECT (CASE WHEN ${only(exact.array).length > 0} AND r.${sql.id(change.column)}::text LIKE '[%'
                 THEN to_jsonb(r.${sql.id(change.column)}::text)
                 ${jsonElements}
                 -- json's own text where row_to_json's reading of it is not (the JSON null
                 -- literal, whitespace around the value: json_null_texts, json_spaced_texts)
                 WHEN ${only(exact.json).length > 0 && !type.endsWith('[]')}
                      AND (r.${sql.id(change.column)}::text = 'null'
                           OR r.${sql.id(change.column)}::text ~ '^[ \\t\\n\\r]|[ \\t\\n\\r]$')
                 THEN to_jsonb(r.${sql.id(change.column)}::text)
                 ELSE ${sql.id(auditSchema, 'exact_document')}(to_jsonb(r), row_to_json(r),
                        ${only(exact.json)}::text[], ${only(exact.float)}::text[]) -> ${change.column} END
           )::text AS value,
           ${type === 'jsonb'} AND r.${sql.id(change.column)}::text = 'null' AS json_null
    FROM (SELECT ${change.existingRowsText}::text::${sql.raw(type)} AS ${sql.id(change.column)}) AS r`.execute(
    trx,
  );
  return { value: rows[0]?.value ?? 'null', jsonNull: rows[0]?.json_null === true };
}

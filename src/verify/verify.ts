import pg from 'pg';
import type { AuditTrailConfig } from '../config';
import { AuditTrailError } from '../errors';
import { requireChangeHistory } from '../config/change-history';
import { LOADED_PARTITION_TABLE } from '../engine/partition-loading';
import { introspectSourceTables, type SourceTable } from '../migrate/introspect';
import { connectClient, createKysely } from '../postgres/connect';
import { quoteLiteral, quoteQualified } from '../postgres/identifiers';
import {
  HEADER_COLUMN_NAMES,
  HEADER_COLUMN_PREFIX,
  Indicator,
  OPERATION_INDICATOR_COLUMN,
  stagingTableName,
} from '../staging/header-columns';
import { parseRowJson, stringifyRowJson } from '../history/row-json';
import { KeyedRowCursor, mergeByKey, type KeyedRow } from './keyed-rows';
import { rowDocumentColumns, sourceRowDocumentSql } from '../staging/row-document';
import { captureTriggerProblems } from './capture-triggers';
import {
  sourceForeignDependencies,
  targetForeignDependencies,
  type ForeignDependency,
} from './foreign-dependencies';
import {
  currentShapeListSql,
  currentShapeSql,
  shapeChangesSql,
  type ShapeChange,
} from '../history/version-shape';
import { noProgress, type ProgressReporter, type ProgressTask } from '../support/progress';
import { reloadState, type ReloadState } from '../staging/reload-baseline';

/** Options for {@link verifyAuditTrail}. */
export interface VerifyOptions {
  /** The audited tables and the audit schema. */
  readonly config: AuditTrailConfig;
  /** Source database URL. */
  readonly sourceUrl: string;
  /** Target database URL (holds the audit log). */
  readonly targetUrl: string;
  /** Most mismatches listed per table (all are counted). @default 20 */
  readonly maxListedPerTable?: number;
  /**
   * Where each table's comparison reports how many rows it has checked (a bar per
   * table on the CLI's terminal). Given one, verify also counts each table's source
   * and staging rows first, in the same snapshot, for the totals. @default none
   */
  readonly progress?: ProgressReporter;
}

/** One key whose current source row and newest audit version disagree. */
export interface VerifyMismatch {
  /** `schema.table` */
  readonly table: string;
  /** Primary key values, as JSON. */
  readonly key: Record<string, unknown>;
  /**
   * `missing-in-audit`: a source row with no live audit version; `missing-in-source`:
   * an audit version (not a delete) for a key the source no longer has; `different`:
   * both exist but the values differ; `staging-differs`: the staging row (what DMS
   * applied) and the newest audit version of its key disagree — a staging row edited,
   * flagged deleted or removed without the change reaching the audit log (the next
   * version would record the edited row as its old row).
   */
  readonly kind: 'missing-in-audit' | 'missing-in-source' | 'different' | 'staging-differs';
  /** Columns whose values differ (`different`, and `staging-differs` when both rows are live). */
  readonly columns?: readonly string[];
  readonly sourceRow?: Record<string, unknown>;
  /** The newest audit version's row (absent when it is a delete or there is none). */
  readonly auditRow?: Record<string, unknown>;
  /** The staging row (`staging-differs`; absent when flagged deleted or missing). */
  readonly stagingRow?: Record<string, unknown>;
  /**
   * The jsonb columns of {@link sourceRow}, {@link auditRow} or {@link stagingRow} whose
   * value is the JSON `null` literal (the row shows it as null, as it shows SQL NULL), by
   * name; absent when the row has none. A column going between the two is named in
   * {@link columns} like any other change.
   */
  readonly sourceJsonNulls?: readonly string[];
  readonly auditJsonNulls?: readonly string[];
  readonly stagingJsonNulls?: readonly string[];
  /**
   * `missing-in-audit` in a partitioned table: the leaf partition (`schema.table`) that
   * holds the row. Rows a table held when it was attached as a partition (or rows
   * written to a partition before the DMS mapping selected it) are no change any
   * pipeline sees, so they show up here.
   */
  readonly partition?: string;
  /**
   * `missing-in-source` in a partitioned table: true when the row left the table with
   * `partition`, a leaf partition the local engine loaded and later found detached
   * (DETACH PARTITION: no change in the WAL, so history keeps the row's last version).
   * Named while the detached table still holds the key, in verify's snapshot.
   */
  readonly detached?: true;
}

/** Per-table counts. */
export interface VerifyTableReport {
  readonly table: string;
  readonly sourceRows: number;
  /** Keys whose newest audit version is not a delete. */
  readonly auditRows: number;
  /** Staging rows not flagged deleted. */
  readonly stagingRows: number;
  readonly mismatches: number;
  /**
   * A table added back to the config whose reload has not ended (a finding: the report
   * is not ok): its rows that no load has copied still read as live. `copiedRows: 0`
   * means no load has copied anything (a DMS task running CDC only): no change ends
   * such a reload, and `audit-trail reload finish` ends it only with `--all-rows-gone`.
   */
  readonly reloadPending?: ReloadState;
  /**
   * The staging table's capture triggers that are missing, disabled or not ENABLE ALWAYS
   * (a finding: the report is not ok), one line each with what puts it back; absent
   * when all are as installed. Changes applied meanwhile were not recorded: compare
   * the source (this report's mismatches) once they are back.
   */
  readonly captureTriggers?: readonly string[];
}

/** The result of a verification. */
export interface VerifyReport {
  /** True when every table matches exactly. */
  readonly ok: boolean;
  readonly tables: readonly VerifyTableReport[];
  /** The listed mismatches (at most `maxListedPerTable` per table). */
  readonly mismatches: readonly VerifyMismatch[];
  /**
   * Kit objects built on a function, operator, type or collation outside pg_catalog and
   * the kit (a finding: the report is not ok), each with the statements that rebuild it;
   * absent when there is none. Such code runs inside the kit's statements: an index of
   * the audit log built on a lookalike planted in `public` runs it in every audit insert.
   */
  readonly foreignDependencies?: readonly (ForeignDependency & {
    readonly side: 'source' | 'target';
  })[];
}

/**
 * Compares every current source row of every audited table with the newest audit
 * version of its key, and finds keys present on one side only. Both sides build the
 * row as jsonb the same way the audit trigger does (time zone UTC, shortest exact
 * floats, ignored columns removed) and are compared as text, so any difference in any
 * digit counts. Both sides are streamed in key order and merged: memory stays bounded.
 */
export async function verifyAuditTrail(options: VerifyOptions): Promise<VerifyReport> {
  requireChangeHistory(options.config, 'verify');
  const maxListed = options.maxListedPerTable ?? 20;
  const [source, target] = await connectBoth(options.sourceUrl, options.targetUrl);
  try {
    const tables: VerifyTableReport[] = [];
    const mismatches: VerifyMismatch[] = [];
    const sourceTables = await introspectSource(options);
    for (const table of sourceTables) {
      const name = `${table.schema}.${table.table}`;
      const { ignoreColumns, generatedPlaceholders } = await auditedTable(
        target,
        options.config.auditSchema,
        name,
        table,
      );
      const sourceRows = new KeyedRowCursor(
        source,
        `SELECT q.key, q.row, q.json_nulls FROM (${sourceRowDocumentSql(
          {
            ...table,
            ignoreColumns: [...ignoreColumns, ...(await generatedColumns(source, table))],
          },
          quoteQualified(table.schema, table.table),
        )}) AS q ORDER BY q.key COLLATE pg_catalog."C"`,
        [],
      );
      const shape = await shapeChanges(target, options.config.auditSchema, table);
      const auditRows = new KeyedRowCursor(
        target,
        `SELECT row_key::text AS key, new_row::text AS row, pg_catalog.to_jsonb(new_json_nulls)::text AS json_nulls
           FROM (${newestVersionsSql(options.config.auditSchema, shape)}) AS newest
          WHERE operation <> 'DELETE'
          ORDER BY row_key::text COLLATE pg_catalog."C"`,
        [table.schema, table.table],
      );
      let listed = 0;
      const list = async (mismatch: VerifyMismatch, rows?: [KeyedRow, KeyedRow]): Promise<void> => {
        if (listed++ >= maxListed) return;
        const columns = rows ? await differingColumns(target, ...rows) : undefined;
        mismatches.push(columns ? { ...mismatch, columns } : mismatch);
      };
      const listedBefore = mismatches.length;
      const stagingTable = quoteQualified(
        options.config.auditSchema,
        stagingTableName(table.table),
      );
      const counts = await withProgress(
        options.progress,
        `verify ${name}`,
        () => countRows(source, quoteQualified(table.schema, table.table)),
        (task) => compare(name, sourceRows, auditRows, task, list),
      );
      await namePartitions(source, table, mismatches, listedBefore);
      await nameDetachedPartitions(
        { source, target, auditSchema: options.config.auditSchema },
        table,
        mismatches,
        listedBefore,
      );
      const staging = await withProgress(
        options.progress,
        `verify ${name} staging`,
        () => countRows(target, stagingTable),
        (task) =>
          compareStaging(
            name,
            stagingReader(target, options.config.auditSchema, {
              ...table,
              ignoreColumns: [...ignoreColumns, ...generatedPlaceholders],
            }),
            newestVersionReader(target, options.config.auditSchema, table, shape),
            task,
            list,
          ),
      );
      const reloadPending = await reloadState(target, options.config.auditSchema, table);
      const captureTriggers = await captureTriggerProblems(
        target,
        options.config.auditSchema,
        stagingTableName(table.table),
      );
      tables.push({
        table: name,
        sourceRows: counts.sourceRows,
        auditRows: counts.auditRows,
        stagingRows: staging.stagingRows,
        mismatches: counts.mismatches + staging.mismatches,
        ...(reloadPending && { reloadPending }),
        ...(captureTriggers.length > 0 && { captureTriggers }),
      });
    }
    const foreignDependencies = [
      ...(
        await targetForeignDependencies(target, options.config.auditSchema, {
          inTransaction: true,
        })
      ).map((finding) => ({ side: 'target' as const, ...finding })),
      ...(await sourceForeignDependencies(source, options.config, { inTransaction: true })).map(
        (finding) => ({ side: 'source' as const, ...finding }),
      ),
    ];
    return {
      ok:
        foreignDependencies.length === 0 &&
        tables.every(
          (table) => table.mismatches === 0 && !table.reloadPending && !table.captureTriggers,
        ),
      tables,
      mismatches,
      ...(foreignDependencies.length > 0 && { foreignDependencies }),
    };
  } finally {
    await Promise.all([source.end(), target.end()]);
  }
}

/**
 * Adds the leaf partition to each listed `missing-in-audit` row of a partitioned table
 * (from `mismatches[from]` on), so the report can say where the rows came from. One
 * scan of the table, only when such rows were found; the key is rendered by the same
 * SQL as the comparison's, over the rows with their partition in a header-prefixed
 * column (no source column may carry that prefix, see migrate).
 */
async function namePartitions(
  source: pg.Client,
  table: SourceTable,
  mismatches: VerifyMismatch[],
  from: number,
): Promise<void> {
  const missing = listedOfKind(mismatches, 'missing-in-audit', from);
  if (missing.length === 0) return;
  const qualified = quoteQualified(table.schema, table.table);
  const { rows: kind } = await source.query<{ partitioned: boolean }>(
    `SELECT relkind = 'p' AS partitioned FROM pg_catalog.pg_class
      WHERE oid OPERATOR(pg_catalog.=) pg_catalog.to_regclass($1)`,
    [qualified],
  );
  if (!kind[0]?.partitioned) return;
  const withPartition = `(SELECT pg_catalog.format('%I.%I', n.nspname, c.relname) AS ${PARTITION_COLUMN}, t.*
      FROM ${qualified} AS t
      JOIN pg_catalog.pg_class AS c ON c.oid = t.tableoid
      JOIN pg_catalog.pg_namespace AS n ON n.oid = c.relnamespace)`;
  const keys = missing.map(({ mismatch }) => stringifyRowJson(mismatch.key));
  const { rows } = await source.query<{ key: string; partition: string }>(
    `SELECT q.key, q.row::jsonb ->> '${PARTITION_COLUMN}' AS partition
       FROM (${sourceRowDocumentSql(table, withPartition)}) AS q
      WHERE q.key::jsonb = ANY($1::jsonb[])`,
    [keys],
  );
  const byKey = new Map(rows.map((row) => [JSON.stringify(parseRowJson(row.key)), row.partition]));
  for (const { mismatch, index } of missing) {
    const partition = byKey.get(JSON.stringify(mismatch.key));
    if (partition !== undefined) mismatches[index] = { ...mismatch, partition };
  }
}

/**
 * Adds, to each listed `missing-in-source` row of a partitioned table (from
 * `mismatches[from]` on), the detached partition it left with: a leaf partition an
 * engine slot loaded (`cdc_engine_loaded_partition`) that is no longer under the table
 * and, in verify's snapshot, still holds the key. Only when such rows were found; a
 * target without that record, or a detached table whose columns changed since, names
 * nothing (read under a savepoint: verify's snapshot transaction stays usable).
 */
async function nameDetachedPartitions(
  { source, target, auditSchema }: { source: pg.Client; target: pg.Client; auditSchema: string },
  table: SourceTable,
  mismatches: VerifyMismatch[],
  from: number,
): Promise<void> {
  const missing = listedOfKind(mismatches, 'missing-in-source', from);
  if (missing.length === 0) return;
  const record = quoteQualified(auditSchema, LOADED_PARTITION_TABLE);
  const { rows: readable } = await target.query<{ ok: boolean }>(
    `SELECT coalesce(pg_catalog.has_table_privilege(pg_catalog.to_regclass($1), 'SELECT'), false) AS ok`,
    [record],
  );
  if (!readable[0]?.ok) return;
  const { rows: formerLeaves } = await target.query<{ schema: string; name: string }>(
    `SELECT DISTINCT partition_schema AS schema, partition_name AS name FROM ${record}
      WHERE source_schema = $1 AND source_table = $2 ORDER BY 1, 2`,
    [table.schema, table.table],
  );
  const keys = missing.map(({ mismatch }) => stringifyRowJson(mismatch.key));
  const byKey = new Map<string, string>();
  for (const leaf of formerLeaves) {
    const qualified = quoteQualified(leaf.schema, leaf.name);
    await source.query('SAVEPOINT detached_partition');
    try {
      const { rows } = await source.query<{ key: string }>(
        `SELECT q.key FROM (${sourceRowDocumentSql(table, qualified)}) AS q
          WHERE $2::regclass::pg_catalog.oid NOT IN (SELECT relid::pg_catalog.oid FROM pg_catalog.pg_partition_tree($3::regclass))
            AND q.key::jsonb = ANY($1::jsonb[])`,
        [keys, qualified, quoteQualified(table.schema, table.table)],
      );
      for (const row of rows)
        byKey.set(JSON.stringify(parseRowJson(row.key)), `${leaf.schema}.${leaf.name}`);
      await source.query('RELEASE SAVEPOINT detached_partition');
    } catch {
      // Gone, or not readable as this table's rows any more: nothing to name.
      await source.query('ROLLBACK TO SAVEPOINT detached_partition');
    }
  }
  for (const { mismatch, index } of missing) {
    const partition = byKey.get(JSON.stringify(mismatch.key));
    if (partition !== undefined) mismatches[index] = { ...mismatch, partition, detached: true };
  }
}

/**
 * The listed mismatches of one kind from `mismatches[from]` on (those one table
 * added), each with its index so that the caller can amend it in place.
 */
function listedOfKind(
  mismatches: readonly VerifyMismatch[],
  kind: VerifyMismatch['kind'],
  from: number,
): { mismatch: VerifyMismatch; index: number }[] {
  return mismatches
    .map((mismatch, index) => ({ mismatch, index }))
    .filter(({ mismatch, index }) => index >= from && mismatch.kind === kind);
}

/** Carries a row's partition through the row document (the header prefix: no user column has it). */
const PARTITION_COLUMN = `${HEADER_COLUMN_PREFIX}partition`;

/** The audited tables as the source has them now (types decide how rows are rendered). */
async function introspectSource(options: VerifyOptions): Promise<SourceTable[]> {
  const source = createKysely<unknown>(options.sourceUrl, { max: 1, label: 'source' });
  try {
    return await introspectSourceTables(source, options.config);
  } finally {
    await source.destroy();
  }
}

/**
 * Opens the source and the target together. If either fails, the other is closed
 * before the error is thrown: a read-only repeatable-read transaction must never be
 * left open on a production source because the target was unreachable.
 */
async function connectBoth(sourceUrl: string, targetUrl: string): Promise<[pg.Client, pg.Client]> {
  const [source, target] = await Promise.allSettled([
    connect(sourceUrl, 'source'),
    connect(targetUrl, 'target'),
  ]);
  if (source.status === 'fulfilled' && target.status === 'fulfilled')
    return [source.value, target.value];
  await Promise.all(
    [source, target].map((side) =>
      side.status === 'fulfilled' ? side.value.end().catch(() => undefined) : undefined,
    ),
  );
  throw source.status === 'rejected' ? source.reason : (target as PromiseRejectedResult).reason;
}

async function connect(url: string, label: string): Promise<pg.Client> {
  const client = await connectClient(url, 'audit-trail-verify', label);
  try {
    // The same settings the audit trigger pins, so both sides render values identically.
    await client.query("SET TIME ZONE 'UTC'; SET extra_float_digits = 1");
    await client.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
    return client;
  } catch (error) {
    await client.end().catch(() => undefined);
    throw error;
  }
}

/**
 * Generated columns of a source table: pgoutput does not send them (before PostgreSQL
 * 18), so history leaves them out (staging holds only placeholders), and so does the
 * comparison.
 */
async function generatedColumns(
  source: pg.Client,
  table: { schema: string; table: string },
): Promise<string[]> {
  const { rows } = await source.query<{ name: string }>(
    `SELECT attname AS name FROM pg_catalog.pg_attribute
      WHERE attrelid OPERATOR(pg_catalog.=) pg_catalog.to_regclass($1) AND attnum > 0 AND NOT attisdropped AND attgenerated <> ''`,
    [quoteQualified(table.schema, table.table)],
  );
  return rows.map((row) => row.name);
}

async function auditedTable(
  target: pg.Client,
  auditSchema: string,
  name: string,
  table: { schema: string; table: string; ignoreColumns: readonly string[] },
): Promise<{ ignoreColumns: string[]; generatedPlaceholders: string[] }> {
  const { rows } = await target.query<{
    key_columns: string[];
    ignore_columns: string[];
    generated_columns: string[];
  }>(
    `SELECT key_columns, ignore_columns, generated_columns
       FROM ${quoteQualified(auditSchema, 'audited_table')}
      WHERE source_schema = $1 AND source_table = $2`,
    [table.schema, table.table],
  );
  const row = rows[0];
  if (!row)
    throw new AuditTrailError(`${name} is not installed on the target`, {
      code: 'NOT_MIGRATED',
      kind: 'finding',
      hint: 'run audit-trail migrate first',
    });
  return {
    ignoreColumns: [...new Set([...row.ignore_columns, ...table.ignoreColumns])],
    // Staging's placeholders of generated columns (src/staging/generated-placeholders.ts).
    generatedPlaceholders: row.generated_columns,
  };
}

/**
 * Runs `work` as a unit of progress; its total is counted (`count`) only when someone
 * is shown the progress and it wants totals, so a plain run costs no extra scan.
 */
async function withProgress<T>(
  progress: ProgressReporter | undefined,
  label: string,
  count: () => Promise<number>,
  work: (task: ProgressTask) => Promise<T>,
): Promise<T> {
  const task =
    progress === undefined
      ? noProgress.start(label)
      : progress.countsTotals === false
        ? progress.start(label)
        : progress.start(label, await count());
  try {
    return await work(task);
  } finally {
    task.done();
  }
}

/** Rows of a table, in the connection's snapshot (`table` quoted). */
async function countRows(client: pg.Client, table: string): Promise<number> {
  const { rows } = await client.query<{ count: string }>(`SELECT count(*) AS count FROM ${table}`);
  return Number(rows[0]?.count ?? 0);
}

async function compare(
  table: string,
  sourceRows: KeyedRowCursor,
  auditRows: KeyedRowCursor,
  task: ProgressTask,
  report: (mismatch: VerifyMismatch, rows?: [KeyedRow, KeyedRow]) => Promise<void>,
): Promise<{ sourceRows: number; auditRows: number; mismatches: number }> {
  let sourceCount = 0;
  let auditCount = 0;
  let mismatches = 0;
  for await (const { key, left: source, right: audit } of mergeByKey(sourceRows, auditRows)) {
    if (source) {
      sourceCount++;
      task.advance(1);
    }
    if (audit) auditCount++;
    if (source && audit && sameRow(source, audit)) continue;
    mismatches++;
    const found = { table, key: parseRowJson(key) };
    if (source === null) {
      await report({ ...found, kind: 'missing-in-source', ...reported('audit', audit!) });
    } else if (audit === null) {
      await report({ ...found, kind: 'missing-in-audit', ...reported('source', source) });
    } else {
      await report(
        {
          ...found,
          kind: 'different',
          ...reported('source', source),
          ...reported('audit', audit),
        },
        [source, audit],
      );
    }
  }
  return { sourceRows: sourceCount, auditRows: auditCount, mismatches };
}

/**
 * The staging rows of a table as the capture trigger renders them (key_of and
 * exact_document, on the target itself); a row flagged deleted has a null row.
 */
function stagingReader(target: pg.Client, auditSchema: string, table: SourceTable): KeyedRowCursor {
  const exact = rowDocumentColumns(table);
  const fn = (name: string) => quoteQualified(auditSchema, name);
  const staging = quoteLiteral(quoteQualified(auditSchema, stagingTableName(table.table)));
  const deleted = `st.${OPERATION_INDICATOR_COLUMN.name} = '${Indicator.deleted}'`;
  // The JSON null literals of the staging row's recorded columns (json_null_columns): a
  // json column's is merged into the row as the string "null", a jsonb column's listed
  // (jsonb_nulls), as the capture trigger records them. Read once per row (a lateral
  // subquery the planner keeps, OFFSET 0): a row with an unquoted null field is read again
  // by dynamic SQL, which was most of the staging scan's time on such rows when both
  // outputs called it. The row's text, which bounded_arrays, json_spaced_texts and
  // json_null_columns all read, is rendered there once too (not for a row flagged deleted).
  return new KeyedRowCursor(
    target,
    `SELECT q.key, q.row, q.json_nulls FROM (
       SELECT ${fn('key_of')}(pg_catalog.to_jsonb(st.*), $1::text[])::text AS key,
              CASE WHEN ${deleted} THEN NULL
                   ELSE (${fn('exact_document')}(pg_catalog.to_jsonb(st.*) - $2::text[], pg_catalog.row_to_json(st.*), $3::text[], $4::text[])
                         || (${fn('bounded_arrays')}(ar_found.ar_text, ${staging}::regclass) - $2::text[])
                         || ${fn('json_spaced_texts')}(ar_found.ar_text, ${staging}::regclass, $3::text[])
                         || ${fn('json_null_texts')}(ar_found.ar_nulls, $3::text[]))::text
              END AS row,
              CASE WHEN ${deleted} THEN NULL
                   ELSE pg_catalog.to_jsonb(${fn('jsonb_nulls')}(ar_found.ar_nulls, $3::text[]))::text
              END AS json_nulls
         FROM ${quoteQualified(auditSchema, stagingTableName(table.table))} AS st
        CROSS JOIN LATERAL (
          SELECT t.ar_text,
                 ${fn('json_null_columns')}(t.ar_text, ${staging}::regclass, $2::text[]) AS ar_nulls
            FROM (SELECT CASE WHEN ${deleted} THEN NULL ELSE record_out(st.*)::text END AS ar_text
                  OFFSET 0) AS t
          OFFSET 0) AS ar_found) AS q
     ORDER BY q.key COLLATE pg_catalog."C"`,
    [
      [...table.primaryKey],
      [...HEADER_COLUMN_NAMES, ...table.ignoreColumns],
      [...exact.json],
      [...exact.float],
    ],
  );
}

/** The newest audit version of every key of a table; a delete has a null row. */
function newestVersionReader(
  target: pg.Client,
  auditSchema: string,
  table: SourceTable,
  shape: readonly ShapeChange[],
): KeyedRowCursor {
  return new KeyedRowCursor(
    target,
    `SELECT row_key::text AS key, CASE WHEN operation = 'DELETE' THEN NULL ELSE new_row::text END AS row,
            CASE WHEN operation = 'DELETE' THEN NULL ELSE pg_catalog.to_jsonb(new_json_nulls)::text END AS json_nulls
       FROM (${newestVersionsSql(auditSchema, shape)}) AS newest
      ORDER BY row_key::text COLLATE pg_catalog."C"`,
    [table.schema, table.table],
  );
}

/** The table's logged column changes, to read older versions in today's shape. */
async function shapeChanges(
  target: pg.Client,
  auditSchema: string,
  table: { schema: string; table: string },
): Promise<ShapeChange[]> {
  const { rows } = await target.query<ShapeChange>(shapeChangesSql(auditSchema), [
    table.schema,
    table.table,
  ]);
  return rows;
}

/**
 * The newest version of every key of a table (`$1` schema, `$2` table): the one with the
 * highest id, since ids are allocated in apply order under the chain lock, so it is the
 * version that left staging as it is. (Not by change sequence first: the reload of a
 * table added back to the config, #17 item 19, records SNAPSHOTs and DELETEs, which have
 * none, after versions that have one.) Key and row in
 * the table's current shape (see src/history/version-shape.ts): a version recorded
 * before a column was added, dropped, renamed or widened is compared as the source
 * holds that row now, and the versions from before and after a key column's rename are
 * one row's history.
 */
function newestVersionsSql(auditSchema: string, shape: readonly ShapeChange[]): string {
  return `SELECT DISTINCT ON (row_key) row_key, operation, new_row, new_json_nulls
            FROM (SELECT ${currentShapeSql('l.row_key', 'l', shape, { keyOnly: true })} AS row_key,
                         ${currentShapeSql('l.new_row', 'l', shape)} AS new_row,
                         ${currentShapeListSql('l.new_json_nulls', 'l', shape)} AS new_json_nulls,
                         l.operation, l.id
                    FROM ${quoteQualified(auditSchema, 'audit_log')} AS l
                   WHERE l.source_schema = $1 AND l.source_table = $2) AS v
           ORDER BY row_key, id DESC`;
}

/**
 * Merges staging rows with the newest audit versions by key: every key whose staging
 * row (or its absence, or its delete flag) is not what the newest version left is a
 * `staging-differs` mismatch.
 */
async function compareStaging(
  table: string,
  stagingRows: KeyedRowCursor,
  versions: KeyedRowCursor,
  task: ProgressTask,
  report: (mismatch: VerifyMismatch, rows?: [KeyedRow, KeyedRow]) => Promise<void>,
): Promise<{ stagingRows: number; mismatches: number }> {
  let stagingCount = 0;
  let mismatches = 0;
  for await (const { key, left: staged, right: version } of mergeByKey(stagingRows, versions)) {
    if (staged) task.advance(1);
    if (staged?.row) stagingCount++;
    // A missing row, a row flagged deleted and a DELETE version all have no row.
    const live = (entry: KeyedRow | null) => (entry === null || entry.row === null ? null : entry);
    const stagedLive = live(staged);
    const versionLive = live(version);
    if (
      stagedLive === null ? versionLive === null : versionLive && sameRow(stagedLive, versionLive)
    )
      continue;
    mismatches++;
    await report(
      {
        table,
        key: parseRowJson(key),
        kind: 'staging-differs',
        ...(stagedLive && reported('staging', stagedLive)),
        ...(versionLive && reported('audit', versionLive)),
      },
      stagedLive && versionLive ? [stagedLive, versionLive] : undefined,
    );
  }
  return { stagingRows: stagingCount, mismatches };
}

/** Whether two live rows are the same: the same document text and the same JSON nulls. */
function sameRow(a: KeyedRow, b: KeyedRow): boolean {
  return rowText(a) === rowText(b) && a.json_nulls === b.json_nulls;
}

/** A live row of one side as a mismatch reports it: the row, and its JSON nulls if any. */
function reported(
  side: 'source' | 'audit' | 'staging',
  entry: KeyedRow,
): Pick<VerifyMismatch, `${typeof side}Row` | `${typeof side}JsonNulls`> {
  return {
    [`${side}Row`]: parseRowJson(rowText(entry)),
    ...(entry.json_nulls !== null && {
      [`${side}JsonNulls`]: JSON.parse(entry.json_nulls) as string[],
    }),
  };
}

/**
 * Columns whose JSON text differs (so `1.10` vs `1.100` counts, as in the row comparison),
 * and the jsonb columns that are a JSON `null` literal in one row only (`null` in both
 * documents).
 */
async function differingColumns(client: pg.Client, a: KeyedRow, b: KeyedRow): Promise<string[]> {
  const { rows } = await client.query<{ name: string }>(
    `SELECT coalesce(s.key, a.key) AS name
       FROM jsonb_each($1::jsonb) AS s FULL JOIN jsonb_each($2::jsonb) AS a ON a.key = s.key
      WHERE s.value::text IS DISTINCT FROM a.value::text
     UNION
     (SELECT coalesce(s.name, a.name)
        FROM jsonb_array_elements_text(coalesce($3::jsonb, '[]')) AS s(name)
        FULL JOIN jsonb_array_elements_text(coalesce($4::jsonb, '[]')) AS a(name) ON a.name = s.name
       WHERE s.name IS NULL OR a.name IS NULL)
      ORDER BY 1`,
    [rowText(a), rowText(b), a.json_nulls, b.json_nulls],
  );
  return rows.map((row) => row.name);
}

/** A source row or live audit version: never null in those streams. */
function rowText(entry: { row: string | null }): string {
  return entry.row ?? 'null';
}

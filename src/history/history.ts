import { AUDIT_CONTEXT_COLUMNS, CONTEXT_TRANSACTION_COLUMN } from '../config/source-context';
import { AuditTrailError } from '../errors';
import {
  sql,
  type CompiledQuery,
  type Kysely,
  type RawBuilder,
  type SelectQueryBuilder,
} from 'kysely';
import { prepareByName } from '../postgres/prepared-statements';
import { rowsAsTheyArrive } from '../postgres/row-stream';
import { diff, rowAfter } from './diff';
import { commitTimeText, commitTimeSql } from './commit-time';
import { copyRowJson, parseRowDocument, parseRowJson } from './row-json';
import { clientRowKey } from './row-key';
import { parseTextArray } from './text-array';
import { readSchemaChanges, type SchemaChange } from './schema-changes';
import {
  currentShapeSql,
  keySpellings,
  SHAPE_CHANGE_COLUMNS,
  type ShapeChange,
} from './version-shape';
import type {
  AuditedTables,
  ColumnChange,
  Instant,
  KeyValue,
  Operation,
  RowKey,
  TableName,
  UntypedTables,
  Version,
  VersionContext,
} from './types';

/** Options for {@link createHistory}. */
export interface HistoryOptions {
  /** Schema of the audit log on the target (the config's `auditSchema`). @default "audit" */
  readonly auditSchema?: string;
}

/** Options for range queries. */
export interface RangeOptions {
  /** Most versions returned. @default no limit */
  readonly limit?: number;
  /** Only changes whose source transaction's context names this actor. @default any */
  readonly actor?: string;
}

/**
 * Where a page of history starts: after this version. Every {@link Version} is one, so
 * the last version of a page is the cursor of the next; {@link historyCursor} gives the
 * same as text (what the CLI's `--after` takes).
 */
export interface HistoryCursor {
  readonly commitTimestamp: string;
  readonly changeSeq: string | null;
  readonly id: string;
}

/** A page of {@link History.history}. */
export interface HistoryPageOptions {
  /** Most versions returned (a positive integer). @default 100 */
  readonly limit?: number;
  /**
   * Only versions after this one in the key's history order (the order the versions were
   * applied, which is the source's order): the last version of the previous page, or its
   * {@link historyCursor} text.
   * @default from the first version
   */
  readonly after?: HistoryCursor | string;
}

/** The default page size of {@link History.history} when paging. */
export const DEFAULT_HISTORY_PAGE = 100;

/**
 * A version's place in history order as text, `<commit time>/<change sequence or ->/<id>`
 * (`2026-11-22T10:00:01.000002Z/20261122100001000002.../17`): what `after` and the CLI's
 * `--after` take to continue after it.
 */
export function historyCursor(version: HistoryCursor): string {
  return `${version.commitTimestamp}/${version.changeSeq ?? '-'}/${version.id}`;
}

/** Reads {@link historyCursor} text; a malformed cursor is a {@link HistoryQueryError}. */
export function parseHistoryCursor(text: string): HistoryCursor {
  const match =
    /^(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z)\/(\d{1,35}|-)\/([1-9]\d{0,18})$/.exec(text);
  if (!match) {
    throw new HistoryQueryError(
      `after: not a history cursor (expected <commit time>/<change sequence or ->/<id>, as printed with the previous page): ${JSON.stringify(text)}`,
    );
  }
  return {
    commitTimestamp: match[1]!,
    changeSeq: match[2] === '-' ? null : match[2]!,
    id: match[3]!,
  };
}

/** Thrown for a table that is not audited or a key of the wrong shape. */
export class HistoryQueryError extends AuditTrailError {
  override readonly name = 'HistoryQueryError';
  constructor(message: string, options: { readonly hint?: string; readonly cause?: unknown } = {}) {
    super(message, { code: 'HISTORY_QUERY', kind: 'finding', ...options });
  }
}

/** The typed history API over one target database. */
export interface History<Tables extends AuditedTables<Tables> = UntypedTables> {
  /**
   * Every version of one row, oldest first: in the order they were applied, which is the
   * order the source made them (a DMS full-load row carries its copy time, which can be
   * later than a change that follows it). Given
   * `page`, one page of them: at most `page.limit` (default 100) versions after
   * `page.after`; fewer than the limit means the last page.
   *
   * ```ts
   * let page = await history.history('public.items', { id: 42 }, { limit: 100 });
   * while (page.length > 0) {
   *   show(page);
   *   page = await history.history('public.items', { id: 42 }, { after: page.at(-1) });
   * }
   * ```
   */
  history<T extends TableName<Tables>>(
    table: T,
    key: RowKey<Tables[T]>,
    page?: HistoryPageOptions,
  ): Promise<Version<Tables[T]>[]>;
  /** The row as committed at `instant`, or null if it did not exist then. */
  asOf<T extends TableName<Tables>>(
    table: T,
    key: RowKey<Tables[T]>,
    instant: Instant,
  ): Promise<Tables[T] | null>;
  /**
   * The newest version of one row at `instant` (null if none yet): the last applied of
   * the versions committed by then.
   */
  versionAt<T extends TableName<Tables>>(
    table: T,
    key: RowKey<Tables[T]>,
    instant: Instant,
  ): Promise<Version<Tables[T]> | null>;
  /** Every version of a table committed in `[from, to)`, oldest first. */
  changesBetween<T extends TableName<Tables>>(
    table: T,
    from: Instant,
    to: Instant,
    options?: RangeOptions,
  ): Promise<Version<Tables[T]>[]>;
  /** Every change one source transaction made, across tables, in change order. */
  transaction(transactionId: string | number | bigint): Promise<Version[]>;
  /**
   * Every change, across tables, made by source transactions whose context names
   * `actor`, committed in `[from, to)`, oldest first ("everything Alice changed last
   * week"). The context rows themselves are not listed.
   *
   * ```ts
   * const changes = await history.changesBy('alice', '2026-11-23T00:00:00Z', '2026-11-30T00:00:00Z');
   * changes.map((v) => [v.table, v.operation, v.context?.reason]);
   * ```
   */
  changesBy(actor: string, from: Instant, to: Instant, options?: RangeOptions): Promise<Version[]>;
  /** The newest version of every key of a table (deleted keys included). */
  latest<T extends TableName<Tables>>(table: T): Promise<Version<Tables[T]>[]>;
  /**
   * Every column added, dropped, renamed or retyped on the source table, oldest first, as
   * `migrate` (or the engine) saw it: read versions across a change with it, e.g. a
   * renamed column is one column under two names, not a drop and an add. For a
   * partitioned table, also each leaf partition the local engine found attached or
   * detached (`change` `ATTACH`/`DETACH`, with `partition`), in the same order.
   *
   * ```ts
   * const changes = await history.schemaChanges('public.items');
   * // [{ change: 'RENAME', column: 'label', before: { name: 'title', ... }, ... }]
   * const partitions = await history.schemaChanges('public.measures');
   * // [{ change: 'DETACH', partition: { schema: 'public', name: 'measures_us',
   * //    bound: "FOR VALUES IN ('US')" }, sourceLsn: '0/3001F28', ... }]
   * ```
   */
  schemaChanges(table: TableName<Tables>): Promise<SchemaChange[]>;
  /** The columns that differ between the row states two versions leave. */
  diff<Row extends object>(
    from: Version<Row> | Row | null,
    to: Version<Row> | Row | null,
  ): ColumnChange[];
}

interface AuditLogRow {
  id: string;
  /**
   * Absent from the statements of one table's versions (selectVersions 'cached'): the
   * table is in their slots. Every version of a page would carry the same two strings.
   */
  source_schema?: string;
  source_table?: string;
  row_key: string;
  operation: Operation;
  /** The timestamptz's binary form as hex (commitTimeSql). */
  commit_timestamp: string;
  change_seq: string | null;
  transaction_id: string | null;
  stream_position: string | null;
  old_row: string | null;
  new_row: string | null;
  /** The text[] columns as text (textArray). */
  changed_columns: string | null;
  old_json_nulls: string | null;
  new_json_nulls: string | null;
  context: string | null;
  /** Absent from the per-key statements: their table's are in the cached key facts. */
  exact_number_columns?: string;
}

interface AuditDatabase {
  audit_log: {
    id: string;
    source_schema: string;
    source_table: string;
    row_key: unknown;
    commit_timestamp: Date;
    change_seq: string | null;
    transaction_id: string | null;
  };
  audited_table: {
    source_schema: string;
    source_table: string;
    key_columns: string[];
    key_types: string[];
    exact_number_columns: string[];
    source_context: boolean;
  };
}

type VersionQuery = SelectQueryBuilder<
  AuditDatabase & {
    l: AuditDatabase['audit_log'];
    t: AuditDatabase['audited_table'];
    ctx: { context: unknown };
  },
  'l' | 't' | 'ctx',
  AuditLogRow
>;

/**
 * Creates the history API on a kysely instance connected to the target.
 * Type it with your row types to get typed rows back:
 *
 * ```ts
 * interface Tables { 'public.items': { id: number; name: string; price: string } }
 * const history = createHistory<Tables>(db, { auditSchema: 'audit' });
 * const versions = await history.history('public.items', { id: 42 });
 * ```
 */
export function createHistory<Tables extends AuditedTables<Tables> = UntypedTables>(
  db: Kysely<any>, // eslint-disable-line @typescript-eslint/no-explicit-any -- any database: the audit schema is reached by name
  options: HistoryOptions = {},
): History<Tables> {
  const auditSchema = options.auditSchema ?? 'audit';
  const audit = db.withSchema(auditSchema) as unknown as Kysely<AuditDatabase>;
  // As text, parsed losslessly in toVersion (node-postgres would JSON.parse into doubles),
  // where the numbers of numeric and bigint columns also become strings (exactNumbers).
  const documentText = (column: string): RawBuilder<string> => sql`${sql.ref(column)}::text`;
  // As text too, the same text PostgreSQL sends for a text[] (array_out), parsed by
  // parseTextArray: node-postgres's own text[] parser was a fifth of what a history page
  // allocated.
  const textArray = (column: string): RawBuilder<string | null> => sql`${sql.ref(column)}::text`;

  const contextOf = contextJoin(auditSchema);

  // The versions and their context; with `registry` 'joined', each version's row of
  // audited_table too (`t`, and its exact-number columns in each row). One table's queries
  // ('cached') take that row from the cached key facts instead, checked once per query
  // (keyFactsGuard): joining it for every version was 13% of a 100-version page's server
  // CPU (BENCHMARKS 4). They do not select the version's schema and table either: their
  // slots hold them (runStatement), and each version's two strings were a tenth of the
  // strings node-postgres made for a first page (BENCHMARKS 4).
  const selectVersions = (registry: 'joined' | 'cached' = 'joined'): VersionQuery => {
    const versions = audit.selectFrom('audit_log as l');
    const withRegistry =
      registry === 'joined'
        ? versions.innerJoin('audited_table as t', (join) =>
            join
              .onRef('t.source_schema', '=', 'l.source_schema')
              .onRef('t.source_table', '=', 'l.source_table'),
          )
        : versions;
    return withRegistry
      .leftJoinLateral(contextOf.as('ctx'), (join) => join.onTrue())
      .select([
        sql<string>`l.id::text`.as('id'),
        ...(registry === 'joined' ? (['l.source_schema', 'l.source_table'] as const) : []),
        documentText('l.row_key').as('row_key'),
        sql<Operation>`l.operation`.as('operation'),
        // Its 8 bytes, printed in the client (commit-time.ts): to_char was 9% of a page's
        // server instructions.
        commitTimeSql('l.commit_timestamp').as('commit_timestamp'),
        'l.change_seq',
        'l.transaction_id',
        sql<string | null>`l.stream_position`.as('stream_position'),
        documentText('l.old_row').as('old_row'),
        documentText('l.new_row').as('new_row'),
        textArray('l.changed_columns').as('changed_columns'),
        textArray('l.old_json_nulls').as('old_json_nulls'),
        textArray('l.new_json_nulls').as('new_json_nulls'),
        sql<string | null>`ctx.context::text`.as('context'),
      ])
      .$if(registry === 'joined', (query) =>
        query.select(textArray('t.exact_number_columns').as('exact_number_columns')),
      ) as unknown as VersionQuery;
  };

  // "schema.table" where either part may contain dots: the registry says which split
  // names an audited table; more than one is refused as ambiguous.
  const resolved = new Map<string, Promise<{ schema: string; name: string }>>();
  const resolveTable = (table: string): Promise<{ schema: string; name: string }> => {
    let found = resolved.get(table);
    if (found === undefined) {
      found = audit
        .selectFrom('audited_table')
        .select(['source_schema', 'source_table'])
        .where(sql<boolean>`source_schema || '.' || source_table = ${table}`)
        .orderBy('source_schema')
        .orderBy('source_table')
        .execute()
        .then((rows) => {
          if (rows.length > 1) {
            throw new HistoryQueryError(
              `table reference ${table} is ambiguous: ${rows
                .map((row) => JSON.stringify([row.source_schema, row.source_table]))
                .join(' or ')}`,
            );
          }
          const row = rows[0];
          return row
            ? { schema: row.source_schema, name: row.source_table }
            : splitTableName(table);
        });
      found.catch(() => resolved.delete(table));
      resolved.set(table, found);
    }
    return found;
  };

  // What a per-key query needs to know about its table, cached per table: the registry's
  // key columns and types (to build the key in the client), its exact-number columns (to
  // read the row documents) and the key's renames. Reading
  // them was a round trip of its own before every history and asOf query. The query itself
  // checks the cache (keyFactsGuard).
  const keyFacts = new Map<string, Promise<KeyFacts>>();
  const keyFactsOf = (schema: string, name: string, reload = false): Promise<KeyFacts> => {
    const cacheKey = JSON.stringify([schema, name]);
    let found = keyFacts.get(cacheKey);
    if (found === undefined || reload) {
      found = readKeyFacts(schema, name);
      found.catch(() => keyFacts.delete(cacheKey));
      keyFacts.set(cacheKey, found);
    }
    return found;
  };

  const readKeyFacts = async (schema: string, name: string): Promise<KeyFacts> => {
    const registered = await audit
      .selectFrom('audited_table')
      .select(['key_columns', 'key_types', 'exact_number_columns'])
      .where('source_schema', '=', schema)
      .where('source_table', '=', name)
      .executeTakeFirst();
    if (!registered) {
      throw new HistoryQueryError(`table ${schema}.${name} is not audited`, {
        hint: 'audit it by listing it in the config and running audit-trail migrate',
      });
    }
    const { rows } = await sql<ShapeChange & { id: string }>`
      SELECT ${sql.raw(SHAPE_CHANGE_COLUMNS)}, id::text AS id
      FROM ${sql.id(auditSchema, 'schema_change')}
      WHERE source_schema = ${schema} AND source_table = ${name} AND change = 'RENAME'
      ORDER BY id`.execute(db);
    return {
      keyColumns: registered.key_columns,
      keyTypes: registered.key_types,
      exactNumberColumns: registered.exact_number_columns,
      renames: rows,
      renamesFingerprint: renamesFingerprint(rows.length, rows.at(-1)?.id ?? '0'),
    };
  };

  // True when the cached facts are still the table's: its registry row has the cached key
  // columns and types and exact-number columns, and its renames are those cached
  // (schema_change is append-only, so their count and highest id identify them). Read in
  // the query's own snapshot, so a query built from outdated facts returns no rows instead
  // of a wrong answer. Neither part refers to the version: PostgreSQL checks them once per
  // query (a one-time filter), and a table not in the registry has no versions here.
  const keyFactsGuard: RawBuilder<boolean> = sql<boolean>`EXISTS (SELECT
        FROM ${sql.id(auditSchema, 'audited_table')} AS t
       WHERE t.source_schema = ${slot('schema')} AND t.source_table = ${slot('name')}
         AND t.key_columns = ${slot('keyColumns')}::text[]
         AND t.key_types = ${slot('keyTypes')}::text[]
         AND t.exact_number_columns = ${slot('exactNumberColumns')}::text[])
      AND (SELECT count(*)::text || '/' || coalesce(max(id), 0)::text
        FROM ${sql.id(auditSchema, 'schema_change')}
        WHERE source_schema = ${slot('schema')} AND source_table = ${slot('name')}
          AND change = 'RENAME') = ${slot('renamesFingerprint')}`;

  /**
   * Runs `read` with the table's cached key facts. An empty answer may come from outdated
   * facts (keyFactsGuard): then they are read again and, if they changed, `read` runs
   * again with them. `read` answers with the facts it used (it may have re-read them).
   */
  const withKeyFacts = async <Row>(
    table: string,
    schema: string,
    name: string,
    read: (facts: KeyFacts) => Promise<{ versions: Version<Row>[]; facts: KeyFacts }>,
  ): Promise<Version<Row>[]> => {
    let facts = await keyFactsOf(schema, name);
    for (let attempt = 1; ; attempt++) {
      const answer = await read(facts);
      if (answer.versions.length > 0) return answer.versions;
      const current = await keyFactsOf(schema, name, true);
      if (sameKeyFacts(current, answer.facts)) return answer.versions;
      if (attempt === MAX_KEY_FACTS_RETRIES) {
        throw new HistoryQueryError(
          `the key of ${table} changed ${MAX_KEY_FACTS_RETRIES} times while reading its history; try again`,
        );
      }
      facts = current;
    }
  };

  /** Runs a query over the versions of one row (`shape` adds order and bounds). */
  const forKey = async <Row>(
    table: string,
    key: RowKey<object>,
    shape: PerKeyShape,
    bounds: PerKeyBounds,
  ): Promise<Version<Row>[]> => {
    const { schema, name } = await resolveTable(table);
    return withKeyFacts<Row>(table, schema, name, async (cached) => {
      let values: string[];
      let facts = cached;
      if (Array.isArray(key)) values = key.map(keyValueText);
      else {
        ({ values, facts } = await keyObjectValuesOf(
          key as Record<string, KeyValue>,
          cached,
          schema,
          name,
          table,
        ));
      }
      const rowKey = clientRowKey(facts.keyColumns, facts.keyTypes, values);
      const statement = perKeyStatement(shape, rowKey !== null, facts, schema, name);
      const versions = await runStatement<Row>(
        statement,
        { ...bounds, ...keyFactsValues(facts), schema, name, rowKey, keyValues: values },
        // versionAt answers one row: nothing to convert while the rest arrives.
        shape === 'versionAt' ? 'at once' : 'as they arrive',
      );
      return { versions, facts };
    });
  };

  // The key columns are cached: a key that does not fit them is checked against the
  // registry again before it is refused (a key column renamed since they were read).
  const keyObjectValuesOf = async (
    key: Record<string, KeyValue>,
    cached: KeyFacts,
    schema: string,
    name: string,
    table: string,
  ): Promise<{ values: string[]; facts: KeyFacts }> => {
    try {
      return { values: keyObjectValues(key, cached.keyColumns, table), facts: cached };
    } catch (error) {
      if (!(error instanceof HistoryQueryError)) throw error;
      const facts = await keyFactsOf(schema, name, true);
      return { values: keyObjectValues(key, facts.keyColumns, table), facts };
    }
  };

  const keyedBy = (
    query: VersionQuery,
    renames: readonly ShapeChange[],
    clientKey: boolean,
  ): VersionQuery => {
    // Built in the client where that is exact (clientRowKey); otherwise row_key_of, in a
    // scalar subquery so PostgreSQL computes the key once per query (an InitPlan) instead
    // of once per candidate row: it runs dynamic SQL per key column (~0.3 ms per call).
    const rowKey = clientKey
      ? sql`${slot('rowKey')}::jsonb`
      : sql`(SELECT ${sql.id(auditSchema, 'row_key_of')}(${slot('schema')}, ${slot('name')}, ${slot('keyValues')}::text[]))`;
    const scoped = query
      .where('l.source_schema', '=', slot<string>('schema'))
      .where('l.source_table', '=', slot<string>('name')) as VersionQuery;
    if (renames.length === 0)
      return (
        scoped
          // The per-key index holds the key's hash (keys of any size); the key decides.
          // pg_catalog-qualified, as every polymorphic or coerced call in these queries:
          // a lookalike with exact argument types (jsonb, integer) in `public`, which any
          // role may create on PostgreSQL 13 and 14, would outrank it for the reader's
          // session and hide the key's history (test/history/planted-functions.test.ts).
          .where(
            sql`pg_catalog.jsonb_hash_extended(l.row_key, 0)`,
            '=',
            sql`pg_catalog.jsonb_hash_extended(${rowKey}, 0)`,
          )
          .where(sql.ref('l.row_key'), '=', rowKey) as VersionQuery
      );
    // A key column was renamed: the row's older versions are under the old name. Every
    // spelling the key had finds them through the index; the key in today's shape decides.
    const spellings = keySpellings('k.current', renames);
    return scoped
      .where(
        sql`pg_catalog.jsonb_hash_extended(l.row_key, 0)`,
        '=',
        sql`ANY (SELECT pg_catalog.jsonb_hash_extended(s, 0) FROM (SELECT ${rowKey} AS current) AS k,
                 pg_catalog.unnest(${sql.raw(`ARRAY[${spellings.join(', ')}]`)}) AS s)`,
      )
      .where(
        sql.raw(currentShapeSql('l.row_key', 'l', renames, { keyOnly: true })),
        '=',
        rowKey,
      ) as VersionQuery;
  };

  // Listings across keys (a time range, an actor) in commit order.
  const inHistoryOrder = (query: VersionQuery): VersionQuery =>
    query.orderBy(sql`l.commit_timestamp, l.change_seq NULLS FIRST, l.id`) as VersionQuery;
  // One key's versions in the order they were applied (audit id), which is the order the
  // source made them: both pipelines apply a key's changes in commit order, and verify
  // and migrate take a key's newest version by id too. Commit time is not that order: a
  // DMS full-load row carries the time DMS copied it, so a change DMS cached during the
  // load and applied after it can carry an earlier commit time than the SNAPSHOT it
  // follows (test/history/full-load-order.test.ts).
  const inApplyOrder = (query: VersionQuery): VersionQuery =>
    query.orderBy(sql`l.id`) as VersionQuery;

  // After the cursor in apply order: the cursor's id.
  const afterCursor = (query: VersionQuery): VersionQuery =>
    query.where(sql.ref('l.id'), '>', sql`${slot('afterId')}::bigint`) as VersionQuery;

  /** The order and bounds of each per-key query. */
  const PER_KEY_SHAPES: Record<PerKeyShape, (query: VersionQuery) => VersionQuery> = {
    all: inApplyOrder,
    firstPage: (query) => inApplyOrder(query).limit(slot<number>('limit')) as VersionQuery,
    nextPage: (query) =>
      afterCursor(inApplyOrder(query)).limit(slot<number>('limit')) as VersionQuery,
    // The last version applied among those committed by the instant: a SNAPSHOT stamped
    // after a change it precedes is not the version current after that change.
    versionAt: (query) =>
      query
        .where(sql.ref('l.commit_timestamp'), '<=', sql`${slot('instant')}::timestamptz`)
        .orderBy(sql`l.id DESC`)
        .limit(1) as VersionQuery,
  };

  // Each statement is compiled once (kysely's compilation was about a third of a history
  // call's client CPU) and, unless `named` is false, prepared by name on createKysely's
  // connections; its values go in slots (runStatement).
  const statements = new Map<string, CompiledQuery>();
  const compiledOnce = (
    id: string,
    build: () => VersionQuery,
    { named = true }: { readonly named?: boolean } = {},
  ): CompiledQuery => {
    let statement = statements.get(id);
    if (statement === undefined) {
      statement = build().compile();
      if (named) prepareByName(statement.sql);
      statements.set(id, statement);
    }
    return statement;
  };

  // The renames are SQL of their own (one table's); without them a statement's text is the
  // same for every table.
  const renamesId = (facts: KeyFacts, schema: string, name: string): unknown =>
    facts.renames.length === 0 ? null : [schema, name, facts.renamesFingerprint];

  // One per shape, key kind and renames.
  const perKeyStatement = (
    shape: PerKeyShape,
    clientKey: boolean,
    facts: KeyFacts,
    schema: string,
    name: string,
  ): CompiledQuery =>
    compiledOnce(JSON.stringify([shape, clientKey, renamesId(facts, schema, name)]), () =>
      PER_KEY_SHAPES[shape](
        keyedBy(selectVersions('cached'), facts.renames, clientKey).where(
          keyFactsGuard,
        ) as VersionQuery,
      ),
    );

  // latest(): each key's newest version (the highest id, see inApplyOrder) found by
  // reading only the keys and ids of the table's versions; the versions themselves, and
  // their context, are read for the newest only. One row, one key, across renames of its
  // key columns. In key order, as before.
  const latestStatement = (facts: KeyFacts, schema: string, name: string): CompiledQuery =>
    compiledOnce(JSON.stringify(['latest', renamesId(facts, schema, name)]), () => {
      const keyOf = (alias: string) =>
        sql.raw(currentShapeSql(`${alias}.row_key`, alias, facts.renames, { keyOnly: true }));
      return selectVersions('cached')
        .where('l.source_schema', '=', slot<string>('schema'))
        .where('l.source_table', '=', slot<string>('name'))
        .where(keyFactsGuard)
        .where(
          sql.ref('l.id'),
          'in',
          sql`(SELECT max(n.id) FROM ${sql.id(auditSchema, 'audit_log')} AS n
                WHERE n.source_schema = ${slot('schema')} AND n.source_table = ${slot('name')}
                GROUP BY ${keyOf('n')})`,
        )
        .orderBy(keyOf('l')) as VersionQuery;
    });

  const runStatement = async <Row>(
    statement: CompiledQuery,
    values: SlotValues,
    rows: 'as they arrive' | 'at once' = 'as they arrive',
  ): Promise<Version<Row>[]> => {
    const parameters = statement.parameters.map((parameter) => {
      if (!(parameter instanceof Slot)) return parameter;
      const value = values[parameter.name];
      // A missing value would be sent as NULL and answer a different question.
      if (value === undefined) throw new Error(`history statement: no value for ${parameter.name}`);
      return value;
    });
    // A statement of one table's (selectVersions 'cached') has its table and exact-number
    // columns in its slots, the latter from the key facts its guard checked; the others
    // have them in each row.
    const cached = values.exactNumberColumns as readonly string[] | undefined;
    const cachedSchema = values.schema as string | undefined;
    const cachedTable = values.name as string | undefined;
    const versions: Version<Row>[] = [];
    // The row before and its version: documents of the same text are copied from it
    // (toVersion).
    let previous: PreviousVersion<Row> | undefined;
    // Listings across tables have their table's exact-number columns in each row: parsed
    // once per distinct text (mostly one table's), and shared, since no version holds them.
    let exactText: string | undefined;
    let exactOfText: readonly string[] | undefined;
    const query = { ...statement, parameters } as CompiledQuery<AuditLogRow>;
    await withFriendlyErrors(async () => {
      // Converted as they arrive: a page's rows come in several network reads while the
      // server is still producing the rest (rowsAsTheyArrive); for one row, the stream's
      // own cost (about 0.04 ms a call) buys nothing.
      const chunks =
        rows === 'at once' ? [(await db.executeQuery(query)).rows] : rowsAsTheyArrive(db, query);
      for await (const chunk of chunks) {
        for (const row of chunk) {
          if (row.exact_number_columns !== undefined && row.exact_number_columns !== exactText) {
            exactText = row.exact_number_columns;
            exactOfText = parseTextArray(exactText) as string[];
          }
          const exact = row.exact_number_columns === undefined ? cached : exactOfText;
          if (exact === undefined) throw new Error('history statement: no exact-number columns');
          const schema = row.source_schema ?? cachedSchema;
          const table = row.source_table ?? cachedTable;
          if (schema === undefined || table === undefined) {
            throw new Error('history statement: no schema or table');
          }
          const version: Version<Row> = toVersion<Row>(row, schema, table, exact, previous);
          versions.push(version);
          previous = { row, version };
        }
      }
    });
    return versions;
  };

  // [from, to): the slots `from` and `to`.
  const committedIn = (query: VersionQuery): VersionQuery =>
    query
      .where(sql.ref('l.commit_timestamp'), '>=', sql`${slot('from')}::timestamptz`)
      .where(sql.ref('l.commit_timestamp'), '<', sql`${slot('to')}::timestamptz`) as VersionQuery;

  // Driven by the actor's context rows in the range, then their transactions' changes by
  // (xid, commit time): the transaction index finds them. The slots `actor`, `from`, `to`.
  const byActor = (query: VersionQuery): VersionQuery =>
    query.where(
      sql`(l.transaction_id, l.commit_timestamp)`,
      'in',
      sql`(SELECT c.transaction_id, c.commit_timestamp
             FROM ${sql.id(auditSchema, 'audit_log')} AS c
             JOIN ${sql.id(auditSchema, 'audited_table')} AS ct
               ON ct.source_schema = c.source_schema AND ct.source_table = c.source_table
            WHERE ct.source_context AND c.operation = 'INSERT'
              AND c.new_row ->> 'actor' = ${slot('actor')}
              AND c.commit_timestamp >= ${slot('from')}::timestamptz
              AND c.commit_timestamp < ${slot('to')}::timestamptz)`,
    ) as VersionQuery;

  // The slot `limit`, when the caller gave one (a statement of its own: a generic plan
  // for LIMIT $n would be planned for a guessed fraction of the rows).
  const limited = (query: VersionQuery, range: RangeOptions): VersionQuery =>
    range.limit === undefined ? query : (query.limit(slot<number>('limit')) as VersionQuery);

  const api: History<Tables> = {
    async history(table, key, page) {
      if (page === undefined) return forKey(table, key, 'all', {});
      const limit = pageLimit(page);
      if (page.after === undefined) return forKey(table, key, 'firstPage', { limit });
      const after = typeof page.after === 'string' ? parseHistoryCursor(page.after) : page.after;
      return forKey(table, key, 'nextPage', {
        limit,
        afterId: after.id,
      });
    },
    async versionAt(table, key, instant) {
      const [version] = await forKey<Tables[typeof table]>(table, key, 'versionAt', {
        instant: toInstantText(instant),
      });
      return version ?? null;
    },
    async asOf(table, key, instant) {
      return rowAfter(await api.versionAt(table, key, instant));
    },
    async changesBetween(table, from, to, range = {}) {
      const { schema, name } = await resolveTable(table);
      const byActorToo = range.actor !== undefined;
      const statement = compiledOnce(
        JSON.stringify(['changesBetween', byActorToo, range.limit !== undefined]),
        () => {
          const query = committedIn(selectVersions())
            .where('l.source_schema', '=', slot<string>('schema'))
            .where('l.source_table', '=', slot<string>('name')) as VersionQuery;
          return inHistoryOrder(limited(byActorToo ? byActor(query) : query, range));
        },
        // Planned for its own window on every call: a generic plan cannot know the
        // window's width, and PostgreSQL kept one that read the whole per-key index
        // (commit time is one of its columns) instead of the few block ranges of the
        // BRIN index on commit time (1,082 pages against 136 on a 150,000-row log).
        { named: false },
      );
      return runStatement(statement, { ...rangeValues(from, to, range), schema, name });
    },
    async changesBy(actor, from, to, range = {}) {
      const statement = compiledOnce(
        JSON.stringify(['changesBy', range.limit !== undefined]),
        () => {
          const query = byActor(committedIn(selectVersions())).where(
            't.source_context',
            '=',
            false,
          ) as VersionQuery;
          return inHistoryOrder(limited(query, range));
        },
      );
      return runStatement(statement, rangeValues(from, to, { ...range, actor }));
    },
    async transaction(transactionId) {
      const statement = compiledOnce(
        'transaction',
        () =>
          selectVersions()
            .where('l.transaction_id', '=', slot<string>('transactionId'))
            .orderBy(sql`l.change_seq NULLS FIRST, l.commit_timestamp, l.id`) as VersionQuery,
      );
      return runStatement(statement, { transactionId: String(transactionId) });
    },
    async latest(table) {
      const { schema, name } = await resolveTable(table);
      return withKeyFacts(table, schema, name, async (facts) => ({
        versions: await runStatement(latestStatement(facts, schema, name), {
          ...keyFactsValues(facts),
          schema,
          name,
        }),
        facts,
      }));
    },
    async schemaChanges(table) {
      const { schema, name } = await resolveTable(table);
      return readSchemaChanges(db, auditSchema, schema, name);
    },
    diff,
  };
  return api;
}

/** The per-key queries: every version, a first or later page, the version at an instant. */
type PerKeyShape = 'all' | 'firstPage' | 'nextPage' | 'versionAt';

/** A per-key query's bounds, by shape. */
interface PerKeyBounds {
  readonly limit?: number;
  readonly afterId?: string;
  readonly instant?: string;
}

/** Every value a per-key statement takes, bound at each call. */
interface PerKeyParameters extends PerKeyBounds {
  readonly schema: string;
  readonly name: string;
  /** The key as jsonb text when built in the client; null when row_key_of builds it. */
  readonly rowKey: string | null;
  readonly keyValues: readonly string[];
  readonly keyColumns: readonly string[];
  readonly keyTypes: readonly string[];
  readonly exactNumberColumns: readonly string[];
  readonly renamesFingerprint: string;
}

/** The values of a listing across keys (changesBetween, changesBy), bound at each call. */
interface RangeParameters {
  /** `[from, to)` as instants (text). */
  readonly from: string;
  readonly to: string;
  readonly actor?: string;
  readonly limit?: number;
  /** changesBetween's table. */
  readonly schema?: string;
  readonly name?: string;
}

type SlotName = keyof PerKeyParameters | keyof RangeParameters | 'transactionId';

/** The values of one call of a statement compiled once, by the slots' names. */
type SlotValues = { readonly [name in SlotName]?: unknown };

function rangeValues(from: Instant, to: Instant, range: RangeOptions): RangeParameters {
  return { from: toInstantText(from), to: toInstantText(to), ...range };
}

/**
 * A named place for a value in a statement compiled once: kysely puts the object itself
 * in the compiled parameters, and each call puts its own value there (runStatement).
 */
class Slot {
  constructor(readonly name: SlotName) {}
}

function slot<T = unknown>(name: SlotName): RawBuilder<T> {
  return sql.val(new Slot(name)) as unknown as RawBuilder<T>;
}

function pageLimit(page: HistoryPageOptions): number {
  const limit = page.limit ?? DEFAULT_HISTORY_PAGE;
  if (!Number.isSafeInteger(limit) || limit < 1) {
    throw new HistoryQueryError(`limit must be a positive integer (got ${String(limit)})`);
  }
  return limit;
}

/** What the per-key queries need to know about a table (see keyFactsGuard). */
interface KeyFacts {
  /** The registry's key columns and their types (`format_type`), in key order. */
  readonly keyColumns: readonly string[];
  readonly keyTypes: readonly string[];
  /** The registry's numeric and bigint columns (exactNumbers). */
  readonly exactNumberColumns: readonly string[];
  /** The key columns' renames, oldest first. */
  readonly renames: readonly ShapeChange[];
  /** `<count>/<highest id>` of the table's RENAME rows in `schema_change`. */
  readonly renamesFingerprint: string;
}

/** The slots of a statement that checks its key facts (keyFactsGuard). */
function keyFactsValues(
  facts: KeyFacts,
): Pick<PerKeyParameters, 'keyColumns' | 'keyTypes' | 'exactNumberColumns' | 'renamesFingerprint'> {
  return {
    keyColumns: facts.keyColumns,
    keyTypes: facts.keyTypes,
    exactNumberColumns: facts.exactNumberColumns,
    renamesFingerprint: facts.renamesFingerprint,
  };
}

function sameKeyFacts(a: KeyFacts, b: KeyFacts): boolean {
  return (
    a.renamesFingerprint === b.renamesFingerprint &&
    a.keyColumns.join('\u0000') === b.keyColumns.join('\u0000') &&
    a.keyTypes.join('\u0000') === b.keyTypes.join('\u0000') &&
    a.exactNumberColumns.join('\u0000') === b.exactNumberColumns.join('\u0000')
  );
}

function renamesFingerprint(count: number, highestId: string): string {
  return `${count}/${highestId}`;
}

/** Bounds the re-reads of key facts that change while one history query runs. */
const MAX_KEY_FACTS_RETRIES = 5;

/** Splits `"schema.table"`; a name without a dot is in `public`. Quoted dots are not supported. */
export function splitTableName(table: string): { schema: string; name: string } {
  const dot = table.indexOf('.');
  if (dot < 0) return { schema: 'public', name: table };
  return { schema: table.slice(0, dot), name: table.slice(dot + 1) };
}

function keyObjectValues(
  key: Record<string, KeyValue>,
  columns: readonly string[],
  table: string,
): string[] {
  const unknown = Object.keys(key).filter((name) => !columns.includes(name));
  const missing = columns.filter((name) => key[name] === undefined);
  if (unknown.length > 0 || missing.length > 0) {
    throw new HistoryQueryError(
      `table ${table} has key (${columns.join(', ')}); ` +
        [
          missing.length ? `missing ${missing.join(', ')}` : '',
          unknown.length ? `unknown ${unknown.join(', ')}` : '',
        ]
          .filter(Boolean)
          .join(', '),
    );
  }
  return columns.map((name) => keyValueText(key[name] as KeyValue));
}

function keyValueText(value: KeyValue): string {
  if (value === null || value === undefined)
    throw new HistoryQueryError('key values must not be null');
  if (value instanceof Date) return value.toISOString();
  return String(value);
}

function toInstantText(instant: Instant): string {
  if (instant instanceof Date) {
    if (Number.isNaN(instant.getTime())) throw new HistoryQueryError('instant is an invalid Date');
    return instant.toISOString();
  }
  return instant;
}

/** The row and version before, whose documents the next version may copy. */
interface PreviousVersion<Row> {
  readonly row: AuditLogRow;
  readonly version: Version<Row>;
}

/**
 * A row of the log as a version. Its documents are parsed from their text, or copied
 * from the previous version's (`previous`) when the text is the same: a copy costs a fifth
 * to an eighth of parsing the text again (BENCHMARKS 4), and it is a copy, so that changing
 * one version's row changes no other's. What repeats:
 * - on a log the kit captured, a version's old_row is the text of its key's previous
 *   version's new_row, the row before in a key's history;
 * - the versions of one transaction (transaction(), listings across keys) share their
 *   context row, so consecutive versions often have the same context text;
 * - a key's versions (history(), versionAt) have the same key text, and mostly the same
 *   changed columns.
 * Row documents only within one table: the same exact-number columns.
 */
function toVersion<Row>(
  row: AuditLogRow,
  schema: string,
  table: string,
  exact: readonly string[],
  previous: PreviousVersion<Row> | undefined,
): Version<Row> {
  const before = previous?.row;
  const earlier = previous?.version;
  const sameTable = before !== undefined && table === earlier!.table && schema === earlier!.schema;
  return {
    id: row.id,
    schema,
    table,
    key: (sameTable && row.row_key === before.row_key
      ? copyRowJson(earlier!.key)
      : rowDocument(row.row_key, exact)) as Partial<Row>,
    operation: row.operation,
    // One transaction's versions (transaction(), listings) share it: strings are immutable.
    commitTimestamp: (before !== undefined && row.commit_timestamp === before.commit_timestamp
      ? earlier!.commitTimestamp
      : commitTimeText(row.commit_timestamp)) as string,
    transactionId: row.transaction_id,
    changeSeq: row.change_seq,
    streamPosition: row.stream_position,
    oldRow: (sameTable && row.old_row !== null && row.old_row === before.new_row
      ? copyRowJson(earlier!.newRow)
      : rowDocument(row.old_row, exact)) as Row | null,
    newRow: rowDocument(row.new_row, exact) as Row | null,
    oldRowJsonNulls: jsonNulls(row.old_json_nulls),
    newRowJsonNulls: jsonNulls(row.new_json_nulls),
    changedColumns:
      row.changed_columns === null
        ? null
        : before !== undefined && row.changed_columns === before.changed_columns
          ? earlier!.changedColumns!.slice()
          : (parseTextArray(row.changed_columns) as unknown as Version<Row>['changedColumns']),
    context:
      row.context === null
        ? null
        : before !== undefined && row.context === before.context
          ? copyRowJson(earlier!.context)
          : versionContext(row.context),
  };
}

/**
 * The JSON-null list of a row without any (the audit log's NULL: it never stores an
 * empty one), shared by every such version.
 */
const NO_JSON_NULLS: readonly string[] = Object.freeze([]);

/** A JSON-null list from its text[] text (NO_JSON_NULLS for NULL). */
function jsonNulls(text: string | null): readonly string[] {
  return text === null ? NO_JSON_NULLS : (parseTextArray(text) as string[]);
}

/** A row document as the API returns it (a SQL NULL is null). */
function rowDocument(text: string | null, exactColumns: readonly string[]): unknown {
  return text === null ? null : parseRowDocument(text, exactColumns);
}

/**
 * The context of a version from its context row's document (contextJoin): the fields the
 * context table holds, each null when absent. In the order jsonb gave them when the server
 * built this object (shorter names first), so `history --json` prints them as before.
 */
function versionContext(text: string): VersionContext {
  const row = parseRowJson<unknown>(text);
  const fields = (
    row !== null && typeof row === 'object' && !Array.isArray(row) ? row : {}
  ) as Record<string, unknown>;
  return {
    actor: contextField(fields, AUDIT_CONTEXT_COLUMNS.actor),
    client: contextField(fields, AUDIT_CONTEXT_COLUMNS.client),
    reason: contextField(fields, AUDIT_CONTEXT_COLUMNS.reason),
    metadata: contextField(fields, 'metadata'),
    requestId: contextField(fields, AUDIT_CONTEXT_COLUMNS.requestId),
    onBehalfOf: contextField(fields, AUDIT_CONTEXT_COLUMNS.onBehalfOf),
  } as VersionContext;
}

/**
 * A context row's field, null when absent. A function of its own, not a closure made per
 * version: under tsx (the bench) each such closure also cost a `__name` call, 6% of a
 * first page's conversion.
 */
function contextField(fields: Record<string, unknown>, column: string): unknown {
  return Object.prototype.hasOwnProperty.call(fields, column) ? fields[column] : null;
}

/**
 * The context row a version's source transaction wrote: an INSERT into a table flagged
 * as the source context table with the same source xid AND the same commit time. xids
 * wrap (every 2^32 transactions), so the xid alone could name a transaction years
 * apart; the commit time (µs) of one source commit is shared by all its changes and by
 * nothing else. A replayed row adds no audit row (the log is idempotent), and the first
 * recorded row wins should a forged duplicate ever be there (verify reveals those).
 */
function contextJoin(auditSchema: string): RawBuilder<{ context: unknown }> {
  // The row's document as it is: the client picks the fields (versionContext). Building
  // the object here was about a fifth of a 100-version page's server CPU (BENCHMARKS 4).
  // A row without a document (none is written so) gives every field null, as before.
  // The context tables are read once per query (an uncorrelated ARRAY(...) is an InitPlan)
  // instead of joined to each version's context row: 4.5% less server CPU on a
  // 100-version page (BENCHMARKS 4).
  return sql`(
    SELECT coalesce(c.new_row, '{}') AS context
      FROM ${sql.id(auditSchema, 'audit_log')} AS c
     WHERE c.transaction_id = l.transaction_id
       AND c.commit_timestamp = l.commit_timestamp
       AND c.operation = 'INSERT'
       -- The context table's key: lets the planner use audit_log_context_commit_idx.
       AND c.row_key ? ${sql.lit(CONTEXT_TRANSACTION_COLUMN)}
       AND (c.source_schema, c.source_table) = ANY (ARRAY(
             SELECT (ct.source_schema, ct.source_table)
               FROM ${sql.id(auditSchema, 'audited_table')} AS ct
              WHERE ct.source_context))
     ORDER BY c.id
     LIMIT 1)`;
}

/** Turns the database's answers to bad input into HistoryQueryError. */
async function withFriendlyErrors<T>(work: () => Promise<T>): Promise<T> {
  try {
    return await work();
  } catch (error) {
    const code = (error as { code?: string }).code;
    // undefined_table / invalid_parameter_value from row_key_of; invalid input syntax
    // for a key value or an instant.
    if (
      code === '42P01' ||
      code === '22023' ||
      code === '22P02' ||
      code === '22007' ||
      code === '22008'
    ) {
      throw new HistoryQueryError((error as Error).message);
    }
    throw error;
  }
}

import type pg from 'pg';
import { AuditTrailError } from '../errors';
import { quoteLiteral, quoteQualified } from '../postgres/identifiers';
import { LOADED_TABLE_MIGRATION, LOADED_TABLE_TABLE, type PositionStore } from './position-store';
import type { StagingTable } from './staging-tables';

/** The kit's record of applied migrations (kysely's), in the audit schema. */
const MIGRATION_TABLE = 'kysely_migration';

/**
 * Which tables a slot loaded by an engine from before loads were recorded (migration
 * {@link LOADED_TABLE_MIGRATION}) had loaded, recorded as loaded; called when the slot has
 * a loaded position but records no loaded table at all.
 *
 * The evidence must be something no staging writer can make. A staging row is not: DMS's
 * login (the writer role) may insert one before the new engine's first start, and a table
 * taken as loaded for it would never be copied, silently. What the writer cannot make is
 * an audit row recorded before that migration was applied: `recorded_at` is the capture
 * trigger's clock (the column's default; only the capture role inserts audit rows), and
 * the migration's applied time is in the kit's migration table, which only the owner
 * writes. So:
 * - a table whose staging table is empty was never applied to: not loaded (it is loaded
 *   now, as an added table; migrate empties a table added back for the same reason);
 * - one with staging rows and an audit row recorded before the migration: loaded by the
 *   engine of then (or streamed since then, as an older engine did for a table added to
 *   its config: taken as loaded, as it always was, and `verify` reports rows it lacks);
 * - one with staging rows and no such audit row: cannot be told apart from a forged row
 *   (or a change an older engine applied after migrate ran), so the engine refuses, names
 *   the tables and the two ways out, and records nothing (the refusal holds until then).
 *
 * The migration's time is migrate's clock, the audit rows' the target's: a skew between
 * them moves the line by as much. History the engine of then loaded is older than the
 * upgrade by far more than a clock's skew.
 * @returns the tables now recorded as loaded
 * @throws {@link LoadNotRecordedError} naming the tables that cannot be told
 */
export async function recordLegacyLoads(
  target: pg.ClientBase,
  tables: readonly StagingTable[],
  positions: PositionStore,
): Promise<StagingTable[]> {
  const applied: StagingTable[] = [];
  for (const table of tables) {
    const { rowCount } = await target.query(`SELECT 1 FROM ${table.qualifiedName} LIMIT 1`);
    if (rowCount) applied.push(table);
  }
  if (applied.length === 0) return [];
  const evidenced = await recordedBeforeLoadRecords(target, positions.auditSchema, applied);
  const unknown = applied.filter((table) => !evidenced.has(sourceKey(table)));
  if (unknown.length > 0)
    throw new LoadNotRecordedError(positions.slot, positions.auditSchema, unknown, applied);
  await positions.markLoaded(
    target,
    applied.map((table) => table.source),
  );
  return applied;
}

/** `schema\0table` of the tables with an audit row recorded before load records began. */
async function recordedBeforeLoadRecords(
  target: pg.ClientBase,
  auditSchema: string,
  tables: readonly StagingTable[],
): Promise<Set<string>> {
  // The engine's session looks names up in pg_catalog only: its operators and unnest are
  // the catalog's. No migration row (never expected) gives no time: nothing is evidenced.
  const { rows } = await target.query<{ source_schema: string; source_table: string }>(
    `SELECT u.s AS source_schema, u.t AS source_table
       FROM unnest($1::text[], $2::text[]) AS u(s, t)
      WHERE EXISTS (
        SELECT FROM ${quoteQualified(auditSchema, 'audit_log')} AS a
         WHERE a.source_schema = u.s AND a.source_table = u.t
           AND a.recorded_at < (SELECT m."timestamp"::timestamptz
                                  FROM ${quoteQualified(auditSchema, MIGRATION_TABLE)} AS m
                                 WHERE m.name = $3))`,
    [
      tables.map((table) => table.source.schema),
      tables.map((table) => table.source.table),
      LOADED_TABLE_MIGRATION,
    ],
  );
  return new Set(rows.map((row) => `${row.source_schema}\u0000${row.source_table}`));
}

function sourceKey(table: StagingTable): string {
  return `${table.source.schema}\u0000${table.source.table}`;
}

/**
 * A slot loaded before loads were recorded has staging rows in a table with no audit row
 * from before then ({@link recordLegacyLoads}): whether its engine loaded the table cannot
 * be told. The hint gives both ways out: reload the tables, or, for an operator who knows
 * they were loaded, the statement that records every table with staging rows as loaded.
 */
export class LoadNotRecordedError extends AuditTrailError {
  override readonly name = 'LoadNotRecordedError';
  constructor(
    readonly slot: string,
    auditSchema: string,
    unknown: readonly StagingTable[],
    applied: readonly StagingTable[],
  ) {
    const names = unknown.map((table) => `${table.source.schema}.${table.source.table}`);
    const one = unknown.length === 1;
    const them = one ? 'it' : 'them';
    const record =
      `INSERT INTO ${quoteQualified(auditSchema, LOADED_TABLE_TABLE)} (slot_name, source_schema, source_table) VALUES ` +
      applied
        .map((table) =>
          [slot, table.source.schema, table.source.table].map(quoteLiteral).join(', '),
        )
        .map((values) => `(${values})`)
        .join(', ') +
      ' ON CONFLICT DO NOTHING';
    super(
      `replication slot "${slot}" records no loaded table (an engine from before migration ` +
        `${LOADED_TABLE_MIGRATION} loaded it), and the staging ${one ? 'table' : 'tables'} of ` +
        `${names.join(', ')} ${one ? 'has' : 'have'} rows but no audit row recorded before ` +
        `that migration: whether the engine loaded ${them} cannot be told (a row written to ` +
        "staging since, by DMS's login or by hand, looks the same); nothing was applied",
      {
        code: 'LOAD_NOT_RECORDED',
        kind: 'finding',
        hint:
          `reload ${names.join(', ')}: remove ${them} from the config, run audit-trail migrate, ` +
          `add ${them} back and run migrate again; the engine then loads ${them}, recording a ` +
          'SNAPSHOT for each row that differs from its history and a DELETE for each key the ' +
          'source does not have. If an engine did load every table that has staging rows, ' +
          `record that instead, as the target's administrator: ${record}`,
      },
    );
  }
}

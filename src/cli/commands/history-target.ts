import { sql, type Kysely } from 'kysely';
import type { AuditTrailConfig } from '../../config';
import { quoteIdent } from '../../postgres/identifiers';
import { CliError, UsageError } from '../errors';

/** What a command may ask the target besides the history API. */
export interface TargetAccess {
  /** Throws a finding when `table` (schema.table) has no history on this target. */
  assertAudited(table: string): Promise<void>;
  /** Every table with history on this target, as schema.table, sorted. */
  auditedTables(): Promise<string[]>;
}

/** {@link TargetAccess} over the target's registry of audited tables. */
export function targetAccess(db: Kysely<unknown>, auditSchema: string): TargetAccess {
  return {
    async assertAudited(table) {
      const { rows } = await sql<{ found: number }>`
        SELECT count(*)::int AS found FROM ${sql.id(auditSchema, 'audited_table')}
         WHERE source_schema || '.' || source_table = ${table}`.execute(db);
      if (rows[0]?.found === 0)
        throw new CliError(`${table} is not an audited table on this target`, {
          code: 'HISTORY_QUERY',
          hint: 'audit it by listing it in the config and running audit-trail migrate',
        });
    },
    async auditedTables() {
      const { rows } = await sql<{ name: string }>`
        SELECT source_schema || '.' || source_table AS name
          FROM ${sql.id(auditSchema, 'audited_table')} ORDER BY source_schema, source_table`.execute(
        db,
      );
      return rows.map((row) => row.name);
    },
  };
}

/**
 * History reads the target's registry, not the config: an access-audit-only config (no
 * tables) may still name a target holding the history of tables once listed, and
 * `history` answers from it. A target without that history is refused (exit 2) before
 * any history query, instead of an empty answer or a raw SQL error; with tables in the
 * config nothing is checked here (a missing table is the history API's finding).
 */
export async function requireHistoryOnTarget(
  db: Kysely<unknown>,
  config: Pick<AuditTrailConfig, 'auditSchema' | 'tables'>,
): Promise<void> {
  if (config.tables.length > 0) return;
  const registry = `${quoteIdent(config.auditSchema)}.audited_table`;
  const { rows } = await sql<{ exists: boolean }>`
    SELECT pg_catalog.to_regclass(${registry}) IS NOT NULL AS exists`.execute(db);
  const missing = rows[0]?.exists !== true;
  const audited = missing
    ? 0
    : ((
        await sql<{ count: number }>`
          SELECT count(*)::int AS count FROM ${sql.id(config.auditSchema, 'audited_table')}`.execute(
          db,
        )
      ).rows[0]?.count ?? 0);
  if (audited > 0) return;
  throw new UsageError(
    `history: the config has no tables (an access-audit-only config) and the target holds no change history (${config.auditSchema}.audited_table ${missing ? 'does not exist' : 'lists no table'}): give the target that holds it (--target-url/--target-arn), or list the tables to audit in "tables"`,
  );
}

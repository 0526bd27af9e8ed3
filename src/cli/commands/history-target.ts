import { sql, type Kysely } from 'kysely';
import { CliError } from '../errors';

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

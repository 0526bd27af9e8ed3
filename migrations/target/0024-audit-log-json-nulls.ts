import { sql, type Kysely, type Migration } from 'kysely';
import { RELOAD_BASELINE_TABLE } from '../../src/staging/reload-baseline';

/**
 * Which jsonb values of a version are the JSON null literal. A row document records a
 * jsonb column as its value, so `'null'::jsonb` and SQL NULL are both JSON null there;
 * `old_json_nulls` / `new_json_nulls` name the jsonb columns of `old_row` / `new_row` that
 * hold the literal (sorted by name, byte order; NULL when none), so an UPDATE from one to
 * the other is a version and history tells them apart. (A json column needs no list: its
 * document value is its exact text, the literal the string `"null"`.) The reload baseline
 * keeps the list of its row as `row_json_nulls`.
 *
 * Nullable columns without a default: adding them rewrites nothing, and every row
 * recorded before holds NULL, its canonical text (and so the hash chain) unchanged.
 */
export function auditLogJsonNullsMigration(auditSchema: string): Migration {
  return {
    async up(db: Kysely<unknown>) {
      await sql`ALTER TABLE ${sql.id(auditSchema, 'audit_log')}
        ADD COLUMN old_json_nulls text[], ADD COLUMN new_json_nulls text[]`.execute(db);
      await sql`ALTER TABLE ${sql.id(auditSchema, RELOAD_BASELINE_TABLE)}
        ADD COLUMN row_json_nulls text[]`.execute(db);
    },
  };
}

import { sql, type Kysely, type Migration } from 'kysely';

/**
 * Which audit versions a column change applies to. A version's row holds the columns
 * its staging table had when it was recorded, and migrate changes staging columns while
 * holding the staging table's exclusive lock, so no version of the table is being
 * written meanwhile: the versions with `id <= last_audit_id` have the shape from before
 * the change, the later ones the shape after it. Verify and the history API read old
 * versions through the changes after them with it (a renamed key column, a column added
 * with a value for the existing rows). NULL for changes logged before this migration
 * (then `detected_at` bounds them, as `recorded_at` does the versions).
 */
export function schemaChangeVersionBoundaryMigration(auditSchema: string): Migration {
  return {
    async up(db: Kysely<unknown>) {
      await sql`ALTER TABLE ${sql.id(auditSchema, 'schema_change')}
        ADD COLUMN last_audit_id bigint`.execute(db);
    },
  };
}

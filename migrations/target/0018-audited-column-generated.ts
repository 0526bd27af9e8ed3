import { sql, type Kysely, type Migration } from 'kysely';

/**
 * `audited_column.generated`: migrate also remembers a source table's generated columns
 * (left out of staging and history: pgoutput does not send them). A generated column
 * made plain later (`ALTER COLUMN ... DROP EXPRESSION`) looks in the catalog exactly
 * like a column just added without a default, yet every row already holds a value
 * the source computed, written by no change: migrate refuses it with the remedy rather
 * than log and stage NULLs (#17 items 5 and 21). Rows from before this migration are
 * plain columns; generated ones are recorded from the next migrate on.
 */
export function auditedColumnGeneratedMigration(auditSchema: string): Migration {
  return {
    async up(db: Kysely<unknown>) {
      await sql`ALTER TABLE ${sql.id(auditSchema, 'audited_column')}
        ADD COLUMN generated boolean NOT NULL DEFAULT false`.execute(db);
    },
  };
}

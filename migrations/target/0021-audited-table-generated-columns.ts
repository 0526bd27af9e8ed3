import { sql, type Kysely, type Migration } from 'kysely';

/**
 * `audited_table.generated_columns`: the staging table's placeholder columns for the
 * source's generated columns (see src/staging/generated-placeholders.ts). AWS DMS
 * writes generated columns into staging (test_decoding prints them), so staging keeps a
 * column for each, which the capture functions leave out of history like ignored
 * columns; the registry names them so that `assert_capture_call` accepts exactly these
 * extra exclusions in a capture trigger's arguments, and verify leaves them out of
 * staging's rows. Empty until the next migrate adds the placeholders (#17 item 5).
 */
export function auditedTableGeneratedColumnsMigration(auditSchema: string): Migration {
  return {
    async up(db: Kysely<unknown>) {
      await sql`ALTER TABLE ${sql.id(auditSchema, 'audited_table')}
        ADD COLUMN generated_columns text[] NOT NULL DEFAULT '{}'`.execute(db);
    },
  };
}

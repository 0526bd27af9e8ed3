import { sql, type Kysely, type Migration } from 'kysely';

/**
 * Marks the registry entry of the source context table (`sourceContext` in the config):
 * history joins each version to the context row its source transaction wrote there.
 * Kept true once set, so history written while a table was the context table keeps its
 * context if the config later names another one.
 */
export function sourceContextMigration(auditSchema: string): Migration {
  return {
    async up(db: Kysely<unknown>) {
      await sql`ALTER TABLE ${sql.id(auditSchema, 'audited_table')}
        ADD COLUMN source_context boolean NOT NULL DEFAULT false`.execute(db);
    },
  };
}

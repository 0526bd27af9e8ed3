import { sql, type Kysely, type Migration } from 'kysely';
import { KIT_SQL_FILE_TABLE } from '../../src/migrate/sql-files';

/**
 * The record of the kit's repeatable SQL (`triggers/*.sql`): which file was installed
 * with which checksum, so `migrate` re-installs exactly the files a kit upgrade changed.
 * Installs from release 0.1.0 have no rows yet, so every file is installed once.
 */
export function kitSqlFileMigration(auditSchema: string): Migration {
  return {
    async up(db: Kysely<unknown>) {
      await db.schema
        .withSchema(auditSchema)
        .createTable(KIT_SQL_FILE_TABLE)
        .addColumn('file', 'text', (col) => col.primaryKey())
        // sha256 of the file as installed (audit schema filled in).
        .addColumn('checksum', 'text', (col) => col.notNull())
        .addColumn('installed_at', sql`timestamptz(6)`, (col) =>
          col.notNull().defaultTo(sql`clock_timestamp()`),
        )
        .execute();
      await sql`REVOKE ALL ON ${sql.id(auditSchema, KIT_SQL_FILE_TABLE)} FROM PUBLIC`.execute(db);
    },
  };
}

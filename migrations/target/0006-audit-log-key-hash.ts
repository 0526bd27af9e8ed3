import { sql, type Kysely, type Migration } from 'kysely';

/**
 * The per-key history index holds a hash of the row key instead of the key: a btree
 * entry is limited to about 2.7 kB, and a text key the source accepts (up to that size
 * uncompressed, larger when it compresses) made every audit insert for it fail, which
 * stopped the pipeline for good. `jsonb_hash_extended` is the hash of jsonb's own
 * equality (so numeric keys 2 and 2.00 hash alike, as they are one key) and is stable
 * across releases (hash indexes are kept by pg_upgrade). Queries match the hash and
 * then the key itself, so a collision costs a row read, never a wrong answer.
 */
export function auditLogKeyHashMigration(auditSchema: string): Migration {
  return {
    async up(db: Kysely<unknown>) {
      await sql`DROP INDEX IF EXISTS ${sql.id(auditSchema, 'audit_log_key_history_idx')}`.execute(
        db,
      );
      await sql`CREATE INDEX audit_log_key_hash_history_idx ON ${sql.id(auditSchema, 'audit_log')}
        (source_schema, source_table, jsonb_hash_extended(row_key, 0), commit_timestamp,
         change_seq NULLS FIRST, id)`.execute(db);
    },
  };
}

import { sql, type Kysely, type Migration } from 'kysely';
import { RELOAD_BASELINE_TABLE } from '../../src/staging/reload-baseline';

/**
 * The prior baseline of a table added back to the config (#17 item 19): for each key
 * whose newest audit version is live, that version's row, as the audit log holds it.
 * `migrate` fills it when the table comes back (and empties the kept staging table);
 * the capture trigger records a full-load row of the reload as a SNAPSHOT only when it
 * differs from its key's baseline row, and marks the key reloaded; `finish_reload`
 * records a DELETE for each key not reloaded and empties the table's baseline.
 *
 * Keys of any size: the index holds a hash of the key (as the audit log's does), and
 * lookups match the hash and then the key.
 */
export function reloadBaselineMigration(auditSchema: string): Migration {
  return {
    async up(db: Kysely<unknown>) {
      const table = sql.id(auditSchema, RELOAD_BASELINE_TABLE);
      await sql`CREATE TABLE ${table} (
        source_schema text NOT NULL,
        source_table text NOT NULL,
        row_key jsonb NOT NULL,
        row_data jsonb NOT NULL,
        reloaded_at timestamp(6),
        taken_at timestamptz NOT NULL DEFAULT now()
      )`.execute(db);
      await sql`CREATE INDEX reload_baseline_key_hash_idx ON ${table}
        (source_schema, source_table, jsonb_hash_extended(row_key, 0))`.execute(db);
      await sql`REVOKE ALL ON ${table} FROM PUBLIC`.execute(db);
    },
  };
}

import { sql, type Kysely, type Migration } from 'kysely';
import { RELOAD_BASELINE_TABLE } from '../../src/staging/reload-baseline';

/**
 * Whether a pending reload has copied any row yet: the rows its load copied are the
 * baseline rows with `reloaded_at` set (keys of the prior baseline, and keys new to the
 * table, which the load adds). The capture triggers ask it for every staging change with
 * a change sequence while a reload is pending, and end the reload only when the answer
 * is yes (a DMS task running CDC only copies nothing: its changes must not end it). A
 * partial index makes the answer one probe, whatever the size of the baseline.
 */
export function reloadBaselineCopiedMigration(auditSchema: string): Migration {
  return {
    async up(db: Kysely<unknown>) {
      await sql`CREATE INDEX reload_baseline_copied_idx ON ${sql.id(auditSchema, RELOAD_BASELINE_TABLE)}
        (source_schema, source_table) WHERE reloaded_at IS NOT NULL`.execute(db);
    },
  };
}

import { sql, type Kysely, type Migration } from 'kysely';
import { SCHEMA_CHANGE_POSITION_TABLE } from '../../src/engine/schema-change-positions';

/**
 * Where each logged column change sits in the source's history, as the local engine
 * learns it: the commit LSN and commit time of the first source transaction it applied
 * in the change's new shape (the change committed in it or before it). `schema_change`
 * is append-only and migrate logs a change before the engine applies anything in the
 * new shape (it cannot: staging lacks the shape), so the position is a row of its own,
 * joined by the history API. Append-only (triggers/schema-change-log.sql).
 *
 * Changes logged before this migration are recorded with no position: the engine may
 * have applied their new shape long ago, and positioning them now would date them at
 * today's first change.
 */
export function schemaChangePositionMigration(auditSchema: string): Migration {
  return {
    async up(db: Kysely<unknown>) {
      const table = sql.id(auditSchema, SCHEMA_CHANGE_POSITION_TABLE);
      await sql`CREATE TABLE ${table} (
        schema_change_id bigint PRIMARY KEY
          REFERENCES ${sql.id(auditSchema, 'schema_change')} (id),
        -- The engine's slot; NULL with the position (a change logged before positions were).
        slot_name text,
        commit_lsn pg_lsn,
        commit_timestamp timestamptz(6),
        recorded_at timestamptz(6) NOT NULL DEFAULT clock_timestamp(),
        CHECK ((commit_lsn IS NULL) = (commit_timestamp IS NULL)
               AND (commit_lsn IS NULL) = (slot_name IS NULL))
      )`.execute(db);
      await sql`REVOKE ALL ON ${table} FROM PUBLIC`.execute(db);
      await sql`INSERT INTO ${table} (schema_change_id)
        SELECT id FROM ${sql.id(auditSchema, 'schema_change')}`.execute(db);
    },
  };
}

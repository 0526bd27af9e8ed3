import { sql, type Kysely, type Migration } from 'kysely';
import { LOADED_TABLE_TABLE } from '../../src/engine/position-store';

/**
 * Which audited tables the local engine has initially loaded, per slot: a table added
 * to the config after the engine's first run is loaded when the engine next starts,
 * consistently with the running stream.
 */
export function cdcEngineLoadedTableMigration(auditSchema: string): Migration {
  return {
    async up(db: Kysely<unknown>) {
      await sql`CREATE TABLE ${sql.id(auditSchema, LOADED_TABLE_TABLE)} (
        slot_name text NOT NULL,
        source_schema text NOT NULL,
        source_table text NOT NULL,
        loaded_at timestamptz NOT NULL DEFAULT now(),
        PRIMARY KEY (slot_name, source_schema, source_table)
      )`.execute(db);
      await sql`REVOKE ALL ON ${sql.id(auditSchema, LOADED_TABLE_TABLE)} FROM PUBLIC`.execute(db);
    },
  };
}

import { sql, type Kysely, type Migration } from 'kysely';
import { POSITION_TABLE } from '../../src/engine/position-store';

/**
 * The local engine's position table, created by migrate from now on so that later
 * changes to it are migrations too. Release 0.1.0 let the engine create it on first
 * start, hence IF NOT EXISTS (the only place a migration may guess: the shape is that
 * release's, the same either way).
 */
export function cdcEnginePositionMigration(auditSchema: string): Migration {
  return {
    async up(db: Kysely<unknown>) {
      await sql`CREATE TABLE IF NOT EXISTS ${sql.id(auditSchema, POSITION_TABLE)} (
        slot_name text PRIMARY KEY,
        initial_load_done boolean NOT NULL DEFAULT false,
        last_commit_lsn pg_lsn NOT NULL DEFAULT '0/0',
        last_end_lsn pg_lsn NOT NULL DEFAULT '0/0',
        last_seq_prefix text NOT NULL DEFAULT '',
        last_seq_counter numeric(20) NOT NULL DEFAULT 0,
        updated_at timestamptz NOT NULL DEFAULT now()
      )`.execute(db);
      await sql`REVOKE ALL ON ${sql.id(auditSchema, POSITION_TABLE)} FROM PUBLIC`.execute(db);
    },
  };
}

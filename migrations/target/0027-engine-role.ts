import { sql, type Kysely, type Migration } from 'kysely';
import { PARTITION_CHANGE_TABLE, schemaChangeIds } from '../../src/engine/partition-changes';
import { LOADED_PARTITION_TABLE } from '../../src/engine/partition-loading';
import { LOADED_TABLE_TABLE, POSITION_TABLE } from '../../src/engine/position-store';
import { SCHEMA_CHANGE_POSITION_TABLE } from '../../src/engine/schema-change-positions';
import type { KitRoles } from '../../src/trust/roles';

/**
 * The local engine's bookkeeping moves from the writer role to the engine role (created
 * by this migrate, before its migrations run). Until now writer, which DMS's target
 * login holds too, could insert and update the engine's stored position and its record
 * of what it loaded: a login with only writer could move the position on within the WAL
 * the source has written, or record a table as loaded, and the engine then skipped
 * changes without a word. Writer keeps staging DML (what DMS needs) and the reload's
 * `finish_reload` and `reload_baseline` (`audit-trail reload finish` as DMS's login).
 *
 * Each privilege writer held for the engine (granted by `secureInstall` before this
 * migration) is revoked from it (all privileges on those objects, so nothing granted
 * there beside them stays either) and granted to the engine role in the same
 * transaction, so an engine login given the engine role keeps working through the
 * upgrade. From here on `secureInstall` grants the engine role its set on every migrate.
 * An engine login that holds only writer stops at its next start and names the role to
 * grant (README "Upgrading past migration 0027").
 */
export function engineRoleMigration(auditSchema: string, roles: KitRoles): Migration {
  return {
    async up(db: Kysely<unknown>) {
      const writer = sql.id(roles.writer);
      const engine = sql.id(roles.engine);
      const table = (name: string) => sql.id(auditSchema, name);
      const engineTables = [
        POSITION_TABLE,
        LOADED_TABLE_TABLE,
        LOADED_PARTITION_TABLE,
        SCHEMA_CHANGE_POSITION_TABLE,
        PARTITION_CHANGE_TABLE,
        'schema_change',
        'audited_table',
      ].map(table);
      const ids = sql.raw(await schemaChangeIds(db, auditSchema));
      await sql`REVOKE ALL ON TABLE ${sql.join(engineTables)} FROM ${writer}`.execute(db);
      await sql`REVOKE ALL ON SEQUENCE ${ids} FROM ${writer}`.execute(db);
      for (const statement of [
        sql`GRANT SELECT, INSERT, UPDATE ON ${table(POSITION_TABLE)} TO ${engine}`,
        sql`GRANT SELECT, INSERT ON ${table(LOADED_TABLE_TABLE)}, ${table(LOADED_PARTITION_TABLE)},
              ${table(SCHEMA_CHANGE_POSITION_TABLE)}, ${table(PARTITION_CHANGE_TABLE)} TO ${engine}`,
        sql`GRANT UPDATE (attachment, bound, detached_at) ON ${table(LOADED_PARTITION_TABLE)} TO ${engine}`,
        sql`GRANT USAGE ON SEQUENCE ${ids} TO ${engine}`,
        sql`GRANT SELECT ON ${table('schema_change')} TO ${engine}`,
        sql`GRANT SELECT (source_schema, source_table, generated_columns)
              ON ${table('audited_table')} TO ${engine}`,
      ])
        await statement.execute(db);
    },
  };
}

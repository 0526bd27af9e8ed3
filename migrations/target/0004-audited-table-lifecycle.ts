import { sql, type Kysely, type Migration } from 'kysely';

/**
 * What the registry of audited tables needs once a table can leave the config:
 * - `removed_at`: when migrate found the table gone from the config (NULL while it is
 *   configured). Its history stays readable;
 * - `staging_table` may be NULL: `migrate --drop-staging` dropped it;
 * - `key_types`: the key columns' types (what the history API casts key values to), so
 *   history by key does not depend on the staging table existing. Filled from staging.
 */
export function auditedTableLifecycleMigration(auditSchema: string): Migration {
  return {
    async up(db: Kysely<unknown>) {
      const registry = sql.id(auditSchema, 'audited_table');
      await sql`ALTER TABLE ${registry}
        ADD COLUMN removed_at timestamptz(6),
        ADD COLUMN key_types text[],
        ALTER COLUMN staging_table DROP NOT NULL`.execute(db);
      await sql`UPDATE ${registry} AS t SET key_types = (
          SELECT array_agg(format_type(a.atttypid, a.atttypmod) ORDER BY k.position)
          FROM unnest(t.key_columns) WITH ORDINALITY AS k(name, position)
          JOIN pg_catalog.pg_attribute a ON a.attrelid = t.staging_table AND a.attname = k.name
        )`.execute(db);
      await sql`ALTER TABLE ${registry} ALTER COLUMN key_types SET NOT NULL`.execute(db);
    },
  };
}

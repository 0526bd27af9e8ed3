import { sql, type Kysely } from 'kysely';

/**
 * Refuses an invalid index of the name a migration is about to create `IF NOT EXISTS`
 * (what a failed or cancelled `CREATE INDEX CONCURRENTLY` leaves): the planner never
 * uses one, and rebuilding it inside migrate's transaction would block the audit-log
 * writes the operator meant to spare by building it concurrently.
 * @param index the index's schema-qualified, quoted name
 */
export async function refuseInvalidIndex(db: Kysely<unknown>, index: string): Promise<void> {
  const { rows } = await sql<{ valid: boolean }>`
    SELECT i.indisvalid AS valid FROM pg_catalog.pg_index i
     WHERE i.indexrelid = pg_catalog.to_regclass(${index})`.execute(db);
  if (rows[0]?.valid === false) {
    throw new Error(
      `${index} is invalid (a CREATE INDEX CONCURRENTLY that failed or was cancelled left it): ` +
        `run DROP INDEX CONCURRENTLY ${index}, build it again as the README's ` +
        '"Upgrading the kit" shows (or let migrate build it), then run migrate again',
    );
  }
}

import { sql, type Kysely } from 'kysely';

/**
 * Refuses an invalid index of the name a migration is about to create `IF NOT EXISTS`
 * (what a failed or cancelled `CREATE INDEX CONCURRENTLY` leaves): the planner never
 * uses one, and rebuilding it inside migrate's transaction would block the audit-log
 * writes the operator meant to spare by building it concurrently. One whose concurrent
 * build is still running is invalid too until the build ends: that refusal says to let it
 * finish (the other's remedy, DROP INDEX CONCURRENTLY, would wait for the build and drop
 * the index it had just built). pg_stat_progress_create_index shows the build to the
 * role that runs it, which the README has be migrate's (the audit log's owner).
 * @param index the index's schema-qualified, quoted name
 */
export async function refuseInvalidIndex(db: Kysely<unknown>, index: string): Promise<void> {
  const { rows } = await sql<{ valid: boolean; builder: number | null }>`
    SELECT i.indisvalid AS valid,
           (SELECT p.pid FROM pg_catalog.pg_stat_progress_create_index p
             WHERE p.index_relid OPERATOR(pg_catalog.=) i.indexrelid LIMIT 1) AS builder
      FROM pg_catalog.pg_index i
     WHERE i.indexrelid = pg_catalog.to_regclass(${index})`.execute(db);
  const builder = rows[0]?.builder;
  if (rows[0]?.valid === false && builder != null) {
    throw new Error(
      `${index} is still being built (a CREATE INDEX CONCURRENTLY in progress, backend pid ` +
        `${builder}): let it finish, then run migrate again`,
    );
  }
  if (rows[0]?.valid === false) {
    throw new Error(
      `${index} is invalid (a CREATE INDEX CONCURRENTLY that failed or was cancelled left it): ` +
        `run DROP INDEX CONCURRENTLY ${index}, build it again as the README's ` +
        '"Upgrading the kit" shows (or let migrate build it), then run migrate again',
    );
  }
}

import { sql, type Kysely, type Migration } from 'kysely';

/**
 * `changesBy(actor, from, to)` and `changesBetween(..., { actor })` start from the
 * actor's context rows in the time range (the INSERT versions of the source context
 * table) and follow their transactions through `audit_log_transaction_idx`. This index
 * finds those rows by actor and commit time instead of scanning every version in the
 * range. Partial: only INSERT versions whose row has an `actor` (the context table's
 * rows, and those of any audited table with an `actor` column), so the capture path
 * maintains it for few rows; the query's `new_row ->> 'actor' = $1` implies the
 * predicate, so the planner can use it.
 */
export function contextActorIndexMigration(auditSchema: string): Migration {
  return {
    async up(db: Kysely<unknown>) {
      await sql`CREATE INDEX audit_log_context_actor_idx ON ${sql.id(auditSchema, 'audit_log')}
        ((new_row ->> 'actor'), commit_timestamp)
        WHERE operation = 'INSERT' AND (new_row ->> 'actor') IS NOT NULL`.execute(db);
    },
  };
}

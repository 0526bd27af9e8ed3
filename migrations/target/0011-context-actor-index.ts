import { sql, type Kysely, type Migration } from 'kysely';
import { quoteQualified } from '../../src/postgres/identifiers';
import { refuseInvalidIndex } from './invalid-index';

/**
 * `changesBy(actor, from, to)` and `changesBetween(..., { actor })` start from the
 * actor's context rows in the time range (the INSERT versions of the source context
 * table) and follow their transactions through `audit_log_transaction_idx`. This index
 * finds those rows by actor and commit time instead of scanning every version in the
 * range. Partial: only INSERT versions whose row has an `actor` (the context table's
 * rows, and those of any audited table with an `actor` column), so the capture path
 * maintains it for few rows; the query's `new_row ->> 'actor' = $1` implies the
 * predicate, so the planner can use it.
 *
 * `IF NOT EXISTS`: the migration runs in a transaction, where CONCURRENTLY cannot, so
 * the build holds off audit-log writes; on a big log the README has the operator build
 * the same index CONCURRENTLY before migrate, and this keeps it. An invalid index of
 * that name (a failed or cancelled concurrent build) is refused: the planner never
 * uses one, and rebuilding it here would block the writes the operator meant to spare.
 * (Added after 0011 first landed; kysely records a migration's name, not its text, so
 * installs that ran it are unaffected, and on any other the result is the same index.)
 */
export function contextActorIndexMigration(auditSchema: string): Migration {
  return {
    async up(db: Kysely<unknown>) {
      const index = quoteQualified(auditSchema, 'audit_log_context_actor_idx');
      await refuseInvalidIndex(db, index);
      await sql`CREATE INDEX IF NOT EXISTS ${sql.id('audit_log_context_actor_idx')} ON ${sql.id(auditSchema, 'audit_log')}
        ((new_row ->> 'actor'), commit_timestamp)
        WHERE operation = 'INSERT' AND (new_row ->> 'actor') IS NOT NULL`.execute(db);
    },
  };
}

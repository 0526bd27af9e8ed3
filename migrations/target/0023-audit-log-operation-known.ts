import { sql, type Kysely, type Migration } from 'kysely';
import { quoteQualified } from '../../src/postgres/identifiers';

/** The constraint {@link auditLogOperationKnownMigration} puts in place of 0001's. */
export const OPERATION_KNOWN_CONSTRAINT = 'audit_log_operation_known';

/** Its definition as `pg_get_constraintdef` prints it once validated. */
export const OPERATION_KNOWN_DEFINITION =
  "CHECK ((operation = ANY ('{SNAPSHOT,INSERT,UPDATE,DELETE}'::text[])))";

/**
 * The audit log's operation check, the same condition in a form that costs less per audit
 * insert statement. PostgreSQL reads a table's `CHECK` back from its stored text and
 * prepares it once per executor start, and the capture functions start one per change on
 * DMS's one-row path. 0001's `operation IN ('SNAPSHOT', ...)` is stored as an array of four
 * constants (40.4k instructions to read and prepare); one array constant is 26.6k
 * (BENCHMARKS.md 3b: DMS one-row path 1,412.4k -> 1,399.2k instructions per change).
 *
 * Added before 0001's is dropped, so no row is ever inserted unchecked. `ADD CONSTRAINT`
 * validates every audit row while holding the audit log's exclusive lock (to the end of
 * migrate's transaction): on a big log the README has the operator add and validate it
 * first without blocking, and this keeps it (validating it here if that step stopped
 * half-way). A constraint of that name with any other definition is refused.
 */
export function auditLogOperationKnownMigration(auditSchema: string): Migration {
  return {
    async up(db: Kysely<unknown>) {
      const table = sql.id(auditSchema, 'audit_log');
      const { rows } = await sql<{ definition: string; validated: boolean }>`
        SELECT pg_catalog.pg_get_constraintdef(c.oid) AS definition, c.convalidated AS validated
          FROM pg_catalog.pg_constraint AS c
         WHERE c.conrelid = ${quoteQualified(auditSchema, 'audit_log')}::regclass
           AND c.conname = ${OPERATION_KNOWN_CONSTRAINT}`.execute(db);
      const existing = rows[0];
      if (!existing) {
        await sql`ALTER TABLE ${table} ADD CONSTRAINT ${sql.id(OPERATION_KNOWN_CONSTRAINT)}
          CHECK (operation = ANY ('{SNAPSHOT,INSERT,UPDATE,DELETE}'::text[]))`.execute(db);
      } else {
        const definition = existing.definition.replace(/ NOT VALID$/, '');
        if (definition !== OPERATION_KNOWN_DEFINITION) {
          throw new Error(
            `${auditSchema}.audit_log has a constraint ${OPERATION_KNOWN_CONSTRAINT} that is not the kit's ` +
              `(${existing.definition}): drop it, add it as the README's "Upgrading the kit" shows ` +
              '(or let migrate add it), then run migrate again',
          );
        }
        if (!existing.validated) {
          await sql`ALTER TABLE ${table} VALIDATE CONSTRAINT ${sql.id(OPERATION_KNOWN_CONSTRAINT)}`.execute(
            db,
          );
        }
      }
      await sql`ALTER TABLE ${table} DROP CONSTRAINT IF EXISTS ${sql.id('audit_log_operation_check')}`.execute(
        db,
      );
    },
  };
}

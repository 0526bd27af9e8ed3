import { sql, type Kysely } from 'kysely';
import type { AuditTrailConfig } from '../config';

/**
 * Flags the config's source context table in the target registry, which history reads
 * to join versions to their context. Never unflags (see migration 0010).
 */
export async function markSourceContextTable(
  target: Kysely<unknown>,
  config: AuditTrailConfig,
): Promise<void> {
  const context = config.sourceContext;
  if (context === undefined) return;
  await sql`UPDATE ${sql.id(config.auditSchema, 'audited_table')} SET source_context = true
    WHERE source_schema = ${context.schema} AND source_table = ${context.table}
      AND NOT source_context`.execute(target);
}

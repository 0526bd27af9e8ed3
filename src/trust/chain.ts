import { sql, type Transaction } from 'kysely';

/**
 * Starts the chain of an install that has none yet: block 0 and, on an install from
 * before the chain, genesis blocks sealing the rows already in the log, at most 10,000
 * rows each (`seal_blocks` in triggers/trust.sql; attested from now on: `verify
 * --integrity` shows where the chain starts). Does nothing once a chain exists: rows
 * found outside it later were not written by the capture path, and sealing them would
 * launder them.
 * @returns the number of blocks written
 */
export async function startChain(trx: Transaction<unknown>, auditSchema: string): Promise<number> {
  const { rows } = await sql<{ empty: boolean }>`
    SELECT NOT EXISTS (SELECT FROM ${sql.id(auditSchema, 'audit_chain')}) AS empty`.execute(trx);
  if (!rows[0]?.empty) return 0;
  await sql`SELECT ${sql.id(auditSchema, 'lock_chain')}()`.execute(trx);
  const { rows: sealed } = await sql<{ blocks: number }>`
    SELECT ${sql.id(auditSchema, 'seal_blocks')}('genesis') AS blocks`.execute(trx);
  return sealed[0]?.blocks ?? 0;
}

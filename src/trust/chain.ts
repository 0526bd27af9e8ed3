import { sql, type Transaction } from 'kysely';

/** Most audit rows one genesis block covers when an existing log is first chained. */
export const GENESIS_BLOCK_ROWS = 10_000;

/**
 * Starts the chain of an install that has none yet: block 0 and, on an install from
 * before the chain, genesis blocks sealing the rows already in the log (attested from
 * now on; `verify --integrity` shows where the chain starts). Does nothing once a chain
 * exists: rows found outside it later were not written by the capture path, and
 * sealing them would launder them.
 * @returns the number of blocks written
 */
export async function startChain(trx: Transaction<unknown>, auditSchema: string): Promise<number> {
  const { rows } = await sql<{ empty: boolean }>`
    SELECT NOT EXISTS (SELECT FROM ${sql.id(auditSchema, 'audit_chain')}) AS empty`.execute(trx);
  if (!rows[0]?.empty) return 0;
  await sql`SELECT ${sql.id(auditSchema, 'lock_chain')}()`.execute(trx);
  let blocks = 0;
  for (;;) {
    const { rows: sealed } = await sql<{ rows: number }>`
      SELECT ${sql.id(auditSchema, 'seal_block')}('genesis', ${GENESIS_BLOCK_ROWS}) AS rows`.execute(
      trx,
    );
    const count = sealed[0]?.rows ?? 0;
    if (count > 0 || blocks === 0) blocks += 1;
    if (count < GENESIS_BLOCK_ROWS) return blocks;
  }
}

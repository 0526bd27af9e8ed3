import { sql, type Kysely, type Migration } from 'kysely';

/** The hash-chain table; see triggers/trust.sql. */
export const CHAIN_TABLE = 'audit_chain';

/**
 * The hash chain over the audit log (`audit_chain`): one block per capture statement
 * and retention checkpoints, written only by the capture path and `prune_audit_log`
 * (triggers/trust.sql). Rows already in the log are sealed into genesis blocks by
 * migrate once the chain functions are installed (see `sealExistingRows`).
 */
export function tamperEvidenceMigration(auditSchema: string): Migration {
  return {
    async up(db: Kysely<unknown>) {
      await db.schema
        .withSchema(auditSchema)
        .createTable(CHAIN_TABLE)
        .addColumn('block_no', 'bigint', (col) => col.primaryKey())
        .addColumn('kind', 'text', (col) =>
          col.notNull().check(sql`kind IN ('genesis', 'capture', 'prune')`),
        )
        // The audit rows this block covers, in id order, and their hashes.
        .addColumn('row_ids', sql`bigint[]`, (col) => col.notNull())
        .addColumn('row_hashes', sql`bytea[]`, (col) => col.notNull())
        // Highest audit row id covered by the chain up to and including this block.
        .addColumn('last_row_id', 'bigint', (col) => col.notNull())
        // prune blocks: the block through which rows were removed, and by whom.
        .addColumn('pruned_through', 'bigint')
        .addColumn('actor', sql`name`)
        .addColumn('recorded_at', sql`timestamptz(6)`, (col) => col.notNull())
        .addColumn('prev_hash', 'bytea', (col) => col.notNull())
        .addColumn('block_hash', 'bytea', (col) => col.notNull())
        .execute();
      await sql`REVOKE ALL ON ${sql.id(auditSchema, CHAIN_TABLE)} FROM PUBLIC`.execute(db);
      await sql`COMMENT ON TABLE ${sql.id(auditSchema, CHAIN_TABLE)} IS ${sql.lit(
        'Hash chain over the audit log: one block per capture statement, retention checkpoints. Append-only.',
      )}`.execute(db);
    },
  };
}

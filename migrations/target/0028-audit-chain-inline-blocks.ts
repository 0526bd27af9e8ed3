import { sql, type Kysely, type Migration } from 'kysely';
import { CHAIN_TABLE } from './0005-tamper-evidence';

/**
 * The largest `toast_tuple_target` an 8 kB page allows (PostgreSQL's
 * `TOAST_TUPLE_TARGET_MAIN`; every RDS and Aurora PostgreSQL page is 8 kB).
 */
const INLINE_ROW_BYTES = 8160;

/**
 * A chain block row stays in its heap page up to a full page instead of 2 kB. A block's
 * `row_hashes` holds 32 bytes (and `row_ids` 8) per audit row it covers, so a block of
 * more than about 56 rows (the local engine's multi-row statements) passed PostgreSQL's
 * default 2 kB toast threshold: every such block insert tried pglz on the hashes, which do
 * not compress (about 383,000 instructions), then wrote them to the toast table and its
 * index. Blocks of up to about 220 rows now stay inline: 1.2% fewer instructions per
 * change on the engine's 100-row statements (BENCHMARKS 3). Larger blocks are toasted
 * as before; DMS's blocks (one per transaction, a few rows) never were.
 *
 * Storage only: the values, and so `verify --integrity`, are the same. A storage
 * parameter that takes a SHARE UPDATE EXCLUSIVE lock (no capture waits on it), rewrites
 * nothing and applies to rows written after it.
 */
export function auditChainInlineBlocksMigration(auditSchema: string): Migration {
  return {
    async up(db: Kysely<unknown>) {
      await sql`ALTER TABLE ${sql.id(auditSchema, CHAIN_TABLE)}
        SET (toast_tuple_target = ${sql.raw(String(INLINE_ROW_BYTES))})`.execute(db);
    },
  };
}

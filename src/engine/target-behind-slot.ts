import type pg from 'pg';
import { AuditTrailError } from '../errors';
import type { EngineLogger } from './logger';
import { formatLsn, parseLsn, type Lsn } from './lsn';
import type { PositionStore, StoredPosition } from './position-store';
import { reloadSteps } from './source-setup';

/**
 * The replication slot was confirmed past what the target records for it. The engine
 * records every position before it tells the slot (a commit's end with the commit, an
 * idle acknowledgement before it is sent), so the target lost what it had recorded:
 * it was restored from a backup, or its position row was edited. The server never
 * sends the changes before the slot's position again, so streaming on would leave them
 * out of history for good.
 */
export class TargetBehindSlotError extends AuditTrailError {
  override readonly name = 'TargetBehindSlotError';
  constructor(
    readonly slot: string,
    /** The slot's `confirmed_flush_lsn`. */
    readonly confirmed: Lsn,
    /** End of the last source transaction the target applied. */
    readonly appliedUpTo: Lsn,
    /** The furthest position the target records the slot was told. */
    readonly acknowledged: Lsn,
    auditSchema: string,
  ) {
    super(
      `replication slot "${slot}" was confirmed up to ${formatLsn(confirmed)}, past what ` +
        `the target records (applied up to ${formatLsn(appliedUpTo)}, acknowledged up to ` +
        `${formatLsn(acknowledged)}): the target is behind its slot (restored from a ` +
        'backup?), and the server will not send the changes in between again. Nothing was applied',
      {
        code: 'TARGET_BEHIND_SLOT',
        kind: 'finding',
        hint:
          `the target's history lacks changes this slot will not send again; ` +
          `${reloadSteps(auditSchema)} (the next start re-creates the slot and loads every ` +
          'table from the source as it is now)',
      },
    );
  }
}

/**
 * Refuses to stream onto a target behind its slot ({@link TargetBehindSlotError}). A
 * position written by an engine from before acknowledgements were recorded (migration
 * 0025) is not refused: such an engine told an idle slot positions it never stored, so
 * a slot past its applied position is normal then, and a target restored from a backup
 * looks the same. That start warns when the slot is past it (run verify), and records
 * the slot's position, so the check holds from this start on.
 */
export async function refuseTargetBehindSlot(
  on: { readonly target: pg.ClientBase; readonly positions: PositionStore },
  slot: { readonly name: string; readonly confirmed: Lsn; readonly appliedUpTo: Lsn },
  logger: EngineLogger,
): Promise<void> {
  const acknowledged = await on.positions.acknowledged(on.target);
  if (acknowledged === null) {
    if (slot.confirmed > slot.appliedUpTo)
      logger.log(
        'warn',
        'cannot tell whether the target is behind its slot: its position was written by an ' +
          'older engine, which did not record what it acknowledged. If the target was ' +
          'restored from a backup since, the changes in between are lost: run audit-trail verify',
        {
          slot: slot.name,
          confirmed: formatLsn(slot.confirmed),
          appliedUpTo: formatLsn(slot.appliedUpTo),
        },
      );
    logger.log('info', 'position written by an older engine; recording the slot position', {
      slot: slot.name,
      confirmed: formatLsn(slot.confirmed),
    });
    await on.positions.recordAcknowledged(on.target, slot.confirmed);
    return;
  }
  if (slot.confirmed <= acknowledged) return;
  throw new TargetBehindSlotError(
    slot.name,
    slot.confirmed,
    slot.appliedUpTo,
    acknowledged,
    on.positions.auditSchema,
  );
}

/**
 * The position the target stores for the slot is past the WAL the source has written:
 * the source never sent a change that far, so the position was written by someone else
 * (the writer role may insert and update it; the row trigger refuses only moving it
 * back) or the source lost WAL it had sent. Streaming from it would skip every change
 * up to it, and exit 0.
 */
export class PositionAheadOfSourceError extends AuditTrailError {
  override readonly name = 'PositionAheadOfSourceError';
  constructor(
    readonly slot: string,
    readonly stored: StoredPosition,
    /** The furthest position the target records the slot was told; null: not recorded. */
    readonly acknowledged: Lsn | null,
    /** The source's WAL insert position when checked. */
    readonly sourceWal: Lsn,
    auditSchema: string,
  ) {
    super(
      `the position of replication slot "${slot}" on the target (commit ` +
        `${formatLsn(stored.lastCommitLsn)}, end ${formatLsn(stored.lastEndLsn)}, acknowledged ` +
        `${acknowledged === null ? 'not recorded' : formatLsn(acknowledged)}) is past the ` +
        `source's WAL (written up to ${formatLsn(sourceWal)}): the source never sent a change ` +
        'that far, so the position was written by someone else, or the source lost WAL it had ' +
        'sent (restored, or failed over to a standby behind it). Streaming from it would skip ' +
        'every change up to it. Nothing was applied',
      {
        code: 'POSITION_AHEAD_OF_SOURCE',
        kind: 'finding',
        hint:
          `find who wrote ${auditSchema}.cdc_engine_position (the writer role may); run ` +
          '`audit-trail verify` for what the target lacks; to reload, ' +
          `${reloadSteps(auditSchema)} (the next start re-creates the slot and loads every ` +
          'table from the source as it is now)',
      },
    );
  }
}

/**
 * Refuses to stream from a stored position past the source's WAL
 * ({@link PositionAheadOfSourceError}): every position the engine stores (a commit, its
 * end, an acknowledged keepalive) is one the source had written. Read after the stored
 * position, so WAL written since only moves the bound on.
 */
export async function refusePositionAheadOfSource(
  on: {
    readonly source: pg.ClientBase;
    readonly target: pg.ClientBase;
    readonly positions: PositionStore;
  },
  slot: string,
  stored: StoredPosition,
): Promise<void> {
  const acknowledged = await on.positions.acknowledged(on.target);
  const sourceWal = await writtenWal(on.source);
  if (sourceWal === null) return;
  const furthest = [stored.lastCommitLsn, stored.lastEndLsn, acknowledged ?? 0n].reduce((a, b) =>
    a > b ? a : b,
  );
  if (furthest <= sourceWal) return;
  throw new PositionAheadOfSourceError(
    slot,
    stored,
    acknowledged,
    sourceWal,
    on.positions.auditSchema,
  );
}

/**
 * How far the source's WAL reaches: where a primary inserts, or what a standby (logical
 * decoding on a standby, PostgreSQL 16) has replayed; null when a standby has replayed
 * nothing yet. No walsender sends past it.
 */
async function writtenWal(source: pg.ClientBase): Promise<Lsn | null> {
  const { rows } = await source.query<{ lsn: string | null }>(
    `SELECT (CASE WHEN pg_catalog.pg_is_in_recovery() THEN pg_catalog.pg_last_wal_replay_lsn()
                  ELSE pg_catalog.pg_current_wal_insert_lsn() END)::text AS lsn`,
  );
  const lsn = rows[0]?.lsn;
  return lsn ? parseLsn(lsn) : null;
}

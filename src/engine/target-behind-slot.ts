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
  slot: {
    readonly name: string;
    readonly confirmed: Lsn;
    readonly appliedUpTo: Lsn;
    /** What the target records the slot was told ({@link PositionStore.acknowledged}). */
    readonly acknowledged: Lsn | null;
  },
  logger: EngineLogger,
): Promise<void> {
  const { acknowledged } = slot;
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
 * (the kit's engine role may insert and update it; the row trigger refuses only moving
 * it back) or the source lost WAL it had sent. Streaming from it would skip every change
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
          `find who wrote ${auditSchema}.cdc_engine_position (a member of the kit's engine role may); run ` +
          '`audit-trail verify` for what the target lacks; to reload, ' +
          `${reloadSteps(auditSchema)} (the next start re-creates the slot and loads every ` +
          'table from the source as it is now)',
      },
    );
  }
}

/**
 * A source standby still replaying its own WAL (restarted, not streaming from its
 * primary) stayed behind the stored position for the whole of the engine's outage budget:
 * nothing waits forever (a standby whose primary is down, or that only restores from an
 * archive, might never catch up).
 */
export class SourceStandbyBehindError extends AuditTrailError {
  override readonly name = 'SourceStandbyBehindError';
  constructor(
    readonly slot: string,
    /** The standby's replay position when the wait ended; null: nothing replayed yet. */
    readonly replayed: Lsn | null,
    /** The furthest stored position of the slot (commit, end or acknowledged). */
    readonly stored: Lsn,
    readonly waitedMs: number,
  ) {
    super(
      `the source is a standby that has replayed its WAL only up to ` +
        `${replayed === null ? 'nothing yet' : formatLsn(replayed)}, behind the position ` +
        `${formatLsn(stored)} of replication slot "${slot}" on the target, and has not streamed ` +
        `from its primary since it started (waited ${Math.round(waitedMs / 1000)} s). ` +
        'Nothing was applied',
      {
        code: 'SOURCE_STANDBY_BEHIND',
        kind: 'connection',
        hint:
          'let the standby catch up (start its primary, or check its replication), then run ' +
          'replicate again: it resumes from the stored position (raise --give-up-after to wait ' +
          'longer)',
      },
    );
  }
}

/** How {@link refusePositionAheadOfSource} waits for a source standby still replaying its own WAL. */
export interface StandbyWait {
  readonly logger: EngineLogger;
  /** Whether the engine was asked to stop: the wait ends, unchecked. */
  readonly stopped: () => boolean;
  /**
   * How long to wait at most, then refuse with {@link SourceStandbyBehindError}; the
   * engine passes its outage budget (`giveUpAfterMs`).
   */
  readonly maxWaitMs: number;
  /** Between two reads of the standby's replay position. @default 1000 */
  readonly pollMs?: number;
}

/**
 * Refuses to stream from a stored position past the source's WAL
 * ({@link PositionAheadOfSourceError}): every position the engine stores (a commit, its
 * end, an acknowledged keepalive) is one the source had written. Read after the stored
 * position, so WAL written since only moves the bound on.
 *
 * A standby source (logical decoding on a standby, PostgreSQL 16+) that restarted after a
 * crash accepts connections once consistent, while it still replays its own WAL from its
 * last restartpoint: its replay position is then behind what it had replayed, and sent,
 * before (reproduced on a PostgreSQL 15 standby: first connection at 0/5B377308 after
 * replaying up to 0/5C7CD618). Until it starts streaming from its primary
 * (`pg_last_wal_receive_lsn()` is set then, once its own WAL is replayed) the engine waits,
 * warning once, instead of refusing a healthy position; the walsender would wait for that
 * WAL too.
 * @returns false when asked to stop while waiting (nothing checked), true otherwise
 */
export async function refusePositionAheadOfSource(
  on: { readonly source: pg.ClientBase; readonly positions: PositionStore },
  slot: string,
  stored: StoredPosition,
  /** What the target records the slot was told ({@link PositionStore.acknowledged}). */
  acknowledged: Lsn | null,
  wait: StandbyWait,
): Promise<boolean> {
  const furthest = [stored.lastCommitLsn, stored.lastEndLsn, acknowledged ?? 0n].reduce((a, b) =>
    a > b ? a : b,
  );
  let source = await writtenWal(on.source);
  let warned = false;
  const startedAt = Date.now();
  while (source.replayingOwnWal && (source.lsn === null || source.lsn < furthest)) {
    const waitedMs = Date.now() - startedAt;
    if (waitedMs >= wait.maxWaitMs) {
      throw new SourceStandbyBehindError(slot, source.lsn, furthest, waitedMs);
    }
    if (!warned) {
      wait.logger.log(
        'warn',
        'the source is a standby still replaying its own WAL (restarted?), behind the stored ' +
          'position: waiting for it to stream from its primary before checking the position',
        {
          slot,
          replayed: source.lsn === null ? null : formatLsn(source.lsn),
          stored: formatLsn(furthest),
        },
      );
      warned = true;
    }
    if (wait.stopped()) return false;
    await new Promise((resolve) => setTimeout(resolve, wait.pollMs ?? 1000));
    source = await writtenWal(on.source);
  }
  if (source.lsn === null || furthest <= source.lsn) return true;
  throw new PositionAheadOfSourceError(
    slot,
    stored,
    acknowledged,
    source.lsn,
    on.positions.auditSchema,
  );
}

/**
 * How far the source's WAL reaches: where a primary inserts, or what a standby (logical
 * decoding on a standby, PostgreSQL 16) has replayed (`lsn`, null when it has replayed
 * nothing yet); no walsender sends past it. `replayingOwnWal`: a standby that has not
 * streamed from its primary since it started, so it may still be replaying WAL it had
 * replayed before a crash (its replay position is no bound yet).
 */
async function writtenWal(
  source: pg.ClientBase,
): Promise<{ readonly lsn: Lsn | null; readonly replayingOwnWal: boolean }> {
  const { rows } = await source.query<{ lsn: string | null; replaying_own_wal: boolean }>(
    `SELECT (CASE WHEN pg_catalog.pg_is_in_recovery() THEN pg_catalog.pg_last_wal_replay_lsn()
                  ELSE pg_catalog.pg_current_wal_insert_lsn() END)::text AS lsn,
            pg_catalog.pg_is_in_recovery() AND pg_catalog.pg_last_wal_receive_lsn() IS NULL
              AS replaying_own_wal`,
  );
  const lsn = rows[0]?.lsn;
  return { lsn: lsn ? parseLsn(lsn) : null, replayingOwnWal: rows[0]?.replaying_own_wal === true };
}

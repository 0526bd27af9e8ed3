import type pg from 'pg';
import { AuditTrailError } from '../errors';
import type { EngineLogger } from './logger';
import { formatLsn, type Lsn } from './lsn';
import type { PositionStore } from './position-store';
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

import { createHash } from 'node:crypto';
import type pg from 'pg';
import { AuditTrailError } from '../errors';

/**
 * How long the engine waits at start for its replication slot to be released by another
 * process. Right after an engine was killed, the server may not have noticed yet, and
 * the killed engine's walsender holds the slot for a moment.
 */
export const DEFAULT_SLOT_WAIT_MS = 5000;

/** How often the wait reads who holds the slot. */
const POLL_MS = 100;

/**
 * The engine's replication slot stayed held by another process for the whole wait:
 * another engine runs with the same slot. The engine refuses before any load or apply
 * step, so two engines never apply the same changes.
 */
export class SlotInUseError extends AuditTrailError {
  override readonly name = 'SlotInUseError';
  constructor(
    readonly slot: string,
    readonly pid: number,
    waitedMs: number,
    /** Where it is held: the slot itself on the source, or the engine lock on the target. */
    readonly side: 'source' | 'target' = 'source',
  ) {
    super(
      side === 'source'
        ? `replication slot "${slot}" is in use by process ${pid} on the source ` +
            `(still after waiting ${waitedMs} ms)`
        : `another engine with replication slot "${slot}" runs on the target: its ` +
            `connection, process ${pid} on the target, holds the slot's engine lock ` +
            `(still after waiting ${waitedMs} ms)`,
      {
        code: 'SLOT_IN_USE',
        kind: 'usage',
        hint:
          'another engine is running with this slot: stop it first (`slot status` shows the ' +
          'slot; pg_stat_replication shows the process). A killed engine releases the slot ' +
          'once the server notices; if that takes longer, run again later',
      },
    );
  }
}

/**
 * The target-side advisory lock (session level, 64 bits) that one engine per slot and
 * audit schema holds while it runs. Two engines started at the same moment both find
 * the source slot free, and only START_REPLICATION, after their setup and load steps,
 * would tell them apart; the lock does it first. From a hash, not `hashtext`, so that
 * two slots' keys do not collide in practice.
 */
export function engineLockKey(auditSchema: string, slot: string): string {
  const digest = createHash('sha256').update(`audit-trail:engine\u0000${auditSchema}\u0000${slot}`);
  return BigInt.asIntN(64, digest.digest().readBigUInt64BE(0)).toString();
}

/** The target process holding the engine lock `key`, or null when none does (now). */
async function engineLockHolder(target: pg.ClientBase, key: string): Promise<number | null> {
  // A bigint advisory key shows in pg_locks as its high half (classid) and low half
  // (objid), with objsubid 1.
  const { rows } = await target.query<{ pid: number | string }>(
    `SELECT pid FROM pg_catalog.pg_locks
      WHERE locktype = 'advisory' AND granted AND objsubid = 1 AND database = (
              SELECT oid FROM pg_catalog.pg_database WHERE datname = current_database())
        AND ((classid::bigint << 32) | objid::bigint) = $1::bigint`,
    [key],
  );
  const pid = rows[0]?.pid;
  return pid === undefined ? null : Number(pid);
}

/** What {@link claimSlot} waits with. */
export interface SlotWaitOptions {
  readonly waitMs: number;
  /** Called once, when it first has to wait, with the holder. */
  readonly onWait: (pid: number, side: 'source' | 'target') => void;
  readonly stopped: () => boolean;
}

/**
 * Claims `slot` for this engine before any setup or load step: takes the engine lock on
 * `target` (held until the target session ends), then waits for the source slot to be
 * free, both within one `waitMs`.
 * @throws SlotInUseError when another process still holds either after `waitMs`.
 */
export async function claimSlot(
  on: { readonly source: pg.ClientBase; readonly target: pg.ClientBase },
  lock: { readonly slot: string; readonly key: string },
  options: SlotWaitOptions,
): Promise<void> {
  const startedAt = Date.now();
  const deadline = startedAt + options.waitMs;
  await pollUntilFree(() => takeEngineLock(on.target, lock.key), 'target', lock.slot, {
    ...options,
    startedAt,
    deadline,
  });
  if (options.stopped()) return;
  // The source side gets what is left of the one wait; a refusal reports all of it.
  await pollUntilFree(() => slotHolder(on.source, lock.slot), 'source', lock.slot, {
    ...options,
    startedAt,
    deadline,
  });
}

/**
 * Takes the engine lock `key` on `target` if it is free: null once this session holds
 * it, else the process that does.
 */
async function takeEngineLock(target: pg.ClientBase, key: string): Promise<number | null> {
  for (;;) {
    // The engine's target connection reads every value as text.
    const { rows } = await target.query<{ locked: boolean | string }>(
      'SELECT pg_catalog.pg_try_advisory_lock($1::bigint) AS locked',
      [key],
    );
    const locked = rows[0]?.locked;
    if (locked === true || locked === 't') return null;
    const pid = await engineLockHolder(target, key);
    if (pid !== null) return pid;
    // Let go between the two reads: try again at once.
  }
}

/** Who holds `slot` on the source: a process id, or null when no one (or no such slot). */
async function slotHolder(source: pg.ClientBase, slot: string): Promise<number | null> {
  const { rows } = await source.query<{ active_pid: number | null }>(
    'SELECT active_pid FROM pg_replication_slots WHERE slot_name = $1',
    [slot],
  );
  return rows[0]?.active_pid ?? null;
}

/**
 * The wait both sides share: asks `holder` every {@link POLL_MS} until it answers null
 * (free) or `stopped()` turns true, calling `onWait` once, when it first has to wait.
 * A refusal reports the time since `startedAt`, when the whole wait began.
 * @throws SlotInUseError when a process still holds it at `deadline`.
 */
async function pollUntilFree(
  holder: () => Promise<number | null>,
  side: 'source' | 'target',
  slot: string,
  options: SlotWaitOptions & { readonly startedAt: number; readonly deadline: number },
): Promise<void> {
  let waiting = false;
  for (;;) {
    const pid = await holder();
    if (pid === null || options.stopped()) return;
    const now = Date.now();
    if (now >= options.deadline) {
      throw new SlotInUseError(slot, pid, now - options.startedAt, side);
    }
    if (!waiting) options.onWait(pid, side);
    waiting = true;
    await sleep(POLL_MS);
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

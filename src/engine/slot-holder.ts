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
  ) {
    super(
      `replication slot "${slot}" is in use by process ${pid} on the source ` +
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

/** Who holds `slot` on the source: a process id, or null when no one (or no such slot). */
async function slotHolder(source: pg.ClientBase, slot: string): Promise<number | null> {
  const { rows } = await source.query<{ active_pid: number | null }>(
    'SELECT active_pid FROM pg_replication_slots WHERE slot_name = $1',
    [slot],
  );
  return rows[0]?.active_pid ?? null;
}

/**
 * Returns once no process holds `slot` (at once when none does), waiting up to `waitMs`
 * and calling `onWait` once with the holder when it has to wait. Ends early when
 * `stopped()` turns true.
 * @throws SlotInUseError when a process still holds it after `waitMs`.
 */
export async function waitForSlotRelease(
  source: pg.ClientBase,
  slot: string,
  options: {
    readonly waitMs: number;
    readonly onWait: (pid: number) => void;
    readonly stopped: () => boolean;
  },
): Promise<void> {
  const deadline = Date.now() + options.waitMs;
  let waiting = false;
  for (;;) {
    const pid = await slotHolder(source, slot);
    if (pid === null || options.stopped()) return;
    if (Date.now() >= deadline) throw new SlotInUseError(slot, pid, options.waitMs);
    if (!waiting) options.onWait(pid);
    waiting = true;
    await new Promise((resolve) => setTimeout(resolve, POLL_MS));
  }
}

/**
 * Test-only fault injection: `AUDIT_TRAIL_ENGINE_CRASH_AT=<point>:<n>` makes the engine
 * kill itself with SIGKILL the n-th time it reaches `<point>`, so tests can prove that a
 * crash at that exact place loses and duplicates nothing. Points:
 * - `load-batch`: after a batch of initial-load rows is written, before the load commits;
 * - `apply-batch`: after a batch of CDC changes is written, before the target commit;
 * - `after-commit`: after a target commit, before the slot is told (no ack sent);
 * - `after-ack`: after the slot was told.
 * Unset (always, in normal use) this does nothing.
 */
export type FaultPoint = 'load-batch' | 'apply-batch' | 'after-commit' | 'after-ack';

const counts = new Map<string, number>();

/** Marks that the engine reached `point`; crashes when the environment asks for it. */
export function faultPoint(point: FaultPoint): void {
  const wanted = process.env.AUDIT_TRAIL_ENGINE_CRASH_AT;
  if (!wanted) return;
  const [name, nth] = wanted.split(':');
  if (name !== point) return;
  const count = (counts.get(point) ?? 0) + 1;
  counts.set(point, count);
  if (count >= Number(nth ?? '1')) process.kill(process.pid, 'SIGKILL');
}

/**
 * What a promise settled with, as a value: `null` when it resolved, the rejection when it
 * did not. A test starts an operation, acts while it runs (revokes a role, writes a
 * change), then asserts on the refusal, with no unhandled rejection in between.
 *
 * @example
 * const running = errorOf(engine.run());
 * await target(`REVOKE ...`);
 * expect(await running).toBeInstanceOf(AuditTrailError);
 */
export function errorOf(promise: Promise<unknown>): Promise<unknown> {
  return promise.then(
    () => null,
    (error: unknown) => error,
  );
}

/**
 * Resolves once `condition()` holds, checking every 10 ms; rejects after `timeoutMs`
 * naming `what`, so a test that waits on something that never happens fails, not hangs.
 *
 * @example
 * await until(() => repl.pending > 0, 'a message queued');
 */
export async function until(condition: () => boolean, what: string, timeoutMs = 10_000) {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`not within ${timeoutMs} ms: ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

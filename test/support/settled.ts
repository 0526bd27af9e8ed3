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

import { detectPgaudit } from './pgaudit-server';

/**
 * `describe` for suites that need a live PostgreSQL with pgaudit. Without pgaudit
 * the suite is reported as skipped with the reason, unless
 * `AUDIT_TRAIL_REQUIRE_PGAUDIT=1` (CI), where a missing pgaudit fails the run.
 */
export function describeWithPgaudit(name: string, body: (bin: string) => void): void {
  const availability = detectPgaudit();
  if (availability.available) {
    describe(name, () => body(availability.bin));
    return;
  }
  if (process.env.AUDIT_TRAIL_REQUIRE_PGAUDIT === '1') {
    describe(name, () => {
      it('needs pgaudit (AUDIT_TRAIL_REQUIRE_PGAUDIT=1)', () => {
        throw new Error(availability.reason);
      });
    });
    return;
  }
  console.warn(`live pgAudit suite skipped: ${availability.reason}`);
  describe.skip(`${name} — skipped: ${availability.reason}`, () => {
    it('needs pgaudit', () => undefined);
  });
}

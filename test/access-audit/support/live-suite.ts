import {
  detectPgaudit,
  startPgauditContainer,
  startPgauditServer,
  type PgauditServer,
  type PgauditServerOptions,
} from './pgaudit-server';

/** Starts a PostgreSQL with pgaudit for the live suite. */
export type StartPgaudit = (options?: PgauditServerOptions) => Promise<PgauditServer>;

/**
 * `describe` for suites that need a live PostgreSQL with pgaudit: with
 * `TEST_PG=container` the Debian-built container (which always has pgaudit; a missing
 * engine fails the suite), else the system's PostgreSQL 15. Without pgaudit the suite
 * is reported as skipped with the reason, unless `AUDIT_TRAIL_REQUIRE_PGAUDIT=1` (CI),
 * where a missing pgaudit fails the run.
 */
export function describeWithPgaudit(name: string, body: (start: StartPgaudit) => void): void {
  if (process.env.TEST_PG === 'container') {
    describe(`${name} (container)`, () => body(startPgauditContainer));
    return;
  }
  const availability = detectPgaudit();
  if (availability.available) {
    describe(name, () => body((options) => startPgauditServer(availability.bin, options)));
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

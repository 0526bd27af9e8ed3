import { PgauditSetupError } from '../src/access-audit/setup';
import { SourceSetupError } from '../src/engine/source-setup';
import { AuditTrailError } from '../src/errors';
import { HistoryQueryError } from '../src/history';
import { MigrationError } from '../src/migrate/migrate-target';

// Every user-facing error is an AuditTrailError: a stable code for scripts, a kind the
// CLI maps to its exit code, an optional hint printed after the message.
describe('user-facing errors share the AuditTrailError base', () => {
  it.each([
    ['HistoryQueryError', new HistoryQueryError('no such table'), 'HISTORY_QUERY', 1],
    ['SourceSetupError', new SourceSetupError('wal_level is replica'), 'SOURCE_SETUP', 1],
    ['MigrationError', new MigrationError('migration 0003 failed'), 'MIGRATION_FAILED', 1],
    ['PgauditSetupError', new PgauditSetupError('not preloaded'), 'PGAUDIT_SETUP', 1],
  ] as const)('%s has its code and exit code', (name, error, code, exitCode) => {
    expect(error).toBeInstanceOf(AuditTrailError);
    expect(error.name).toBe(name);
    expect(error.code).toBe(code);
    expect(error.exitCode).toBe(exitCode);
    expect(error.hint).toBeUndefined();
  });

  it('keeps a hint and a cause when given', () => {
    const cause = new Error('relation does not exist');
    const error = new MigrationError('migration 0003 failed', { hint: 'run it again', cause });
    expect(error.hint).toBe('run it again');
    expect(error.cause).toBe(cause);
  });
});

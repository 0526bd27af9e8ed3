import { AuditTrailError, type ErrorKind } from '../errors';

/**
 * An error whose message is meant for the person at the terminal: the CLI prints it
 * as one line and exits with its exit code, without a stack trace.
 */
export class CliError extends AuditTrailError {
  override readonly name = 'CliError';
  constructor(
    message: string,
    /** What kind of failure: findings and failures exit 1, usage errors 2. @default 'finding' */
    kind: ErrorKind = 'finding',
  ) {
    super(message, { code: kind === 'usage' ? 'USAGE' : 'CLI', kind });
  }
}

/** A wrong command line: exits 2. */
export class UsageError extends CliError {
  constructor(message: string) {
    super(message, 'usage');
  }
}

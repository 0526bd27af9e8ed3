import { AuditTrailError, type ErrorKind } from '../errors';

/** Options of {@link CliError}. */
export interface CliErrorOptions {
  /** A stable code for scripts, printed as `error [CODE]`. @default 'CLI' ('USAGE' for usage errors) */
  readonly code?: string;
  /** What kind of failure: findings and failures exit 1, usage errors 2. @default 'finding' */
  readonly kind?: ErrorKind;
  /** What the user can do about it. @default none */
  readonly hint?: string;
  /** The underlying error. @default none */
  readonly cause?: unknown;
}

/**
 * An error whose message is meant for the person at the terminal: the CLI prints it
 * as `error [CODE]: message` (and its hint) and exits with its exit code, without a
 * stack trace.
 */
export class CliError extends AuditTrailError {
  override readonly name: string = 'CliError';
  constructor(message: string, options: CliErrorOptions = {}) {
    const kind = options.kind ?? 'finding';
    super(message, {
      code: options.code ?? (kind === 'usage' ? 'USAGE' : 'CLI'),
      kind,
      ...(options.hint !== undefined && { hint: options.hint }),
      ...(options.cause !== undefined && { cause: options.cause }),
    });
  }

  /**
   * `error` with `prefix` (what the command was doing) put before its message. An
   * {@link AuditTrailError} keeps its code, kind and hint; anything else (an AWS SDK
   * error, a driver error) takes `fallback`'s, and is kept as the cause.
   */
  static wrap(prefix: string, error: unknown, fallback: CliErrorOptions): CliError {
    const message = `${prefix}: ${error instanceof Error ? error.message : String(error)}`;
    if (error instanceof AuditTrailError)
      return new CliError(message, {
        code: error.code,
        kind: error.kind,
        ...(error.hint !== undefined && { hint: error.hint }),
        cause: error,
      });
    return new CliError(message, { ...fallback, cause: error });
  }
}

/** A wrong command line: exits 2. */
export class UsageError extends CliError {
  override readonly name: string = 'UsageError';
  constructor(message: string, options: Omit<CliErrorOptions, 'kind'> = {}) {
    super(message, { ...options, kind: 'usage' });
  }
}

/**
 * What kind of failure an error is, which decides the CLI's exit code:
 * - `usage`: the command line, the config or a URL is wrong (exit 2);
 * - `connection`: a database could not be reached or refused the login (exit 2);
 * - `finding`: the command ran and found something (a mismatch, a broken chain, a
 *   refused table, a failed check) (exit 1);
 * - `failure`: the command could not finish for another reason (exit 1).
 */
export type ErrorKind = 'usage' | 'connection' | 'finding' | 'failure';

/** Options of {@link AuditTrailError}. */
export interface AuditTrailErrorOptions {
  /** A stable, machine-readable code (`CONFIG_INVALID`, `CONNECT_TIMEOUT`, ...). */
  readonly code: string;
  /** @default 'failure' */
  readonly kind?: ErrorKind;
  /** What the user can do about it, printed after the message. @default none */
  readonly hint?: string;
  /** The underlying error. @default none */
  readonly cause?: unknown;
}

/**
 * The base of every error the kit means for a person: the message is a complete
 * answer, `code` is stable for scripts, `hint` says what to do next. The CLI prints
 * the message (and hint) as is, without a stack trace, and exits with {@link exitCode}.
 *
 * @example
 * ```ts
 * throw new AuditTrailError('--batch-size must be a positive integer', {
 *   code: 'USAGE',
 *   kind: 'usage',
 * });
 * ```
 */
export class AuditTrailError extends Error {
  override readonly name: string = 'AuditTrailError';
  readonly code: string;
  readonly kind: ErrorKind;
  readonly hint: string | undefined;

  constructor(message: string, options: AuditTrailErrorOptions) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.code = options.code;
    this.kind = options.kind ?? 'failure';
    this.hint = options.hint;
  }

  /** 2 for usage and connection errors, 1 for findings and other failures. */
  get exitCode(): 1 | 2 {
    return exitCodeOf(this.kind);
  }
}

/** The CLI's exit code for an error kind: 0 is success, never an error. */
export function exitCodeOf(kind: ErrorKind): 1 | 2 {
  return kind === 'usage' || kind === 'connection' ? 2 : 1;
}

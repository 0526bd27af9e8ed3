/**
 * An error whose message is meant for the person at the terminal: the CLI prints it
 * as one line and exits with `exitCode`, without a stack trace.
 */
export class CliError extends Error {
  override readonly name = 'CliError';
  constructor(
    message: string,
    /** Process exit code. @default 1 */
    readonly exitCode = 1,
  ) {
    super(message);
  }
}

#!/usr/bin/env node
import { CommanderError } from '@commander-js/extra-typings';
import { AuditTrailError, exitCodeOf } from '../errors';
import { watchOutput } from './output';
import { buildProgram } from './program';

/** Network failures a driver may throw before the kit could name the side. */
const NETWORK_ERROR_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ENOTFOUND',
  'EAI_AGAIN',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'ENETUNREACH',
]);

/** What the CLI prints for an error that ended a command, and the exit code. */
interface Failure {
  /** `AUDIT_TRAIL_CODE`, a SQLSTATE or a Node error code; absent for a plain Error. */
  readonly code: string | undefined;
  readonly message: string;
  readonly hint: string | undefined;
  readonly exitCode: number;
}

/** How an error that ended a command is reported: code, message, hint and exit code. */
function describeFailure(error: unknown): Failure {
  if (error instanceof AuditTrailError)
    return {
      code: error.code,
      message: error.message,
      hint: error.hint,
      exitCode: error.exitCode,
    };
  const message = error instanceof Error ? error.message : String(error);
  const raw = (error as { code?: unknown } | undefined)?.code;
  const code = typeof raw === 'string' && raw !== '' ? raw : undefined;
  if (code !== undefined && NETWORK_ERROR_CODES.has(code))
    return {
      code,
      message: `cannot connect: ${message}`,
      hint: 'check the URL, the network path and the credentials',
      exitCode: exitCodeOf('connection'),
    };
  return { code, message, hint: undefined, exitCode: exitCodeOf('failure') };
}

/**
 * `audit-trail: error [CODE]: message`, then `  hint: ...`: one line a script can match
 * on the code, continuation lines indented.
 */
function formatFailure(failure: Omit<Failure, 'exitCode'>): string {
  const code = failure.code === undefined ? '' : ` [${failure.code}]`;
  const lines = [`error${code}: ${failure.message}`];
  if (failure.hint !== undefined) lines.push(`hint: ${failure.hint}`);
  return `audit-trail: ${lines.join('\n').split('\n').join('\n  ')}\n`;
}

/**
 * The AWS SDK prints a multi-line banner on Node 20 announcing that SDK releases after
 * January 2027 need Node 22. The kit pins its SDK versions and supports Node 20, so the
 * banner says nothing actionable to a CLI user; the SDK's own switch turns it off
 * unless the user has set it.
 */
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';

async function main(argv: readonly string[]): Promise<void> {
  watchOutput();
  const program = buildProgram();
  try {
    await program.parseAsync(argv as string[]);
  } catch (error) {
    if (error instanceof CommanderError) {
      // Help and --version exit 0; every other commander error is a wrong command line.
      process.exitCode = error.exitCode === 0 ? 0 : exitCodeOf('usage');
      return;
    }
    const failure = describeFailure(error);
    process.stderr.write(formatFailure(failure));
    process.exitCode = failure.exitCode;
  }
}

void main(process.argv);

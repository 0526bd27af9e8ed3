#!/usr/bin/env node
import { CommanderError } from 'commander';
import { AuditTrailError, exitCodeOf } from '../errors';
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

/** The one-line (plus hint) message and the exit code for an error that ended a command. */
function describeFailure(error: unknown): { message: string; exitCode: number } {
  if (error instanceof AuditTrailError) {
    const hint = error.hint === undefined ? '' : `\nhint: ${error.hint}`;
    return { message: `${error.message}${hint}`, exitCode: error.exitCode };
  }
  const message = error instanceof Error ? error.message : String(error);
  const code = (error as { code?: unknown } | undefined)?.code;
  if (typeof code === 'string' && NETWORK_ERROR_CODES.has(code))
    return { message: `cannot connect: ${message}`, exitCode: exitCodeOf('connection') };
  return { message, exitCode: exitCodeOf('failure') };
}

/**
 * The AWS SDK prints a multi-line banner on Node 20 announcing that SDK releases after
 * January 2027 need Node 22. The kit pins its SDK versions and supports Node 20, so the
 * banner says nothing actionable to a CLI user; the SDK's own switch turns it off
 * unless the user has set it.
 */
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';

async function main(argv: readonly string[]): Promise<void> {
  const program = buildProgram();
  try {
    await program.parseAsync(argv as string[]);
  } catch (error) {
    if (error instanceof CommanderError) {
      // Help and --version exit 0; every other commander error is a wrong command line.
      process.exitCode = error.exitCode === 0 ? 0 : exitCodeOf('usage');
      return;
    }
    const { message, exitCode } = describeFailure(error);
    process.stderr.write(`audit-trail: ${message.split('\n').join('\n  ')}\n`);
    process.exitCode = exitCode;
  }
}

void main(process.argv);

#!/usr/bin/env node
import { CommanderError } from 'commander';
import { ConfigError } from '../config';
import { ConnectionUrlError } from '../postgres/connect';
import { CliError } from './errors';
import { buildProgram } from './program';

/** Errors whose message is already a complete answer for the user. */
function isUserFacing(error: unknown): error is Error {
  return (
    error instanceof CliError || error instanceof ConfigError || error instanceof ConnectionUrlError
  );
}

async function main(argv: readonly string[]): Promise<void> {
  const program = buildProgram().exitOverride();
  try {
    await program.parseAsync(argv as string[]);
  } catch (error) {
    if (error instanceof CommanderError) {
      process.exitCode = error.exitCode;
      return;
    }
    const message = isUserFacing(error)
      ? error.message
      : `${(error as Error)?.message ?? String(error)}`;
    process.stderr.write(`audit-trail: ${message.split('\n').join('\n  ')}\n`);
    process.exitCode = error instanceof CliError ? error.exitCode : 1;
  }
}

void main(process.argv);

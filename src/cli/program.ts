import { Command } from 'commander';
import { packageVersion } from '../support/package-version';
import { registerCommands } from './commands';

/** Builds the `audit-trail` command tree; every subcommand registers itself in ./commands. */
export function buildProgram(): Command {
  const program = new Command('audit-trail')
    .description('Compliance-grade audit trail for PostgreSQL: change history and access audit')
    .version(packageVersion(), '-V, --version', 'print the kit version')
    .showHelpAfterError()
    .configureOutput({ outputError: (text, write) => write(text) });
  registerCommands(program);
  return program;
}

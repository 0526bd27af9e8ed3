import { Command, Option } from 'commander';
import { DEFAULT_CONNECT_TIMEOUT_SECONDS } from '../postgres/connect';
import { packageVersion } from '../support/package-version';
import { registerCommands } from './commands';

/** Builds the `audit-trail` command tree; every subcommand registers itself in ./commands. */
export function buildProgram(): Command {
  const program = new Command('audit-trail')
    .description('Compliance-grade audit trail for PostgreSQL: change history and access audit')
    .version(packageVersion(), '-V, --version', 'print the kit version')
    .addOption(
      new Option(
        '--connect-timeout <seconds>',
        `seconds to wait for each database connection (0: for ever; default ${DEFAULT_CONNECT_TIMEOUT_SECONDS}; a URL's connect_timeout wins)`,
      ).env('AUDIT_TRAIL_CONNECT_TIMEOUT'),
    )
    // Read by every connection the kit opens (src/postgres/connect.ts), whatever the command.
    .hook('preAction', (command) => {
      const seconds = command.opts<{ connectTimeout?: string }>().connectTimeout;
      if (seconds !== undefined) process.env.AUDIT_TRAIL_CONNECT_TIMEOUT = seconds;
    })
    .showHelpAfterError()
    // Before the subcommands are added, so they inherit it: main() maps every
    // command-line error to exit code 2 instead of commander exiting with 1.
    .exitOverride()
    .configureOutput({ outputError: (text, write) => write(text) });
  registerCommands(program);
  return program;
}

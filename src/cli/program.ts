import { Command, Option } from '@commander-js/extra-typings';
import { DEFAULT_CONNECT_TIMEOUT_SECONDS } from '../postgres/url';
import { LOG_LEVELS } from '../engine/logger';
import { packageVersion } from '../support/package-version';
import { registerCommands } from './commands';
import { LOG_FORMATS } from './log-format';

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
    .addOption(
      new Option('--log-level <level>', 'lowest level of log records written to stderr')
        .choices(LOG_LEVELS)
        .env('AUDIT_TRAIL_LOG_LEVEL'),
    )
    .addOption(
      new Option(
        '--log-format <format>',
        'log records on stderr: JSON lines, or one readable line each (default: pretty on a terminal, json otherwise)',
      )
        .choices(LOG_FORMATS)
        .env('AUDIT_TRAIL_LOG_FORMAT'),
    )
    .option('--no-progress', 'no progress bars on a terminal (off a terminal there are none)')
    // Read by every connection the kit opens (src/postgres/connect.ts) and every JSON
    // logger (src/engine/logger.ts), whatever the command.
    .hook('preAction', (command) => {
      const { connectTimeout, logLevel, logFormat, progress } = command.opts();
      if (connectTimeout !== undefined) process.env.AUDIT_TRAIL_CONNECT_TIMEOUT = connectTimeout;
      if (logLevel !== undefined) process.env.AUDIT_TRAIL_LOG_LEVEL = logLevel;
      // Read by openTerminal (src/cli/terminal.ts) in the commands that log or show progress.
      if (logFormat !== undefined) process.env.AUDIT_TRAIL_LOG_FORMAT = logFormat;
      if (!progress) process.env.AUDIT_TRAIL_PROGRESS = 'false';
    })
    .showHelpAfterError()
    // Before the subcommands are added, so they inherit it: main() maps every
    // command-line error to exit code 2 instead of commander exiting with 1.
    .exitOverride()
    .configureOutput({ outputError: (text, write) => write(text) });
  registerCommands(program);
  return program;
}

import type { Command } from '@commander-js/extra-typings';
import type { GrantableRole } from '../../trust/grant';
import { UsageError } from '../errors';
import { configOption, jsonOption, requireUrl, targetUrlOption } from '../options';

// Kept here (not imported from trust/grant) so `--help` loads no database code.
const KINDS: readonly GrantableRole[] = ['reader', 'writer', 'engine'];

/**
 * `audit-trail grant reader|writer|engine ROLE`: makes ROLE a member of the kit's reader
 * role (history), writer role (DMS's target login: staging DML) or, for the local
 * engine's target login, the writer and engine roles (the engine's position and its
 * record of what it loaded). Prints the statement; `--dry-run` only prints it.
 */
export function registerGrant(program: Command): void {
  program
    .command('grant')
    .description(
      'give a login the kit reader role (history), writer role (DMS) or writer and engine roles (local engine)',
    )
    .argument('<kind>', 'reader, writer or engine')
    .argument('<role>', 'the login or role to grant it to')
    .addOption(configOption())
    .addOption(targetUrlOption())
    .option('--dry-run', 'print the statement without running it')
    .addOption(jsonOption())
    .action(async (kind, role, options) => {
      if (!(KINDS as readonly string[]).includes(kind))
        throw new UsageError(`grant: kind must be reader, writer or engine, got "${kind}"`);
      const { loadConfig } = await import('../../config/index.js');
      const { grantKitRole, grantSql, grantedRoles } = await import('../../trust/grant.js');
      const { kitRoles } = await import('../../trust/roles.js');
      const config = await loadConfig(options.config);
      const roles = kitRoles(config);
      const statement = grantSql(roles, kind as GrantableRole, role);
      const report = (executed: boolean): void => {
        const kitRole = roles[kind as GrantableRole];
        const kitRoles = grantedRoles(roles, kind as GrantableRole);
        process.stdout.write(
          options.json
            ? `${JSON.stringify({ statement, role, kitRole, kitRoles, executed })}\n`
            : `${statement};\n`,
        );
      };
      // Without --json the statement is printed first, so a failure shows what failed.
      if (options.dryRun || !options.json) report(false);
      if (options.dryRun) return;
      const { createKysely } = await import('../../postgres/connect.js');
      const db = createKysely<unknown>(requireUrl(options.targetUrl, '--target-url'), {
        max: 1,
        label: 'target',
      });
      try {
        await grantKitRole(db, roles, kind as GrantableRole, role);
      } finally {
        await db.destroy();
      }
      if (options.json) report(true);
    });
}

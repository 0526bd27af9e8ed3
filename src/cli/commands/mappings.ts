import type { Command } from '@commander-js/extra-typings';
import { CliError } from '../errors';
import { configOption } from '../options';

/** Options of `audit-trail mappings`. */

/**
 * `audit-trail mappings --config F [--settings]`: prints the DMS table-mapping JSON
 * derived from the config (or, with `--settings`, the replication task settings), for
 * a task created outside the kit's CDK app.
 */
export function registerMappings(program: Command): void {
  program
    .command('mappings')
    .description(
      'print the DMS table mappings (or, with --settings, the task settings) for the config',
    )
    .addOption(configOption())
    .option('--settings', 'print the replication task settings instead of the table mappings')
    .action(async (options) => {
      const { buildTableMappings, buildTaskSettings } = await import('../../../mappings/index.js');
      const { loadConfig, requireChangeHistory } = await import('../../config/index.js');
      const config = await loadConfig(options.config);
      requireChangeHistory(config, 'mappings');
      let document: unknown;
      try {
        document = options.settings ? buildTaskSettings(config) : buildTableMappings(config);
      } catch (error) {
        throw CliError.wrap(options.config, error, { code: 'MAPPINGS_FAILED' });
      }
      process.stdout.write(`${JSON.stringify(document, null, 2)}\n`);
    });
}

import type { Command } from '@commander-js/extra-typings';
import { CliError, UsageError } from '../errors';
import { configOption, jsonOption, requireUrl, targetUrlOption } from '../options';

/**
 * `audit-trail anchor --append FILE`: appends the audit log's current chain head, with a
 * timestamp, to a JSON-lines file kept out of the database owner's reach;
 * `verify --integrity --anchors FILE` then proves the log still holds every head.
 */
export function registerAnchor(program: Command): void {
  program
    .command('anchor')
    .description('append the audit log chain head (with a timestamp) to a JSON-lines anchors file')
    .addOption(configOption())
    .addOption(targetUrlOption())
    .option('--append <file>', 'the anchors file to append to')
    .addOption(jsonOption('the anchor written'))
    .action(async (options) => {
      if (options.append === undefined)
        throw new UsageError('--append <file> is required', {
          hint: 'keep the file where the database owner cannot write',
        });
      const { loadConfig } = await import('../../config/index.js');
      const { appendAnchor, readChainHead } = await import('../../trust/anchors.js');
      const config = await loadConfig(options.config);
      const head = await readChainHead(
        requireUrl(options.targetUrl, '--target-url'),
        config.auditSchema,
      );
      if (head === null)
        throw new CliError('the audit log has no hash chain yet', {
          code: 'NOT_MIGRATED',
          hint: 'run audit-trail migrate first',
        });
      await appendAnchor(options.append, head);
      if (options.json) {
        process.stdout.write(`${JSON.stringify({ file: options.append, anchor: head })}\n`);
        return;
      }
      process.stdout.write(
        `anchored block ${head.blockNo} ${head.blockHash} (rows through ${head.lastRowId}) in ${options.append}\n`,
      );
    });
}

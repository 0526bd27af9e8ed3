import type { Command } from '@commander-js/extra-typings';
import type { AuditTrailConfig } from '../../config';
import { CliError, UsageError } from '../errors';
import { configOption, jsonOption, requireUrl, targetUrlOption } from '../options';

/** A configured table named `schema.table`, or by its table name when that is unique. */
function configuredTable(config: AuditTrailConfig, reference: string) {
  const matches = config.tables.filter(
    (t) => `${t.schema}.${t.table}` === reference || t.table === reference,
  );
  const exact = matches.filter((t) => `${t.schema}.${t.table}` === reference);
  const found = exact.length === 1 ? exact : matches;
  if (found.length === 1) return found[0]!;
  throw new UsageError(
    found.length === 0
      ? `${reference} is not a table in the config`
      : `${reference} is ambiguous: ${found.map((t) => `${t.schema}.${t.table}`).join(', ')}`,
    { hint: 'name it as schema.table, as the config lists it' },
  );
}

/**
 * `audit-trail reload finish TABLE`: ends the reload of a table added back to the config
 * (#17 item 19) once DMS has loaded it (the task's table statistics say "Table
 * completed"): a DELETE version for each row the kit recorded live that the load did not
 * copy. DMS gives the target no end-of-load signal; its first change of the table after
 * the load ends the reload too, so this is needed only for a table that has not changed
 * since. The local engine ends its reloads itself. Running it again changes nothing.
 * A load that copied no row is refused (exit 1: it may be no load at all, a DMS task
 * running CDC only) unless `--all-rows-gone` says the source table holds none of them.
 */
export function registerReload(program: Command): void {
  const reload = program
    .command('reload')
    .description('end the reload of a table added back to the config (DMS)');
  reload
    .command('finish')
    .description(
      'after DMS loaded a table added back: record a DELETE for each row the load did not copy',
    )
    .argument('<table>', 'the table, as schema.table (or its name when unique in the config)')
    .option(
      '--all-rows-gone',
      'the load copied no row because the source table holds none of the rows history has live: record a DELETE for each',
    )
    .addOption(configOption())
    .addOption(targetUrlOption())
    .addOption(jsonOption())
    .action(async (reference, options) => {
      const { loadConfig } = await import('../../config/index.js');
      const { connectClient } = await import('../../postgres/connect.js');
      const { finishReload, reloadState } = await import('../../staging/reload-baseline.js');
      const { reloadPendingLine } = await import('./verify-format.js');
      const config = await loadConfig(options.config);
      const table = configuredTable(config, reference);
      const url = requireUrl(options.targetUrl, '--target-url');
      const client = await connectClient(url, 'audit-trail-reload', 'target');
      const label = `${table.schema}.${table.table}`;
      try {
        const source = { schema: table.schema, table: table.table };
        // A load that copied no row may be no load at all (a DMS task running CDC only):
        // ending its reload would record a DELETE for every row the source may still have.
        const state = await reloadState(client, config.auditSchema, source);
        if (state && state.copiedRows === 0 && !options.allRowsGone)
          throw new CliError(`${label}: the reload's load copied no row; not ended`, {
            code: 'RELOAD_NOT_LOADED',
            hint: reloadPendingLine(label, state),
          });
        const deleted = await finishReload(client, config.auditSchema, source);
        process.stdout.write(
          options.json
            ? `${JSON.stringify({ table: label, deletedVersions: deleted })}\n`
            : `${label}: reload finished, ${deleted} row(s) gone while it was out recorded as DELETE\n`,
        );
      } finally {
        await client.end().catch(() => undefined);
      }
    });
}

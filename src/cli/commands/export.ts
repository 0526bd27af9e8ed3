import { createWriteStream } from 'node:fs';
import { access } from 'node:fs/promises';
import { finished } from 'node:stream/promises';
import type { Command } from '@commander-js/extra-typings';
import { Option } from '@commander-js/extra-typings';
import { UsageError } from '../errors';
import { configOption, targetUrlOption } from '../options';
import { parseInstant } from './history';
import { withHistory } from './history-queries';

/**
 * `audit-trail export`: every change of the audited tables (or `--table`s) committed in
 * `[--from, --to)` as JSON lines or CSV, table by table in history order. Numbers are
 * written exactly as stored (numeric, int8 beyond 2^53, trailing zeros).
 */
export function registerExport(program: Command): void {
  program
    .command('export')
    .description('export change history as JSON lines (default) or CSV')
    .addOption(configOption())
    .addOption(targetUrlOption())
    .option('--table <schema.table...>', 'tables to export (default: every audited table)')
    .option(
      '--from <instant>',
      'first commit instant included (ISO-8601 with zone)',
      '1970-01-01T00:00:00Z',
    )
    .option('--to <instant>', 'first commit instant excluded (default: when the export starts)')
    .addOption(
      new Option('--format <format>', 'output format')
        .choices(['ndjson', 'csv'] as const)
        .default('ndjson'),
    )
    .option('-o, --output <file>', 'write to this file instead of stdout')
    .option('--force', 'overwrite --output if it exists')
    .action(async (options) => {
      const from = parseInstant(options.from, '--from');
      const to = parseInstant(options.to ?? new Date().toISOString(), '--to');
      if (options.output !== undefined && !options.force && (await exists(options.output)))
        throw new UsageError(`${options.output} exists`, {
          code: 'FILE_EXISTS',
          hint: 'add --force to overwrite it',
        });
      const { CSV_COLUMNS, csvRecord, toListedJson } = await import('./history-format.js');
      const { stringifyRowJson } = await import('../../history/row-json.js');
      const summary = await withHistory(options, async (api, target) => {
        const tables = options.table ?? (await target.auditedTables());
        for (const table of tables) await target.assertAudited(table);
        const out =
          options.output === undefined ? process.stdout : createWriteStream(options.output);
        let changes = 0;
        if (options.format === 'csv') out.write(`${CSV_COLUMNS.join(',')}\r\n`);
        for (const table of tables) {
          // One table in memory at a time; narrow --from/--to for very large tables.
          for (const version of await api.changesBetween(table, from, to)) {
            const line =
              options.format === 'csv'
                ? `${csvRecord(version)}\r\n`
                : `${stringifyRowJson(toListedJson(version))}\n`;
            if (!out.write(line))
              await new Promise<void>((resolve) => out.once('drain', () => resolve()));
            changes++;
          }
        }
        if (out !== process.stdout) {
          out.end();
          await finished(out);
        }
        return { tables: tables.length, changes };
      });
      process.stderr.write(
        `exported ${summary.changes} changes of ${summary.tables} tables committed in [${from}, ${to})\n`,
      );
    });
}

async function exists(file: string): Promise<boolean> {
  return access(file).then(
    () => true,
    () => false,
  );
}

import { once } from 'node:events';
import { createWriteStream } from 'node:fs';
import { access } from 'node:fs/promises';
import type { Writable } from 'node:stream';
import { finished } from 'node:stream/promises';
import type { Command } from '@commander-js/extra-typings';
import { Option } from '@commander-js/extra-typings';
import { UsageError } from '../errors';
import { configOption, targetUrlOption } from '../options';
import { parseInstant } from './history';
import { withHistory } from './history-queries';
import type { Version } from '../../history';

const EXPORT_FORMATS = ['ndjson', 'csv', 'parquet'] as const;
type ExportFormat = (typeof EXPORT_FORMATS)[number];

/**
 * `audit-trail export`: every change of the audited tables (or `--table`s) committed in
 * `[--from, --to)` as JSON lines, CSV or Parquet, table by table in history order.
 * Numbers are written exactly as stored (numeric, int8 beyond 2^53, trailing zeros).
 */
export function registerExport(program: Command): void {
  program
    .command('export')
    .description('export change history as JSON lines (default), CSV or Parquet')
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
      new Option('--format <format>', 'output format').choices(EXPORT_FORMATS).default('ndjson'),
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
      if (options.format === 'parquet' && options.output === undefined && process.stdout.isTTY)
        throw new UsageError('Parquet is binary: not written to a terminal', {
          hint: 'add --output FILE, or redirect stdout',
        });
      const summary = await withHistory(options, async (api, target) => {
        const tables = options.table ?? (await target.auditedTables());
        for (const table of tables) await target.assertAudited(table);
        const out =
          options.output === undefined ? process.stdout : createWriteStream(options.output);
        const sink = await openSink(options.format, out);
        let changes = 0;
        for (const table of tables) {
          // One table in memory at a time; narrow --from/--to for very large tables.
          const versions = await api.changesBetween(table, from, to);
          await sink.write(versions);
          changes += versions.length;
        }
        await sink.finish();
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

/** Where `export` writes one table's versions at a time; `finish` completes the output. */
export interface ExportSink {
  write(versions: readonly Version[]): Promise<void>;
  finish(): Promise<void>;
}

async function openSink(format: ExportFormat, out: Writable): Promise<ExportSink> {
  if (format === 'parquet') return (await import('./export-parquet.js')).openParquetSink(out);
  const { CSV_COLUMNS, csvRecord, toListedJson } = await import('./history-format.js');
  const { stringifyRowJson } = await import('../../history/row-json.js');
  const line =
    format === 'csv'
      ? (version: Version) => `${csvRecord(version)}\r\n`
      : (version: Version) => `${stringifyRowJson(toListedJson(version))}\n`;
  if (format === 'csv') out.write(`${CSV_COLUMNS.join(',')}\r\n`);
  return {
    async write(versions) {
      for (const version of versions) if (!out.write(line(version))) await once(out, 'drain');
    },
    finish: async () => {},
  };
}

async function exists(file: string): Promise<boolean> {
  return access(file).then(
    () => true,
    () => false,
  );
}

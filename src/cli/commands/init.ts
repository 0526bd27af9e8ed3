import { writeFile } from 'node:fs/promises';
import type { Command } from '@commander-js/extra-typings';
import type pg from 'pg';
import type { AuditTrailConfigInput } from '../../config';
import { DEFAULT_CONFIG_FILE } from '../../config/default-file';
import { CliError, UsageError } from '../errors';
import { jsonOption, requireUrl, sourceUrlOption } from '../options';

/** A source table the starter config may list. */
interface SourceTable {
  readonly schema: string;
  readonly table: string;
  readonly hasPrimaryKey: boolean;
}

/** Ordinary and partitioned tables outside the system schemas (partitions are listed by their root). */
async function readSourceTables(client: pg.Client): Promise<SourceTable[]> {
  const { rows } = await client.query<{ schema: string; table: string; has_pk: boolean }>(
    `SELECT n.nspname AS schema, c.relname AS "table",
            EXISTS (SELECT 1 FROM pg_index i WHERE i.indrelid = c.oid AND i.indisprimary) AS has_pk
       FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
      WHERE c.relkind IN ('r', 'p') AND NOT c.relispartition AND c.relpersistence = 'p'
        AND n.nspname NOT IN ('pg_catalog', 'information_schema', 'pg_toast')
        AND n.nspname NOT LIKE 'pg\\_%'
      ORDER BY 1, 2`,
  );
  return rows.map((row) => ({ schema: row.schema, table: row.table, hasPrimaryKey: row.has_pk }));
}

/** `schema.table` or `table` (public). */
function parseTableList(text: string): { schema: string; table: string }[] {
  return text
    .split(',')
    .map((item) => item.trim())
    .filter((item) => item !== '')
    .map((item) => {
      const dot = item.indexOf('.');
      return dot < 0
        ? { schema: 'public', table: item }
        : { schema: item.slice(0, dot), table: item.slice(dot + 1) };
    });
}

/**
 * `audit-trail init`: writes a starter `audit-trail.config.json`. With `--source-url` it
 * lists the source's tables that have a primary key (or checks the `--tables` given
 * against the source); with only `--tables` it lists those as given.
 */
export function registerInit(program: Command): void {
  program
    .command('init')
    .description('write a starter config listing the tables to audit')
    .addOption(sourceUrlOption())
    .option('--tables <list>', 'comma-separated tables (schema.table, or table for public)')
    .option('-o, --output <file>', 'where to write the config', DEFAULT_CONFIG_FILE)
    .option('--force', 'overwrite the file if it exists')
    .addOption(jsonOption())
    .action(async (options) => {
      const wanted = options.tables === undefined ? undefined : parseTableList(options.tables);
      if (options.sourceUrl === undefined && wanted === undefined)
        throw new UsageError('give --source-url (to read its tables), --tables, or both');
      let tables = wanted ?? [];
      const skipped: { schema: string; table: string; reason: string }[] = [];
      if (options.sourceUrl !== undefined) {
        const { connectClient } = await import('../../postgres/connect.js');
        const client = await connectClient(
          requireUrl(options.sourceUrl, '--source-url'),
          'audit-trail-init',
          'source',
        );
        let found: SourceTable[];
        try {
          found = await readSourceTables(client);
        } finally {
          await client.end().catch(() => undefined);
        }
        const problems: string[] = [];
        const withKey = (t: { schema: string; table: string }) => {
          const match = found.find((f) => f.schema === t.schema && f.table === t.table);
          if (!match) problems.push(`${t.schema}.${t.table} does not exist on the source`);
          else if (!match.hasPrimaryKey)
            problems.push(`${t.schema}.${t.table} has no primary key (add one to audit it)`);
          return match?.hasPrimaryKey === true;
        };
        if (wanted !== undefined) {
          tables = wanted.filter(withKey);
          if (problems.length > 0)
            throw new CliError(problems.join('; '), {
              code: 'TABLE_NOT_AUDITABLE',
              hint: 'audit-trail init --source-url URL without --tables lists the tables that can be audited',
            });
        } else {
          tables = found
            .filter((t) => t.hasPrimaryKey)
            .map(({ schema, table }) => ({ schema, table }));
          for (const t of found.filter((f) => !f.hasPrimaryKey)) {
            skipped.push({ schema: t.schema, table: t.table, reason: 'no primary key' });
            process.stderr.write(`skipped ${t.schema}.${t.table}: no primary key\n`);
          }
        }
      }
      if (tables.length === 0)
        throw new CliError('no table to audit: the config needs at least one', {
          code: 'NO_TABLES',
          hint: 'add a primary key to the tables to audit, or name them with --tables',
        });
      const config: AuditTrailConfigInput = { tables };
      const { parseConfig } = await import('../../config/index.js');
      parseConfig(config, '--tables');
      try {
        await writeFile(options.output, `${JSON.stringify(config, null, 2)}\n`, {
          flag: options.force ? 'w' : 'wx',
        });
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code === 'EEXIST')
          throw new UsageError(`${options.output} exists`, {
            code: 'FILE_EXISTS',
            hint: 'add --force to overwrite it',
          });
        throw error;
      }
      process.stdout.write(
        options.json
          ? `${JSON.stringify({ file: options.output, tables, skipped })}\n`
          : `wrote ${options.output} with ${tables.length} tables\n`,
      );
    });
}

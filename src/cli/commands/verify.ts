import type { Command } from 'commander';
import { loadConfig } from '../../config';
import { verifyAuditTrail, type VerifyReport } from '../../verify';
import { CliError } from '../errors';
import { configOption, requireUrl, sourceUrlOption, targetUrlOption } from '../options';

interface VerifyCommandOptions {
  readonly config: string;
  readonly sourceUrl?: string;
  readonly targetUrl?: string;
  readonly json?: boolean;
}

/**
 * `audit-trail verify`: every current source row against the newest audit version of
 * its key. Exit 0 when all match; exit 1 listing the mismatches otherwise.
 */
export function registerVerify(program: Command): void {
  program
    .command('verify')
    .description('compare current source rows with the newest audit version of each key')
    .addOption(configOption())
    .addOption(sourceUrlOption())
    .addOption(targetUrlOption())
    .option('--json', 'print the report as JSON')
    .action(async (options: VerifyCommandOptions) => {
      const config = await loadConfig(options.config);
      const report = await verifyAuditTrail({
        config,
        sourceUrl: requireUrl(options.sourceUrl, '--source-url'),
        targetUrl: requireUrl(options.targetUrl, '--target-url'),
      });
      process.stdout.write(options.json ? `${JSON.stringify(report)}\n` : formatReport(report));
      if (!report.ok) {
        const total = report.tables.reduce((sum, table) => sum + table.mismatches, 0);
        throw new CliError(`verify found ${total} mismatch${total === 1 ? '' : 'es'}`);
      }
    });
}

/** A report a person reads at a glance: one line per table, then each mismatch. */
export function formatReport(report: VerifyReport): string {
  const lines = report.tables.map(
    (table) =>
      `${table.mismatches === 0 ? 'OK  ' : 'FAIL'} ${table.table}: ${table.sourceRows} source rows, ` +
      `${table.auditRows} live audit rows, ${table.stagingRows} live staging rows, ${table.mismatches} mismatches`,
  );
  for (const mismatch of report.mismatches) {
    const detail = mismatch.columns ? ` (columns: ${mismatch.columns.join(', ')})` : '';
    lines.push(`  ${mismatch.table} ${JSON.stringify(mismatch.key)}: ${mismatch.kind}${detail}`);
  }
  return `${lines.join('\n')}\n`;
}

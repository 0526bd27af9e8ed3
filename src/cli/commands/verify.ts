import type { Command } from '@commander-js/extra-typings';
import { CliError, UsageError } from '../errors';
import {
  configOption,
  jsonOption,
  requireUrl,
  secretArnOption,
  sourceUrlOption,
  targetArnOption,
  targetDatabaseOption,
  targetUrlOption,
} from '../options';

/**
 * Rows per cursor read over the Data API, which answers at most 1 MiB per call: 200
 * canonical audit rows of up to ~5 KB each.
 */
const DATA_API_FETCH_SIZE = 200;

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
    .addOption(targetArnOption())
    .addOption(secretArnOption())
    .addOption(targetDatabaseOption())
    .addOption(jsonOption('the report'))
    .option(
      '--integrity',
      'recompute the hash chain of the audit log instead (target only): exit 1 names the first broken row or block',
    )
    .option(
      '--anchors <file|s3://bucket/prefix>',
      "with --integrity: chain heads that must still be in the chain (a JSON-lines file, or the anchor Lambda's Object Lock bucket)",
    )
    .action(async (options) => {
      if (options.anchors !== undefined && !options.integrity)
        throw new UsageError('--anchors needs --integrity');
      if (options.targetArn !== undefined && !options.integrity)
        throw new UsageError(
          '--target-arn (the Data API) works with --integrity; comparing with the source needs --target-url',
        );
      const { loadConfig, requireChangeHistory } = await import('../../config/index.js');
      const config = await loadConfig(options.config);
      requireChangeHistory(config, 'verify');
      if (options.integrity) {
        const { openTarget, targetConnection } = await import('../target.js');
        const { readAnchors } = await import('../../trust/anchors.js');
        const { verifyIntegrity } = await import('../../trust/integrity.js');
        const { formatIntegrityReport } = await import('./verify-format.js');
        const target = targetConnection(options, config);
        const anchors = options.anchors === undefined ? [] : await readAnchors(options.anchors);
        const { openProgressOrLog } = await import('../terminal.js');
        const progress = openProgressOrLog();
        const db = openTarget(target);
        const report = await verifyIntegrity({
          db,
          ...(progress && { progress }),
          ...(target.kind === 'data-api' && { fetchSize: DATA_API_FETCH_SIZE }),
          auditSchema: config.auditSchema,
          anchors,
        }).finally(() => db.destroy());
        process.stdout.write(
          options.json ? `${JSON.stringify(report)}\n` : formatIntegrityReport(report),
        );
        if (!report.ok)
          throw new CliError(
            `integrity check failed: ${report.findings[0]?.detail ?? 'see the report'} (${report.findingCount} finding${report.findingCount === 1 ? '' : 's'})`,
            {
              code: 'INTEGRITY_FAILED',
              hint: 'the audit log was altered outside the kit: keep this report and the anchors as evidence',
            },
          );
        return;
      }
      const { verifyAuditTrail } = await import('../../verify/index.js');
      const { formatReport } = await import('./verify-format.js');
      const { stringifyRowJson } = await import('../../history/row-json.js');
      const { openProgressOrLog } = await import('../terminal.js');
      const progress = openProgressOrLog();
      const report = await verifyAuditTrail({
        ...(progress && { progress }),
        config,
        sourceUrl: requireUrl(options.sourceUrl, '--source-url'),
        targetUrl: requireUrl(options.targetUrl, '--target-url'),
      });
      process.stdout.write(options.json ? `${stringifyRowJson(report)}\n` : formatReport(report));
      if (!report.ok) {
        const total = report.tables.reduce((sum, table) => sum + table.mismatches, 0);
        const pending = report.tables.filter((table) => table.reloadPending).length;
        const reloads =
          pending === 0 ? '' : ` and ${pending} pending reload${pending === 1 ? '' : 's'}`;
        const triggers = report.tables.reduce(
          (sum, table) => sum + (table.captureTriggers?.length ?? 0),
          0,
        );
        const triggerText =
          triggers === 0
            ? ''
            : ` and ${triggers} capture trigger problem${triggers === 1 ? '' : 's'}`;
        const built = report.foreignDependencies?.length ?? 0;
        const builtText =
          built === 0
            ? ''
            : ` and ${built} kit object${built === 1 ? '' : 's'} built on code outside the kit`;
        throw new CliError(
          `verify found ${total} mismatch${total === 1 ? '' : 'es'}${reloads}${triggerText}${builtText}`,
          {
            code: 'VERIFY_MISMATCH',
            hint: 'a lagging pipeline also mismatches: run verify again once replicate or the DMS task caught up',
          },
        );
      }
    });
}

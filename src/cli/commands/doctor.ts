import type { Command } from '@commander-js/extra-typings';
import type pg from 'pg';
import { AuditTrailError } from '../../errors';
import { CliError, UsageError } from '../errors';
import { configOption, jsonOption, requireUrl, sourceUrlOption, targetUrlOption } from '../options';
import type { Add, DoctorCheck } from './doctor-checks';

export type { DoctorCheck } from './doctor-checks';

/**
 * `audit-trail doctor`: pre-flight checks of the change-history source and target (the
 * counterpart of `pgaudit check`). Exit 0 when nothing failed (warnings allowed), 1 with
 * failures, 2 when a side could not be reached.
 */
export function registerDoctor(program: Command): void {
  program
    .command('doctor')
    .description('check the source and target for change history (and pgAudit when configured)')
    .addOption(configOption())
    .addOption(sourceUrlOption())
    .addOption(targetUrlOption())
    .option('--slot <name>', 'the engine’s replication slot (default derived from the URLs)')
    .addOption(jsonOption('the checks'))
    .action(async (options) => {
      const { loadConfig, requireChangeHistory } = await import('../../config/index.js');
      const { defaultSlotName } = await import('../../engine/index.js');
      const { connectClient } = await import('../../postgres/connect.js');
      const { checkSourceSide, checkTargetSide } = await import('./doctor-checks.js');
      const config = await loadConfig(options.config);
      // Its checks are the change history's (wal_level, slots, staging): pgaudit check has the rest.
      requireChangeHistory(config, 'doctor (for the access audit: audit-trail pgaudit check)');
      if (options.sourceUrl === undefined && options.targetUrl === undefined)
        throw new UsageError(
          'give --source-url, --target-url or both (or their environment variables)',
        );
      const checks: DoctorCheck[] = [];
      let unreachable: AuditTrailError | undefined;
      const sides = [
        ['source', options.sourceUrl],
        ['target', options.targetUrl],
      ] as const;
      for (const [side, raw] of sides) {
        if (raw === undefined) continue;
        const url = requireUrl(raw, `--${side}-url`);
        const add: Add = (check) => checks.push({ side, ...check });
        let client: pg.Client;
        try {
          client = await connectClient(url, 'audit-trail-doctor', side);
        } catch (error) {
          if (!(error instanceof AuditTrailError)) throw error;
          unreachable ??= error;
          add({ check: 'connection', status: 'fail', detail: error.message });
          continue;
        }
        try {
          add({ check: 'connection', status: 'ok', detail: 'connected' });
          if (side === 'source') {
            const slot =
              options.slot ??
              (options.targetUrl === undefined
                ? undefined
                : defaultSlotName(url, options.targetUrl, config.auditSchema));
            await checkSourceSide(client, url, config, slot, add);
          } else await checkTargetSide(client, url, config, add);
        } finally {
          await client.end().catch(() => undefined);
        }
      }
      process.stdout.write(options.json ? `${JSON.stringify(checks)}\n` : formatChecks(checks));
      if (unreachable) throw unreachable;
      const failed = checks.filter((check) => check.status === 'fail').length;
      if (failed > 0)
        throw new CliError(`${failed} of ${checks.length} checks failed`, {
          code: 'CHECKS_FAILED',
          hint: 'each FAIL line says what to change',
        });
    });
}

function formatChecks(checks: readonly DoctorCheck[]): string {
  return checks
    .map((check) => {
      const label = { ok: 'OK  ', warn: 'WARN', fail: 'FAIL' }[check.status];
      const remedy =
        check.status === 'ok' || check.remedy === undefined ? '' : ` → ${check.remedy}`;
      return `${label}  ${check.side} ${check.check}: ${check.detail}${remedy}\n`;
    })
    .join('');
}

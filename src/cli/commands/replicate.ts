import type { Command } from '@commander-js/extra-typings';
import { DEFAULT_RECONNECT_POLICY } from '../../engine/reconnect-policy';
import { UsageError } from '../errors';
import { configOption, requireUrl, sourceUrlOption, targetUrlOption } from '../options';

/** A whole number of seconds from an option, as milliseconds. */
function secondsOption(value: string | undefined, flag: string, min: number): number {
  if (!/^\d+$/.test(value ?? '') || Number(value) < min)
    throw new UsageError(`${flag} must be a whole number of seconds (at least ${min})`);
  return Number(value) * 1000;
}

/**
 * `audit-trail replicate`: runs the local CDC engine (the DMS stand-in). Logs are JSON
 * lines on stderr; SIGINT/SIGTERM stop it cleanly (the open source transaction is
 * rolled back on the target and replayed on the next start).
 */
export function registerReplicate(program: Command): void {
  program
    .command('replicate')
    .description('replicate audited source tables into staging (local DMS stand-in)')
    .addOption(configOption())
    .addOption(sourceUrlOption())
    .addOption(targetUrlOption())
    .option('--until-idle', 'apply everything committed before the start, then exit 0')
    .option(
      '--slot <name>',
      'replication slot (and publication) name; default derived from the URLs',
    )
    .option('--batch-size <rows>', 'rows per apply statement', '2000')
    .option('--lag-interval <ms>', 'how often to log lag (0: never)', '10000')
    .option(
      '--give-up-after <seconds>',
      'after a lost connection, retry (logged, with backoff) for this long, then exit 2',
      String(DEFAULT_RECONNECT_POLICY.giveUpAfterMs / 1000),
    )
    .option(
      '--max-reconnect-delay <seconds>',
      'longest wait between two reconnect attempts',
      String(DEFAULT_RECONNECT_POLICY.maxDelayMs / 1000),
    )
    .action(async (options) => {
      const { loadConfig, requireChangeHistory } = await import('../../config/index.js');
      const { createEngine } = await import('../../engine/index.js');
      const { openTerminal } = await import('../terminal.js');
      const config = await loadConfig(options.config);
      requireChangeHistory(config, 'replicate');
      const batchSize = Number(options.batchSize);
      if (!Number.isInteger(batchSize) || batchSize < 1)
        throw new UsageError('--batch-size must be a positive integer');
      if (!/^\d+$/.test(options.lagInterval ?? ''))
        throw new UsageError('--lag-interval must be a number of milliseconds');
      const { logger, progress } = openTerminal();
      const engine = createEngine({
        config,
        logger,
        ...(progress && { progress }),
        sourceUrl: requireUrl(options.sourceUrl, '--source-url'),
        targetUrl: requireUrl(options.targetUrl, '--target-url'),
        slotName: options.slot,
        batchSize,
        lagIntervalMs: Number(options.lagInterval),
        reconnect: {
          giveUpAfterMs: secondsOption(options.giveUpAfter, '--give-up-after', 0),
          maxDelayMs: secondsOption(options.maxReconnectDelay, '--max-reconnect-delay', 1),
        },
      });
      const stop = () => void engine.stop();
      process.once('SIGINT', stop);
      process.once('SIGTERM', stop);
      try {
        const result = options.untilIdle ? await engine.runUntilIdle() : await engine.run();
        logger.log('info', 'engine stopped', { ...result });
      } finally {
        process.off('SIGINT', stop);
        process.off('SIGTERM', stop);
      }
    });
}

import type { Command } from 'commander';
import { CliError } from '../errors';

/**
 * `audit-trail demo`: the whole change-history pipeline on embedded PostgreSQL, with
 * nothing to install; prints a history, an as-of answer and a verify result.
 */
export function registerDemo(program: Command): void {
  program
    .command('demo')
    .description(
      'run the change-history pipeline end to end on embedded PostgreSQL (nothing to install)',
    )
    .action(async () => {
      const { runDemo } = await import('../../demo/index.js');
      const result = await runDemo();
      if (!result.verifyOk)
        throw new CliError('demo: verify found mismatches', { code: 'VERIFY_MISMATCH' });
    });
}

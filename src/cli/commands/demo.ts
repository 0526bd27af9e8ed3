import type { Command } from '@commander-js/extra-typings';
import { CliError } from '../errors';
import { onOutputClosed } from '../output';

/**
 * `audit-trail demo`: the whole change-history pipeline on embedded PostgreSQL, with
 * nothing to install; prints a history, an as-of answer and a verify result. When its
 * output is closed (`| head`), it stops its servers and removes their folders as on
 * Ctrl-C, then exits quietly.
 */
export function registerDemo(program: Command): void {
  program
    .command('demo')
    .description(
      'run the change-history pipeline end to end on embedded PostgreSQL (nothing to install)',
    )
    .action(async () => {
      const { runDemo } = await import('../../demo/index.js');
      const stop = new AbortController();
      const unregister = onOutputClosed(() => stop.abort());
      try {
        const result = await runDemo({ signal: stop.signal });
        if (!result.verifyOk)
          throw new CliError('demo: verify found mismatches', { code: 'VERIFY_MISMATCH' });
      } catch (error) {
        // Output closed: the servers are stopped; nothing to report to a closed pipe.
        if (!stop.signal.aborted) throw error;
      } finally {
        unregister();
      }
    });
}

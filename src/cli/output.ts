/**
 * stdout's reader went away (`audit-trail demo | head -3`: head exited, the next write
 * fails with EPIPE). A Unix tool then stops quietly with 128 + SIGPIPE; a command that
 * holds resources (the demo's servers) registers a handler that stops it cleanly
 * first, and the process ends once that command has returned.
 */
export const OUTPUT_CLOSED_EXIT_CODE = 141;

const handlers = new Set<() => void>();
let closed = false;

/**
 * Calls `handler` when stdout is closed under the command; commands that registered
 * none are ended at once. Returns the function that unregisters it.
 */
export function onOutputClosed(handler: () => void): () => void {
  handlers.add(handler);
  return () => handlers.delete(handler);
}

/** Installs the stdout 'error' handler: an EPIPE ends the command quietly, anything else is thrown. */
export function watchOutput(stdout: NodeJS.WriteStream = process.stdout): void {
  stdout.on('error', (error: NodeJS.ErrnoException) => {
    // After the first EPIPE, later writes fail too (some as "write after end"): all the same event.
    if (closed) return;
    if (error.code !== 'EPIPE') throw error;
    closed = true;
    process.exitCode = OUTPUT_CLOSED_EXIT_CODE;
    if (handlers.size === 0) process.exit(OUTPUT_CLOSED_EXIT_CODE);
    for (const handler of handlers) handler();
  });
}

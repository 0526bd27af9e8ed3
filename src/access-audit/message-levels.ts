/**
 * PostgreSQL's message levels in their numeric order (utils/elog.h), the names its
 * settings take in lower case. LOG sits low here, as in elog.h; for the server log
 * PostgreSQL ranks it otherwise ({@link reachesServerLog}).
 */
const MESSAGE_LEVELS = [
  'debug5',
  'debug4',
  'debug3',
  'debug2',
  'debug1',
  'log',
  'info',
  'notice',
  'warning',
  'error',
  'fatal',
  'panic',
] as const;

/** `log`, `error`, ...: a PostgreSQL message level as its settings name it. */
export type MessageLevel = (typeof MESSAGE_LEVELS)[number];

function rank(level: string): number {
  return (MESSAGE_LEVELS as readonly string[]).indexOf(level);
}

/**
 * Whether the server log gets a message at `level` under a minimum of `minimum`
 * (`log_min_messages`, or `log_min_error_statement` for the statement of an ERROR):
 * PostgreSQL's is_log_level_output (utils/error/elog.c), where LOG ranks between ERROR
 * and FATAL. Names are lower case; an unknown one reaches nothing, so a check built on it
 * fails rather than passes.
 * @example
 * reachesServerLog('log', 'error'); // true
 * reachesServerLog('error', 'log'); // false: at `log`, only LOG, FATAL and PANIC
 */
export function reachesServerLog(level: string, minimum: string): boolean {
  if (rank(level) < 0 || rank(minimum) < 0) return false;
  if (level === 'log') return minimum === 'log' || rank(minimum) <= rank('error');
  if (minimum === 'log') return rank(level) >= rank('fatal');
  return rank(level) >= rank(minimum);
}

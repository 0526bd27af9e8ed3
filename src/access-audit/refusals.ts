import type { FailedStatement } from './failed-statements';

/**
 * What the server says about the statement its error ended. Only the server's own words
 * count: anyone can `RAISE EXCEPTION 'permission denied to set parameter "pgaudit.log"'`
 * (even `USING ERRCODE = '42501'`), and that line is the server's refusal in every
 * column but its CONTEXT, which the server writes itself (`PL/pgSQL function … at RAISE`).
 */

/** The CONTEXT frame of a statement the server ran inside a function or DO block. */
const SQL_STATEMENT_FRAME = 'SQL statement "';

/**
 * A line that starts one of the server's own CONTEXT frames (innermost first, one a
 * line; stderr writes a tab after each line break). A quote followed by a line break and
 * one of these ends the `SQL statement "…"` frame; the statement itself may hold line
 * breaks and quotes.
 */
const NEXT_FRAME =
  /"\n\t?(?:PL\/\S+ (?:function|anonymous code block)|SQL (?:statement|function|expression) ")/;

/**
 * The text of the statement the error ended, as the server logged it, or `undefined`
 * when the server names none the error was its refusal of:
 * - no CONTEXT: the logged statement (what the client sent, `log_min_error_statement`);
 * - a CONTEXT whose innermost frame is `SQL statement "…"`: that statement, run by a
 *   function or DO block (`PERFORM set_config(…)`, `SET …` in a function the client's
 *   statement called), which the logged statement does not show;
 * - any other innermost frame (a `RAISE`, a function's own code): `undefined`. The error
 *   is the code's, whatever it says.
 */
export function failedStatementOf(failure: FailedStatement): string | undefined {
  const context = failure.context;
  if (context === undefined) return failure.statement;
  if (!context.startsWith(SQL_STATEMENT_FRAME)) return undefined;
  const next = NEXT_FRAME.exec(context);
  const end = next === null ? context.lastIndexOf('"') : next.index;
  return end < SQL_STATEMENT_FRAME.length
    ? undefined
    : context.slice(SQL_STATEMENT_FRAME.length, end);
}

/**
 * The server's messages for a statement a role may not run (PostgreSQL 13–18, in
 * English): `permission denied to set parameter "pgaudit.log"`, `permission denied` (a
 * role's settings), `permission denied for function pg_reload_conf`, `must be owner of
 * database appdb`, `must be superuser to execute ALTER SYSTEM command`. Any other error
 * of a statement that would have weakened the audit (an invalid value, a missing object)
 * is a failure, not a refusal; so is one in another language (`lc_messages`).
 */
const REFUSAL =
  /^(?:permission denied\b|must be (?:owner|superuser|a superuser|a member|member)\b)/;

/** Whether the server's message refuses the statement to the role (else it failed otherwise). */
export function isRefusal(message: string): boolean {
  return REFUSAL.test(message);
}

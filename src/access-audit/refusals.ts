import type { FailedStatement } from './failed-statements';

/**
 * What the server says about the statement its error ended. Only the server's own words
 * count: anyone can `RAISE EXCEPTION 'permission denied to set parameter "pgaudit.log"'`
 * (even `USING ERRCODE = '42501'`) or `ASSERT false, '…'`, and that line is the server's
 * refusal in every column but its CONTEXT, which the server writes itself
 * (`PL/pgSQL function … at RAISE`).
 */

/** The CONTEXT frame of a statement the server ran inside a function or DO block. */
const SQL_STATEMENT_FRAME = 'SQL statement "';

/**
 * A line that starts one of the server's own CONTEXT frames (innermost first, one a
 * line; stderr writes a tab after each line break). A quote followed by a line break and
 * one of these may end the `SQL statement "…"` frame; but the statement itself may hold
 * line breaks and quotes, and so this very text (a comment holding `"`, a line break and
 * `PL/pgSQL function `, put in an `EXECUTE`d string): each match is one place it may end.
 */
const NEXT_FRAME =
  /"\n\t?(?:PL\/\S+ (?:function|anonymous code block)|SQL (?:statement|function|expression) ")/g;

/** The CONTEXT frame of a statement of a SQL-language function: the server's own statement. */
const SQL_FUNCTION_FRAME = 'SQL function "';

/**
 * The server's own error, and the statement it is about as the server logged it; or
 * `undefined` for an error the code raised. Code that raises (PL/pgSQL's `RAISE` and
 * `ASSERT`, any other language's `elog`) always leaves its frame first in the CONTEXT,
 * which the server writes; so the error is the server's when it has no CONTEXT, or when
 * the innermost frame is a statement the server ran:
 * - no CONTEXT: the logged statement (what the client sent, `log_min_error_statement`);
 *   a SQL-language function inlined into it, or a function's `SET` clause, leaves none;
 * - `SQL statement "…"` (a statement a function or `DO` block ran: `PERFORM
 *   set_config(…)`, `SET …`, which the logged statement does not show): that statement;
 * - `SQL function "…" statement N`: the logged statement (the function's text is not
 *   logged).
 * PL/Perl and PL/Python catch the server's error of a statement they ran
 * (`spi_exec_query`, `plpy.execute`) and raise it again as their own: its CONTEXT is
 * their function's frame, its words and SQLSTATE those a `die` or a `raise
 * plpy.spiexceptions.InsufficientPrivilege(…)` can write. Such a refusal is the code's
 * error here, as a forged one is; the refused statement's pgAudit record (logged before
 * it ran) alerts as `audit-tampering`. Reading it as the server's would let code that
 * set a watched setting, committed (a procedure's `spi_commit()`) and died with the
 * refusal's words be reported as refused.
 * `statements`: the statement as the log shows it, none when the log has none; for a
 * `SQL statement "…"` frame, every text the frame may hold, shortest first (where its
 * text ends cannot be told from a quote, line break and frame start the text holds
 * itself: judge each), and `ranInside` (a statement a function or `DO` block ran, which
 * pgAudit logs under its own text).
 */
export function serverErrorOf(
  failure: FailedStatement,
): { readonly statements: readonly string[]; readonly ranInside: boolean } | undefined {
  const context = failure.context;
  if (context === undefined || context.startsWith(SQL_FUNCTION_FRAME))
    return {
      statements: failure.statement === undefined ? [] : [failure.statement],
      ranInside: false,
    };
  if (!context.startsWith(SQL_STATEMENT_FRAME)) return undefined;
  const statements: string[] = [];
  for (const next of context.matchAll(NEXT_FRAME))
    statements.push(context.slice(SQL_STATEMENT_FRAME.length, next.index));
  // The outermost frame ends the CONTEXT: its statement ends at the last quote.
  const last = context.lastIndexOf('"');
  if (last >= SQL_STATEMENT_FRAME.length)
    statements.push(context.slice(SQL_STATEMENT_FRAME.length, last));
  return { statements, ranInside: true };
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

import type { AuditEvent } from './types';

/**
 * How alerts name who wrote a record. A record without user and database comes from a
 * process without a session: a parallel worker, or a background worker such as a
 * `pg_cron` job (PostgreSQL writes neither for them, in every log format). Its alert
 * says so in words rather than printing placeholders (`?@?`) a reader cannot tell from
 * a role named `?`.
 */

/** The short form, in summaries and subjects. */
export const UNKNOWN_IDENTITY = 'unknown identity (no session)';

/** The long form, in the e-mail's `Who:` line. */
export const UNKNOWN_USER =
  'unknown: the log names no user or database (a process without a session: a parallel worker, or a background worker such as a pg_cron job)';

/** True when the record names neither a user nor a database. */
export function hasNoIdentity(event: Pick<AuditEvent, 'user' | 'database'>): boolean {
  return (event.user ?? '') === '' && (event.database ?? '') === '';
}

/**
 * `alice@appdb from 10.0.0.5`, or {@link UNKNOWN_IDENTITY}; a user or a database missing
 * alone is named as missing (`alice@(no database)`).
 */
export function identityOf(event: Pick<AuditEvent, 'user' | 'database' | 'remoteHost'>): string {
  const from = event.remoteHost === undefined ? '' : ` from ${event.remoteHost}`;
  if (hasNoIdentity(event)) return `${UNKNOWN_IDENTITY}${from}`;
  return `${event.user || '(no user)'}@${event.database || '(no database)'}${from}`;
}

import { randomBytes } from 'node:crypto';
import type pg from 'pg';
import type { AuditEvent } from './types';

/**
 * The canary: one audited statement, run on a schedule by a dedicated login, whose
 * pgAudit record the alert Lambda must see. Seeing it proves every link at once: the
 * extension is loaded and logging, the canary role's settings, the log export to
 * CloudWatch Logs, the subscription and the Lambda. A missing extension means zero
 * records and zero errors; only a record that is expected and absent shows it.
 */

/** The text every canary statement's literal starts with. */
export const CANARY_MARKER = 'audit-trail-canary';

/** What a nonce may contain: digits, letters and `-` (it is pasted into SQL text). */
const NONCE = /^[0-9a-z-]{1,64}$/;

/** The exact statement text; anything else run by the canary role is judged like any human's. */
const CANARY_STATEMENT = /^SELECT '(audit-trail-canary):([0-9a-z-]{1,64})' AS audit_trail_canary$/;

/** A fresh nonce: the time in milliseconds and 8 random bytes (`1764644042000-9f1c…`). */
export function newCanaryNonce(now: Date = new Date()): string {
  return `${now.getTime()}-${randomBytes(8).toString('hex')}`;
}

/**
 * The canary statement for `nonce`. A plain literal with no relation: it needs no
 * privilege, reads nothing, and pgAudit logs it as one READ record under
 * `pgaudit.log = 'read'`. It goes out as a simple query (no bind parameters), so the
 * logged text is exactly this.
 */
export function canaryStatement(nonce: string): string {
  if (!NONCE.test(nonce)) throw new Error(`invalid canary nonce ${JSON.stringify(nonce)}`);
  return `SELECT '${CANARY_MARKER}:${nonce}' AS audit_trail_canary`;
}

/**
 * The nonce when `event` is the canary's own record: a SESSION READ `SELECT` logged for
 * the configured canary role (an unambiguous identity) whose text is exactly the canary
 * statement. Anyone else running the same text is not the canary, and a forged record
 * (`RAISE LOG`) never reaches this check: the forgery detector takes it first.
 */
export function canaryNonceOf(event: AuditEvent, canaryRole: string): string | undefined {
  if (event.user !== canaryRole || event.identityAmbiguous === true) return undefined;
  if (event.auditType !== 'SESSION' || event.auditClass !== 'READ' || event.command !== 'SELECT')
    return undefined;
  return CANARY_STATEMENT.exec(event.statement)?.[2];
}

/**
 * Runs one canary statement on `client` (connected as the canary role) and returns its
 * nonce, to be looked for in the log.
 */
export async function runCanary(client: pg.Client, nonce = newCanaryNonce()): Promise<string> {
  await client.query(canaryStatement(nonce));
  return nonce;
}

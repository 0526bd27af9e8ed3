import { identityOf } from './identity';
import type { AccessAlert, AlertSeverity, AuditEvent } from './types';

/**
 * Built-in rules about the audit trail itself rather than about what a user did.
 * They cannot be switched off or silenced by `ignore` rules, service accounts or
 * excluded databases: each one means a record cannot be taken at face value.
 */
export const INTEGRITY_RULES = {
  /** A line shaped like a pgAudit record that PostgreSQL shows was written by `RAISE` (or any code with a CONTEXT). */
  forged: { name: 'forged-audit-record', severity: 'critical' },
  /** One statement id of one session logged with two different statement texts. */
  conflict: { name: 'statement-id-conflict', severity: 'critical' },
  /** A prefix whose user/database split is ambiguous (a role named `app_svc@x`). */
  ambiguous: { name: 'ambiguous-identity', severity: 'high' },
  /** A record whose prefix parses but whose pgAudit fields do not. */
  unreadable: { name: 'unreadable-audit-record', severity: 'high' },
  /**
   * A pgAudit record at another severity than `pgauditLogLevel`: `pgaudit.log_level` and
   * `pgaudit.log_client` were changed, maybe where no statement shows it (the parameter
   * group). At a level below `log_min_messages` the records are not written at all.
   */
  unexpectedLevel: { name: 'unexpected-audit-level', severity: 'high' },
} as const satisfies Record<string, { name: string; severity: AlertSeverity }>;

const SEVERITY_ORDER: readonly AlertSeverity[] = ['low', 'medium', 'high', 'critical'];

/** The more severe of two severities. */
export function maxSeverity(a: AlertSeverity, b: AlertSeverity | undefined): AlertSeverity {
  return b !== undefined && SEVERITY_ORDER.indexOf(b) > SEVERITY_ORDER.indexOf(a) ? b : a;
}

type IntegrityRule = (typeof INTEGRITY_RULES)[keyof typeof INTEGRITY_RULES];

function who(event: AuditEvent): string {
  return `${identityOf(event)} (pid ${event.pid ?? '?'})`;
}

function clip(text: string, max = 120): string {
  const line = text.replace(/\s+/g, ' ');
  return line.length <= max ? line : `${line.slice(0, max)}…`;
}

function alert(
  rule: IntegrityRule,
  severity: AlertSeverity,
  summary: string,
  event: AuditEvent,
): AccessAlert {
  return { rule: rule.name, severity, summary, event };
}

/** `forged-audit-record`: names the writer (the real prefix) and what the line claimed. */
export function forgedRecordAlert(event: AuditEvent, context: string): AccessAlert {
  const claim =
    event.command === ''
      ? clip(event.statement)
      : `${event.auditClass} ${event.command} "${clip(event.statement)}"`;
  return alert(
    INTEGRITY_RULES.forged,
    INTEGRITY_RULES.forged.severity,
    `${who(event)} wrote a fake pgAudit record (${clip(context, 80)}): ${claim}`,
    event,
  );
}

/** `statement-id-conflict`: the second text seen for one statement id. */
export function conflictAlert(event: AuditEvent, firstText: string): AccessAlert {
  return alert(
    INTEGRITY_RULES.conflict,
    INTEGRITY_RULES.conflict.severity,
    `${who(event)}: statement ${event.statementId}.${event.substatementId} logged with two texts: "${clip(firstText, 80)}" then "${clip(event.statement, 80)}"`,
    event,
  );
}

/** `ambiguous-identity`, at least as severe as the rule the event would have matched. */
export function ambiguousIdentityAlert(
  event: AuditEvent,
  summary: string,
  severity: AlertSeverity,
): AccessAlert {
  return alert(
    INTEGRITY_RULES.ambiguous,
    severity,
    `ambiguous user@database in the log prefix, identity not trusted: ${summary}`,
    event,
  );
}

/** `unreadable-audit-record`: names user, database and pid, and why the record could not be read. */
export function unreadableRecordAlert(event: AuditEvent, error: string): AccessAlert {
  return alert(
    INTEGRITY_RULES.unreadable,
    INTEGRITY_RULES.unreadable.severity,
    `${who(event)}: unreadable pgAudit record (${clip(error, 80)})`,
    event,
  );
}

/**
 * `unexpected-audit-level`: a genuine record at `event.severity` where `expected` was
 * configured, at least as severe as what the record itself would have raised
 * (`summary`, `severity`), so the record is reported and never silently dropped.
 */
export function unexpectedLevelAlert(
  event: AuditEvent,
  expected: string,
  summary: string,
  severity: AlertSeverity,
): AccessAlert {
  return alert(
    INTEGRITY_RULES.unexpectedLevel,
    maxSeverity(INTEGRITY_RULES.unexpectedLevel.severity, severity),
    `pgAudit record at ${event.severity}, not at pgauditLogLevel ${expected} (pgaudit.log_level or pgaudit.log_client changed): ${summary}`,
    event,
  );
}

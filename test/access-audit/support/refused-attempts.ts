import { parseAccessAuditConfig } from '../../../src/config/access-audit';
import { RDS_PREFIX } from './pgaudit-server';

/**
 * The setting both refused-attempt live suites (refused-tampering-live, refused-acts-live)
 * read their logs under: alice is audited, app_svc is a service account (refusals alert
 * for both), and the server writes RDS's log_line_prefix, which the config parses. One
 * place, so the suites cannot drift apart on what they claim to show.
 */
export const REFUSED_DB = 'appdb';

/** The server's `log_line_prefix`, the one the config reads. */
export const REFUSED_PREFIX = RDS_PREFIX;

export const REFUSED_CONFIG = parseAccessAuditConfig({
  auditedRoles: ['alice'],
  serviceAccounts: ['app_svc'],
  logLinePrefix: REFUSED_PREFIX,
  alerts: { digestThreshold: 1000 },
});

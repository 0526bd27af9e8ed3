import type { AuditEvent } from './types';

/** Cheap first look: no statement without one of these words can tamper with the audit. */
const TAMPER_HINT =
  /pgaudit|pg_reload_conf|alter\s+system|pg_drop_replication_slot|drop\s+publication/i;

/** What weakens the audit, looked for outside string literals and comments. */
const TAMPER_STATEMENTS: readonly { pattern: RegExp; what: string }[] = [
  // SET / RESET / ALTER ROLE|USER|DATABASE … SET|RESET pgaudit.* (quoted or not).
  {
    pattern: /\b(?:set|reset)\s+(?:(?:session|local)\s+)?"?pgaudit"?\./i,
    what: 'pgaudit setting changed',
  },
  { pattern: /\balter\s+system\b/i, what: 'ALTER SYSTEM' },
  { pattern: /\bpg_reload_conf\s*\(/i, what: 'pg_reload_conf()' },
  { pattern: /\bdrop\s+extension\b[^;]*\bpgaudit\b/i, what: 'DROP EXTENSION pgaudit' },
  { pattern: /\bpg_drop_replication_slot\s*\(/i, what: 'replication slot dropped' },
  { pattern: /\bdrop\s+publication\b/i, what: 'publication dropped' },
];

/** `set_config('pgaudit.…', …)`: the setting name is itself a literal. */
const SET_CONFIG = /\bset_config\s*\(\s*(?:E?'|\$\$)\s*pgaudit\./i;

/**
 * What the statement does to weaken the audit (`pgaudit setting changed`,
 * `ALTER SYSTEM`, …), or `undefined`. Works on the normalised event's statement text,
 * so Database Activity Streams events are judged the same way as pgAudit records.
 */
export function auditTamperingOf(event: Pick<AuditEvent, 'statement'>): string | undefined {
  const statement = event.statement;
  if (!TAMPER_HINT.test(statement)) return undefined;
  if (SET_CONFIG.test(statement)) return 'pgaudit setting changed (set_config)';
  const code = withoutLiterals(statement);
  return TAMPER_STATEMENTS.find(({ pattern }) => pattern.test(code))?.what;
}

const IDENTITY_CHANGE =
  /^\s*(?:set\s+(?:(?:session|local)\s+)?(role|session\s+authorization)|reset\s+(role|session\s+authorization))\b\s*(?:to\s+|=\s*)?("(?:[^"]|"")*"|'(?:[^']|'')*'|[^\s;]+)?/i;

/**
 * For `SET ROLE x` / `SET SESSION AUTHORIZATION x` (and their RESET), the identity the
 * session acts as from now on (`DEFAULT` after RESET); otherwise `undefined`. pgAudit
 * keeps logging the login role in the prefix, so later records are to be read as this one.
 */
export function identityChangeOf(
  event: Pick<AuditEvent, 'command' | 'statement'>,
): string | undefined {
  if (event.command !== 'SET' && event.command !== 'RESET') return undefined;
  const match = IDENTITY_CHANGE.exec(event.statement);
  if (match === null) return undefined;
  if (match[2] !== undefined) return 'DEFAULT';
  const target = match[3];
  if (target === undefined) return undefined;
  if (target.startsWith('"')) return target.slice(1, -1).replace(/""/g, '"');
  if (target.startsWith("'")) return target.slice(1, -1).replace(/''/g, "'");
  return target.toLowerCase() === 'none' ? 'NONE' : target.toLowerCase();
}

/** The statement with string literals, dollar-quoted bodies and comments blanked out. */
function withoutLiterals(sql: string): string {
  return sql
    .replace(/--[^\n]*/g, ' ')
    .replace(/\/\*[\s\S]*?\*\//g, ' ')
    .replace(/'(?:[^']|'')*'/g, "''");
}

import type { AccessAuditConfig, AccessRuleConfig } from '../config/access-audit';
import { compileGlobs } from './glob';
import { identityOf } from './identity';
import { canaryNonceOf } from './canary';
import { ambiguousIdentityAlert, INTEGRITY_RULES, maxSeverity } from './integrity';
import { classifyNoise, isCatalogObject, reachesBeyondRelations, schemaOf } from './noise';
import type { FailedStatement } from './failed-statements';
import { placeholderEvent } from './parser';
import { isRefusal, serverErrorOf } from './refusals';
import {
  callsNotUndoneByError,
  identityChangeOf,
  mayWeakenAudit,
  refusedSettingOf,
  weakeningOf,
} from './tampering';
import type { AccessAlert, AlertSeverity, AuditEvent, Verdict } from './types';

/** The settings the rule engine reads; a validated `accessAudit` section has them all. */
export type RuleEngineConfig = Pick<
  AccessAuditConfig,
  'serviceAccounts' | 'ignoreDatabases' | 'ignoreSchemas' | 'defaultRules' | 'rules'
> &
  Partial<Pick<AccessAuditConfig, 'canary'>>;

/** RDS's own maintenance role: never a human. */
const RDS_INTERNAL_USERS = ['rdsadmin'];

/** A rule compiled to one predicate. */
interface CompiledRule {
  readonly name: string;
  readonly action: 'alert' | 'ignore';
  readonly severity: AlertSeverity;
  readonly includeServiceAccounts: boolean;
  readonly matches: (event: AuditEvent) => boolean;
}

/** The built-in rules checked before noise and exclusions: they watch the audit itself and identities. */
export const AUDIT_TAMPERING_RULE = { name: 'audit-tampering', severity: 'critical' } as const;
/** A statement that would have done what `audit-tampering` alerts on, ended by the server's error (refused, or failed). */
export const AUDIT_TAMPERING_ATTEMPT_RULE = {
  name: 'audit-tampering-attempt',
  severity: 'critical',
} as const;
export const IDENTITY_CHANGE_RULE = { name: 'identity-change', severity: 'medium' } as const;

/** The built-in rules, in the order they are tried. */
const BUILT_IN_RULES = {
  privilegeChanges: {
    name: 'privilege-change',
    severity: 'critical',
    // Service accounts log DDL and ROLE classes so a service credential running GRANT alerts.
    includeServiceAccounts: true,
    matches: (event: AuditEvent) => event.auditClass === 'ROLE',
  },
  ddl: {
    name: 'ddl',
    severity: 'medium',
    includeServiceAccounts: false,
    matches: (event: AuditEvent) => event.auditClass === 'DDL',
  },
  humanDml: {
    name: 'human-dml',
    severity: 'high',
    includeServiceAccounts: false,
    matches: (event: AuditEvent) => event.auditClass === 'WRITE',
  },
  humanReads: {
    name: 'human-read',
    severity: 'low',
    includeServiceAccounts: false,
    // A catalog relation's record is a read when the statement also reaches data no
    // relation record shows (`SELECT lo_get(…) FROM pg_class`).
    matches: (event: AuditEvent) =>
      event.auditClass === 'READ' &&
      (!isCatalogObject(event.objectName || 'x.x') || reachesBeyondRelations(event.statement)),
  },
} as const satisfies Record<
  Exclude<keyof AccessAuditConfig['defaultRules'], 'auditTampering' | 'identityChanges'>,
  Omit<CompiledRule, 'action'>
>;

/**
 * Decides, for each parsed pgAudit event, whether it is tool noise, excluded by
 * configuration, an alert, or simply recorded. The same engine runs in the Lambda
 * and in `audit-trail pgaudit scan`, so what the CLI shows is what would page.
 *
 * Order: ambiguous identity → audit tampering (anyone but RDS's own `rdsadmin`; the
 * change history silenced at its source, anyone but a service account) →
 * identity change (humans) → the canary's own record → noise → ignored database → service account → ignored
 * schema → custom `ignore` rules → custom `alert` rules → built-in rules. An event
 * whose user/database cannot be read unambiguously is never noise or excluded: it
 * alerts as `ambiguous-identity`, at least `high` and as severe as the rule it matches.
 */
export class AccessRuleEngine {
  private readonly serviceAccounts: ReadonlySet<string>;
  private readonly ignoreDatabases: ReadonlySet<string>;
  private readonly ignoreSchemas: ReadonlySet<string>;
  private readonly ignoreRules: readonly CompiledRule[];
  private readonly alertRules: readonly CompiledRule[];
  private readonly auditTampering: boolean;
  private readonly identityChanges: boolean;
  private readonly canaryRole: string | undefined;

  constructor(config: RuleEngineConfig) {
    this.canaryRole = config.canary?.role;
    this.serviceAccounts = new Set([...config.serviceAccounts, ...RDS_INTERNAL_USERS]);
    this.ignoreDatabases = new Set(config.ignoreDatabases);
    this.ignoreSchemas = new Set(config.ignoreSchemas);
    const custom = config.rules.map(compileRule);
    this.ignoreRules = custom.filter((rule) => rule.action === 'ignore');
    const builtIn = (Object.keys(BUILT_IN_RULES) as (keyof typeof BUILT_IN_RULES)[])
      .filter((key) => config.defaultRules[key])
      .map((key): CompiledRule => ({ ...BUILT_IN_RULES[key], action: 'alert' }));
    this.auditTampering = config.defaultRules.auditTampering;
    this.identityChanges = config.defaultRules.identityChanges;
    this.alertRules = [...custom.filter((rule) => rule.action === 'alert'), ...builtIn];
  }

  /** True for a configured service account (or RDS's internal role). */
  isServiceAccount(user: string | undefined): boolean {
    return user !== undefined && this.serviceAccounts.has(user);
  }

  /** Classifies one event. */
  evaluate(event: AuditEvent): Verdict {
    if (event.identityAmbiguous === true) return this.ambiguous(event);
    const watched = this.watchAudit(event);
    if (watched !== undefined) return watched;
    // Before noise: the canary's SELECT of a literal would otherwise be a health check.
    const nonce = this.canaryRole === undefined ? undefined : canaryNonceOf(event, this.canaryRole);
    if (nonce !== undefined) return { kind: 'canary', nonce };
    const noise = classifyNoise(event);
    if (noise !== undefined) return { kind: 'noise', reason: noise };
    if (event.database !== undefined && this.ignoreDatabases.has(event.database)) {
      return { kind: 'excluded', reason: 'database' };
    }
    const serviceAccount = this.isServiceAccount(event.user);
    const schema = schemaOf(event.objectName);
    if (schema !== undefined && this.ignoreSchemas.has(schema))
      return { kind: 'excluded', reason: 'schema' };
    for (const rule of this.ignoreRules) {
      if ((!serviceAccount || rule.includeServiceAccounts) && rule.matches(event)) {
        return { kind: 'excluded', reason: 'ignore-rule', rule: rule.name };
      }
    }
    for (const rule of this.alertRules) {
      if ((!serviceAccount || rule.includeServiceAccounts) && rule.matches(event)) {
        return { kind: 'alert', alert: toAlert(rule, event) };
      }
    }
    return serviceAccount ? { kind: 'excluded', reason: 'service-account' } : { kind: 'pass' };
  }

  /**
   * `audit-tampering-attempt` for a statement (or connection) the server ended with its
   * own error (see {@link serverErrorOf}; never an error the code raised, whatever its
   * words): what it would have done to the audit, judged as `audit-tampering` judges a
   * record (by anyone but `rdsadmin`; the change history silenced, by anyone but a
   * service account), from the statement the server says its error is about (the logged
   * one, or the one a function ran), else from the server's message naming a watched
   * setting it refused (a connection refused at startup, a function whose text the log
   * does not show). `undefined` when it would not have touched the audit. The summary says
   * whether the server refused it (`permission denied…`) or it failed otherwise (an
   * invalid value).
   */
  evaluateFailure(failure: FailedStatement): AccessAlert | undefined {
    if (!this.auditTampering) return undefined;
    const event: AuditEvent = {
      ...placeholderEvent(failure.fields, failure.severity, failure.statement ?? ''),
      errorMessage: failure.message,
    };
    // An ambiguous prefix may claim a service account's or rdsadmin's name.
    const trusted = event.identityAmbiguous !== true;
    if (trusted && RDS_INTERNAL_USERS.includes(event.user ?? '')) return undefined;
    const server = serverErrorOf(failure);
    if (server === undefined) return undefined;
    let what: string | undefined;
    for (const statement of server.statements) {
      what = this.tamperingOf({ ...event, statement }, trusted);
      if (what !== undefined) break;
    }
    what ??= refusedSettingOf(failure.message);
    if (what === undefined) return undefined;
    const outcome = isRefusal(failure.message) ? 'refused by the server' : 'failed';
    const kept = callsNotUndoneByError(
      event.statement === '' ? server.statements : [event.statement, ...server.statements],
      failure.message,
    );
    const keptNote =
      kept.length === 0
        ? ''
        : `; ${kept.join(', ')} ${kept.length === 1 ? 'is' : 'are'} not undone by an error: ${kept.length === 1 ? 'it' : 'they'} may have taken effect`;
    const alert = builtInAlert(
      AUDIT_TAMPERING_ATTEMPT_RULE,
      `${identityOf(event)}: attempted (${what}), ${outcome} (${failure.severity}: ${clip(failure.message)})${keptNote}`,
      event,
    );
    return server.ranInside ? { ...alert, ended: server.statements } : alert;
  }

  /** What the statement does to the audit (`audit-tampering`), or `undefined`. */
  private tamperingOf(
    event: Pick<AuditEvent, 'statement' | 'user'>,
    trusted: boolean,
  ): string | undefined {
    if (!mayWeakenAudit(event.statement)) return undefined;
    return weakeningOf(event.statement, !(trusted && this.isServiceAccount(event.user)));
  }

  /** audit-tampering and identity-change, which no noise rule or exclusion may hide. */
  private watchAudit(event: AuditEvent): Verdict | undefined {
    if (this.auditTampering && !RDS_INTERNAL_USERS.includes(event.user ?? '')) {
      const what = this.tamperingOf(event, true);
      if (what !== undefined) {
        return {
          kind: 'alert',
          alert: builtInAlert(AUDIT_TAMPERING_RULE, `${summarize(event)}: ${what}`, event),
        };
      }
    }
    if (this.identityChanges && !this.isServiceAccount(event.user)) {
      const actingAs = identityChangeOf(event);
      if (actingAs !== undefined) {
        return {
          kind: 'alert',
          alert: {
            ...builtInAlert(
              IDENTITY_CHANGE_RULE,
              `${summarize(event)}: now acting as ${actingAs}`,
              event,
            ),
            actingAs,
          },
        };
      }
    }
    return undefined;
  }

  private ambiguous(event: AuditEvent): Verdict {
    const matched = this.alertRules.find((rule) => rule.matches(event));
    const severity = maxSeverity(INTEGRITY_RULES.ambiguous.severity, matched?.severity);
    return {
      kind: 'alert',
      alert: ambiguousIdentityAlert(event, summarize(event), severity),
    };
  }
}

function compileRule(rule: AccessRuleConfig): CompiledRule {
  const checks: ((event: AuditEvent) => boolean)[] = [];
  if (rule.classes) {
    const classes = new Set<string>(rule.classes);
    checks.push((event) => classes.has(event.auditClass));
  }
  if (rule.commands) {
    const commands = new Set(rule.commands.map((command) => command.toUpperCase()));
    checks.push((event) => commands.has(event.command.toUpperCase()));
  }
  if (rule.users) {
    const match = compileGlobs(rule.users);
    checks.push((event) => match(event.user ?? ''));
  }
  if (rule.databases) {
    const match = compileGlobs(rule.databases);
    checks.push((event) => match(event.database ?? ''));
  }
  if (rule.objects) {
    const match = compileGlobs(rule.objects);
    checks.push((event) => match(event.objectName));
  }
  return {
    name: rule.name,
    action: rule.action,
    severity: rule.severity,
    includeServiceAccounts: rule.includeServiceAccounts,
    matches: (event) => checks.every((check) => check(event)),
  };
}

/** An alert of a built-in rule checked before noise and exclusions (its name and severity). */
function builtInAlert(
  rule: { readonly name: string; readonly severity: AlertSeverity },
  summary: string,
  event: AuditEvent,
): AccessAlert {
  return { rule: rule.name, severity: rule.severity, summary, event };
}

function toAlert(rule: CompiledRule, event: AuditEvent): AccessAlert {
  return { rule: rule.name, severity: rule.severity, summary: summarize(event), event };
}

function clip(text: string, max = 160): string {
  const line = text.replace(/\s+/g, ' ');
  return line.length <= max ? line : `${line.slice(0, max)}…`;
}

/**
 * `alice@appdb from 10.0.0.5: UPDATE TABLE public.items (WRITE)`; a record without a
 * session: `unknown identity (no session): SELECT (READ)`.
 */
export function summarize(event: AuditEvent): string {
  const object =
    event.objectName === ''
      ? ''
      : event.objectType === ''
        ? ` ${event.objectName}`
        : ` ${event.objectType} ${event.objectName}`;
  return `${identityOf(event)}: ${event.command}${object} (${event.auditClass})`;
}

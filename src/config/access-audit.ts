import { z } from 'zod';
import { activityStreamSchema } from './activity-stream';
import { identifierSchema } from './identifier';
import { pgauditLogClasses, type PgauditLogClass } from '../access-audit/pgaudit-log-classes';

/** pgAudit statement classes a custom rule may name. */
export const auditClassSchema = z.enum([
  'READ',
  'WRITE',
  'FUNCTION',
  'ROLE',
  'DDL',
  'MISC',
  'MISC_SET',
]);

/** Alert severities, carried as the SNS message attribute `severity`. */
export const alertSeveritySchema = z.enum(['low', 'medium', 'high', 'critical']);

/**
 * A glob over a parsed field: `*` matches any run of characters, `?` one character,
 * everything else itself (case-sensitive, like PostgreSQL identifiers).
 */
const patternSchema = z.string().min(1, 'must not be empty');

/**
 * A custom rule. Every criterion that is given must match (AND); each list matches
 * when any of its entries matches (OR). A rule with no criteria matches everything.
 */
export const accessRuleSchema = z
  .object({
    /** Rule name, shown in alerts and sent as the SNS attribute `rule`. */
    name: z.string().min(1, 'must not be empty').max(64, 'must be at most 64 characters'),
    /** What a match does: `alert`, or `ignore` to silence matching events before any alert rule. @default "alert" */
    action: z.enum(['alert', 'ignore']).default('alert'),
    /** Severity of the alert. @default "high" */
    severity: alertSeveritySchema.default('high'),
    /** pgAudit classes (READ, WRITE, …). @default any */
    classes: z.array(auditClassSchema).min(1).optional(),
    /** Command tags, case-insensitive (`UPDATE`, `CREATE ROLE`, `COPY`). @default any */
    commands: z.array(z.string().min(1)).min(1).optional(),
    /** Role name globs. @default any */
    users: z.array(patternSchema).min(1).optional(),
    /** Database name globs. @default any */
    databases: z.array(patternSchema).min(1).optional(),
    /** Object name globs over `schema.name` (`public.*`, `billing.invoices`). @default any */
    objects: z.array(patternSchema).min(1).optional(),
    /** Also match service accounts (they are excluded before rules otherwise). @default false */
    includeServiceAccounts: z.boolean().default(false),
  })
  .strict();

export type AccessRuleConfig = z.infer<typeof accessRuleSchema>;

/** The built-in rules, each of which can be switched off. */
export const defaultRulesSchema = z
  .object({
    /** Human INSERT/UPDATE/DELETE/TRUNCATE/MERGE/COPY FROM on application tables (severity high). @default true */
    humanDml: z.boolean().default(true),
    /** GRANT, REVOKE, CREATE/ALTER/DROP ROLE and other ROLE-class statements (severity critical). @default true */
    privilegeChanges: z.boolean().default(true),
    /** DDL (CREATE/ALTER/DROP of tables, functions, …) (severity medium). @default true */
    ddl: z.boolean().default(true),
    /**
     * Human reads (SELECT, COPY TO) of application tables (severity low), as the
     * user-activity monitors the kit replaces counted them; `HumanReads` is their metric.
     * @default true
     */
    humanReads: z.boolean().default(true),
    /**
     * Anything that weakens the audit itself, by anyone, service accounts included
     * (severity critical): changing a `pgaudit.*` setting (SET/RESET, `set_config`,
     * ALTER ROLE/DATABASE … SET), ALTER SYSTEM, `pg_reload_conf()`, DROP EXTENSION
     * pgaudit, dropping a replication slot or publication. @default true
     */
    auditTampering: z.boolean().default(true),
    /** `SET ROLE` / `SET SESSION AUTHORIZATION` by a human (severity medium): later records keep the login role. @default true */
    identityChanges: z.boolean().default(true),
  })
  .strict();

/** How alerts are delivered. */
export const alertSettingsSchema = z
  .object({
    /** More alerts than this from one Lambda invocation are sent as one digest message. @default 10 */
    digestThreshold: z.number().int().min(1).default(10),
    /** Statements longer than this are cut in alert messages (the log keeps them whole). @default 2000 */
    maxStatementLength: z.number().int().min(100).max(20_000).default(2000),
    /** Prefix of the SNS subject line. @default "[audit-trail]" */
    subjectPrefix: z.string().max(40).default('[audit-trail]'),
    /** E-mail addresses subscribed to the alert topic (each confirms by e-mail). @default [] */
    emails: z.array(z.string().email('must be an e-mail address')).default([]),
    /** HTTPS endpoints subscribed to the alert topic. @default [] */
    httpsEndpoints: z
      .array(
        z
          .string()
          .url()
          .refine((url) => url.startsWith('https://'), 'must be an https:// URL'),
      )
      .default([]),
    /** The human-activity alarm fires when at least this many alerts arrive in one period. @default 1 */
    alarmThreshold: z.number().int().min(1).default(1),
    /** Alarm evaluation period in minutes. @default 5 */
    alarmPeriodMinutes: z.number().int().min(1).max(1440).default(5),
  })
  .strict();

/** Optional forwarding of events to an SQS queue (for a SIEM or ticketing). */
export const sqsSettingsSchema = z
  .object({
    /** Create the queue and forward to it. @default false */
    enabled: z.boolean().default(false),
    /**
     * FIFO queue; messages are deduplicated by CloudWatch log event id (pgAudit) or by
     * Kinesis event id and position (Database Activity Streams). @default false
     */
    fifo: z.boolean().default(false),
    /** `alerts` forwards alerts only; `events` forwards every event that is not noise or excluded. @default "alerts" */
    forward: z.enum(['alerts', 'events']).default('alerts'),
    /**
     * With `forward: "events"`, what is sent: `kit` (the kit's JSON per record), `raw`
     * (pgAudit: the CloudWatch log event as delivered: `id`, `timestamp`, `message`,
     * `logGroup`, `logStream`; also the ERROR and STATEMENT lines of failed statements,
     * which have no pgAudit record. Database Activity Streams: the activity event as RDS
     * wrote it, decrypted, as `activityEvent` with `id`, `streamArn`, `sequenceNumber`,
     * `position`, `clusterId`, `instanceId`, `truncated`) or `both`. Each message carries
     * the SQS attribute `format` (`raw`/`kit`) in `raw` and `both`. @default "kit"
     */
    format: z.enum(['raw', 'kit', 'both']).default('kit'),
    /** Roles whose events are never forwarded. @default [] */
    ignoreUsers: z.array(identifierSchema).default([]),
    /** Databases whose events are never forwarded. @default [] */
    ignoreDatabases: z.array(identifierSchema).default([]),
    /** Days a message stays in the queue (1–14). @default 4 */
    retentionDays: z.number().int().min(1).max(14).default(4),
  })
  .strict();

/**
 * The canary that proves the access audit is alive end to end: on a schedule a Lambda
 * logs in as `role` and runs one audited statement carrying a nonce; the alert Lambda
 * recognises the record and publishes `CanarySeen`; an alarm fires when no canary was
 * seen (missing data counts as not seen).
 */
export const canarySettingsSchema = z
  .object({
    /**
     * The dedicated login the canary runs as. `pgaudit setup` gives it
     * `pgaudit.log = 'read'`; only its canary statement is recognised as the canary,
     * anything else it runs is judged like any human's. @default "audit_trail_canary"
     */
    role: identifierSchema.default('audit_trail_canary'),
    /** Minutes between canary runs (the EventBridge schedule and the alarm period). @default 5 */
    intervalMinutes: z.number().int().min(1).max(60).default(5),
    /** Consecutive periods without a canary before the alarm fires. @default 2 */
    missedPeriodsToAlarm: z.number().int().min(1).max(24).default(2),
  })
  .strict();

/**
 * The `accessAudit` section: which roles pgAudit audits, which accounts and places
 * never alert, the alert rules and how alerts are delivered.
 */
export const accessAuditSchema = z
  .object({
    /** Human roles pgAudit is enabled for (`ALTER ROLE … SET pgaudit.log`). @default [] */
    auditedRoles: z.array(identifierSchema).default([]),
    /**
     * Application roles: `pgaudit.log = 'ddl,role'` (their reads and writes are not
     * logged), and only privilege changes and audit tampering alert for them. @default []
     */
    serviceAccounts: z.array(identifierSchema).default([]),
    /** Databases whose events are dropped. @default ["rdsadmin"] */
    ignoreDatabases: z.array(identifierSchema).default(['rdsadmin']),
    /** Schemas whose objects never alert (catalog schemas are always noise). @default [] */
    ignoreSchemas: z.array(identifierSchema).default([]),
    /** `pgaudit.log` for audited roles. @default "all" */
    pgauditLog: z.string().min(1).default('all'),
    /** Cluster-wide `pgaudit.log`, so a role nobody listed still has DDL and privilege changes logged. @default "ddl,role" */
    clusterPgauditLog: z.string().min(1).default('ddl,role'),
    /** `pgaudit.log_parameter` for audited roles (bind values of GUI tools and drivers). @default true */
    logParameter: z.boolean().default(true),
    /** `pgaudit.log_relation`: one record per relation, so rules see object names. @default true */
    logRelation: z.boolean().default(true),
    /** `pgaudit.log_rows` (pgAudit 1.6 and later): rows read or written. @default false */
    logRows: z.boolean().default(false),
    /** The source's `log_line_prefix` (stderr logs). @default "%t:%r:%u@%d:[%p]:" (the RDS default) */
    logLinePrefix: z.string().min(1).default('%t:%r:%u@%d:[%p]:'),
    /**
     * How the source writes its log (`log_destination`): `stderr` with the
     * `log_line_prefix`, `csvlog`, or `jsonlog` (PostgreSQL 15+). csvlog and jsonlog
     * delimit every field, so no role or database name can make a line ambiguous.
     * @default "stderr"
     */
    logFormat: z.enum(['stderr', 'csvlog', 'jsonlog']).default('stderr'),
    /** `pgaudit.log_level`: only messages of this severity are pgAudit records. @default "log" */
    pgauditLogLevel: z
      .enum(['debug5', 'debug4', 'debug3', 'debug2', 'debug1', 'info', 'notice', 'warning', 'log'])
      .default('log'),
    /** The built-in rules. @default all on */
    defaultRules: defaultRulesSchema.default(() => defaultRulesSchema.parse({})),
    /** Custom rules: `ignore` rules silence matching events, `alert` rules are checked before the built-in ones. @default [] */
    rules: z.array(accessRuleSchema).default([]),
    /** Alert delivery. */
    alerts: alertSettingsSchema.default(() => alertSettingsSchema.parse({})),
    /** Optional SQS forwarding. */
    sqs: sqsSettingsSchema.default(() => sqsSettingsSchema.parse({})),
    /** The liveness canary (role, schedule, alarm). */
    canary: canarySettingsSchema.default(() => canarySettingsSchema.parse({})),
    /** Retention of the PostgreSQL log group in days. @default 365 */
    logRetentionDays: z.number().int().min(1).default(365),
    /**
     * Database Activity Streams (Aurora only; refused for an RDS instance source), the
     * access audit a database administrator cannot switch off. See {@link activityStreamSchema}.
     * @default undefined (off)
     */
    activityStream: activityStreamSchema.optional(),
  })
  .strict()
  .superRefine((section, ctx) => {
    requireLoggedClasses(section.pgauditLog, ['role', 'misc_set'], ['pgauditLog'], ctx);
    requireLoggedClasses(section.clusterPgauditLog, ['ddl', 'role'], ['clusterPgauditLog'], ctx);
    if (section.logFormat === 'stderr') requireIdentityInPrefix(section.logLinePrefix, ctx);
    if (section.sqs.format !== 'kit' && section.sqs.forward !== 'events')
      ctx.addIssue({
        code: 'custom',
        path: ['sqs', 'format'],
        message: `"${section.sqs.format}" forwards log events: it needs forward "events"`,
      });
    const services = new Set(section.serviceAccounts);
    const canary = section.canary.role;
    if (services.has(canary))
      ctx.addIssue({
        code: 'custom',
        path: ['canary', 'role'],
        message: `"${canary}" is also a service account`,
      });
    section.auditedRoles.forEach((role, index) => {
      if (role === canary)
        ctx.addIssue({
          code: 'custom',
          path: ['auditedRoles', index],
          message: `"${role}" is the canary role`,
        });
      if (services.has(role)) {
        ctx.addIssue({
          code: 'custom',
          path: ['auditedRoles', index],
          message: `"${role}" is also a service account`,
        });
      }
    });
    const names = new Set<string>();
    section.rules.forEach((rule, index) => {
      if (names.has(rule.name)) {
        ctx.addIssue({
          code: 'custom',
          path: ['rules', index, 'name'],
          message: `rule "${rule.name}" is defined twice`,
        });
      }
      names.add(rule.name);
    });
  });

/** A validated `accessAudit` section with defaults applied. */
export type AccessAuditConfig = z.infer<typeof accessAuditSchema>;

/** The section as written in the config file. */
export type AccessAuditConfigInput = z.input<typeof accessAuditSchema>;

/** Validates an `accessAudit` section on its own (Lambda environment, tests). */
export function parseAccessAuditConfig(input: unknown): AccessAuditConfig {
  return accessAuditSchema.parse(input ?? {});
}

/**
 * Why each class must be logged: without it a tamper rule reads nothing. ROLE: a session's
 * `SET pgaudit.log = 'none'` leaves no record (test/access-audit/log-edges-live), so
 * `ALTER ROLE ... SET pgaudit.log = 'none'`, a role silencing its later sessions, is seen
 * only through the ROLE class. MISC_SET: the class of every other SET. DDL: the cluster value covers roles nobody listed.
 */
const CLASS_NEEDED_FOR: Readonly<Partial<Record<PgauditLogClass, string>>> = {
  role: "without it an ALTER ROLE ... SET pgaudit.log = 'none' (a role silencing its later sessions) leaves no record",
  misc_set:
    'without it no SET leaves a record (SET log_error_verbosity, SET pgaudit.log to a value that still logs SET: the tamper rules read them)',
  ddl: 'without it CREATE, ALTER and DROP by roles nobody listed leave no record',
};

function requireLoggedClasses(
  value: string,
  needed: readonly PgauditLogClass[],
  path: readonly string[],
  ctx: z.RefinementCtx,
): void {
  let classes: ReadonlySet<PgauditLogClass>;
  try {
    classes = pgauditLogClasses(value);
  } catch (error) {
    ctx.addIssue({ code: 'custom', path: [...path], message: (error as Error).message });
    return;
  }
  for (const each of needed)
    if (!classes.has(each))
      ctx.addIssue({
        code: 'custom',
        path: [...path],
        message: `"${value}" does not log the ${each.toUpperCase()} class: ${CLASS_NEEDED_FOR[each]}`,
      });
}

/**
 * The stderr prefix must name the user, the database and the process: rules judge by user
 * and database, and the tamper and parallel-worker checks follow a session by its pid.
 */
function requireIdentityInPrefix(prefix: string, ctx: z.RefinementCtx): void {
  const escapes = new Set(prefix.replace(/%%/g, '').match(/%[a-zA-Z]/g) ?? []);
  const missing = ['%u', '%d', '%p'].filter((escape) => !escapes.has(escape));
  if (missing.length > 0)
    ctx.addIssue({
      code: 'custom',
      path: ['logLinePrefix'],
      message: `"${prefix}" lacks ${missing.join(', ')}: the access audit needs the user (%u), database (%d) and process id (%p) of every stderr record`,
    });
}

import { AuditTrailError } from '../errors';
import type pg from 'pg';
import type { AccessAuditConfig } from '../config/access-audit';
import { quoteIdent, quoteLiteral } from '../postgres/identifiers';
import { reachesServerLog } from './message-levels';
import { severityOf, type PgauditLogLevel } from './parser';

/**
 * `pgaudit.log` of service accounts: their reads and writes stay out of the log (the
 * application's volume), but DDL and privilege changes are still logged, because a
 * service credential running GRANT is exactly the misuse to catch.
 */
export const SERVICE_ACCOUNT_PGAUDIT_LOG = 'ddl,role';

/** The audit role RDS requires for `pgaudit.role`. */
export const RDS_AUDIT_ROLE = 'rds_pgaudit';

/** The settings `setup` and `check` manage. */
export type PgauditSetupConfig = Pick<
  AccessAuditConfig,
  | 'auditedRoles'
  | 'serviceAccounts'
  | 'pgauditLog'
  | 'logParameter'
  | 'logRelation'
  | 'logRows'
  | 'logLinePrefix'
  | 'logFormat'
  | 'pgauditLogLevel'
  | 'canary'
>;

/**
 * `pgaudit.log` of the canary role: its canary statement is a READ; nothing else it
 * could run (it has no privileges) needs logging to prove the pipeline alive.
 */
export const CANARY_PGAUDIT_LOG = 'read';

/**
 * The canary login's limits beyond plain LOGIN: it inherits no role's rights and holds at
 * most two connections (its Lambda's, and the single-user rotation's while it runs).
 */
export const CANARY_ROLE_LIMITS = 'NOINHERIT CONNECTION LIMIT 2';

/** The canary role's settings: what to log, and that a stuck statement cannot hold a connection. */
export function canaryRoleSettings(): Record<string, string> {
  return { 'pgaudit.log': CANARY_PGAUDIT_LOG, statement_timeout: '5s' };
}

/** One line of `audit-trail pgaudit check`. */
export interface CheckResult {
  /** What was checked, e.g. `role alice`. */
  readonly item: string;
  readonly ok: boolean;
  /** What was found. */
  readonly detail: string;
  /** What to do about a failure. */
  readonly remedy?: string;
}

const PRELOAD_REMEDY =
  'add pgaudit to shared_preload_libraries in the DB cluster parameter group (pgauditClusterParameters() in ' +
  'infra/access-audit/parameters.ts does this), then reboot every instance of the cluster';

/** Thrown by {@link setupPgaudit} when the server cannot be set up from SQL. */
export class PgauditSetupError extends AuditTrailError {
  override readonly name = 'PgauditSetupError';
  constructor(message: string, options: { readonly hint?: string; readonly cause?: unknown } = {}) {
    super(message, { code: 'PGAUDIT_SETUP', kind: 'finding', ...options });
  }
}

/**
 * The per-role settings an audited role should carry. `log_rows` is only set when
 * wanted: pgAudit before 1.6 does not know it.
 */
export function auditedRoleSettings(config: PgauditSetupConfig): Record<string, string> {
  return {
    'pgaudit.log': config.pgauditLog,
    'pgaudit.log_parameter': config.logParameter ? 'on' : 'off',
    'pgaudit.log_relation': config.logRelation ? 'on' : 'off',
    ...(config.logRows ? { 'pgaudit.log_rows': 'on' } : {}),
  };
}

/** One step of `pgaudit setup`: the statements it runs and the line that reports it. */
export interface PgauditSetupStep {
  /** The SQL, identifiers and values quoted, in the order they run. */
  readonly statements: readonly string[];
  /** What the step does, as `pgaudit setup` reports it once done. */
  readonly done: string;
}

/**
 * What {@link setupPgaudit} would run on the connected database, read without changing
 * anything (`pgaudit setup --dry-run` prints it): the same checks first, then each step
 * with its statements.
 * @throws PgauditSetupError when pgaudit is not preloaded or a configured role is missing.
 * @example
 * ```ts
 * for (const step of await planPgauditSetup(client, config))
 *   console.log(step.statements.join(';\n'));
 * ```
 */
export async function planPgauditSetup(
  client: pg.Client,
  config: PgauditSetupConfig,
): Promise<PgauditSetupStep[]> {
  if (!(await isPreloaded(client)))
    throw new PgauditSetupError(`pgaudit is not preloaded: ${PRELOAD_REMEDY}`);
  const missing = await missingRoles(client, [...config.auditedRoles, ...config.serviceAccounts]);
  if (missing.length > 0) {
    throw new PgauditSetupError(`roles named in accessAudit do not exist: ${missing.join(', ')}`);
  }
  const steps: PgauditSetupStep[] = [
    { statements: ['CREATE EXTENSION IF NOT EXISTS pgaudit'], done: 'extension pgaudit present' },
  ];
  if ((await missingRoles(client, [RDS_AUDIT_ROLE])).length > 0)
    steps.push({
      statements: [`CREATE ROLE ${quoteIdent(RDS_AUDIT_ROLE)} NOLOGIN`],
      done: `role ${RDS_AUDIT_ROLE} created`,
    });
  const settings = auditedRoleSettings(config);
  for (const role of config.auditedRoles)
    steps.push({
      statements: roleSettingStatements(role, settings),
      done: `role ${role}: ${formatSettings(settings)}`,
    });
  for (const role of config.serviceAccounts)
    steps.push({
      statements: roleSettingStatements(role, { 'pgaudit.log': SERVICE_ACCOUNT_PGAUDIT_LOG }),
      done: `role ${role}: pgaudit.log=${SERVICE_ACCOUNT_PGAUDIT_LOG} (service account)`,
    });
  steps.push(...(await canaryRoleSteps(client, config.canary.role)));
  return steps;
}

/**
 * Prepares the connected database for access audit: verifies pgaudit is preloaded
 * (it cannot be loaded from SQL), creates the extension (without it nothing is
 * logged and nothing reports an error) and the `rds_pgaudit` role, then sets
 * `pgaudit.*` on every audited role and `pgaudit.log = 'ddl,role'` on every service
 * account. Roles in neither list keep the cluster default (`clusterPgauditLog`).
 * Idempotent. Runs {@link planPgauditSetup}'s steps. Returns one line per action taken.
 * @throws PgauditSetupError when pgaudit is not preloaded or a configured role is missing.
 */
export async function setupPgaudit(
  client: pg.Client,
  config: PgauditSetupConfig,
): Promise<string[]> {
  const steps = await planPgauditSetup(client, config);
  for (const step of steps) for (const statement of step.statements) await client.query(statement);
  return steps.map((step) => step.done);
}

/** `ALTER ROLE role SET name = 'value'` for each setting. */
function roleSettingStatements(role: string, settings: Record<string, string>): string[] {
  return Object.entries(settings).map(
    ([name, value]) => `ALTER ROLE ${quoteIdent(role)} SET ${name} = ${quoteLiteral(value)}`,
  );
}

/**
 * Creates the canary login when missing: LOGIN and nothing else (no superuser, no
 * role creation, no membership, no inherited rights, two connections at most), so the
 * credential the scheduled Lambda holds can do no more than run its literal SELECT.
 * It gets no password here: the operator sets one and stores it in the canary's secret.
 */
async function canaryRoleSteps(client: pg.Client, role: string): Promise<PgauditSetupStep[]> {
  const steps: PgauditSetupStep[] = [];
  if ((await missingRoles(client, [role])).length > 0)
    steps.push({
      statements: [
        `CREATE ROLE ${quoteIdent(role)} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS ${CANARY_ROLE_LIMITS}`,
      ],
      done: `role ${role} created for the canary (LOGIN only; set its password with ALTER ROLE ${quoteIdent(role)} PASSWORD … and store it in the canary's secret)`,
    });
  const settings = canaryRoleSettings();
  steps.push({
    statements: roleSettingStatements(role, settings),
    done: `role ${role}: ${formatSettings(settings)} (canary)`,
  });
  return steps;
}

/**
 * Reports each prerequisite of access audit as OK or FAIL: preload, extension,
 * `pgaudit.role`, the audit role, the log_line_prefix the parser expects, the level
 * records are written at, the language of the log's labels, and the settings of every
 * audited role and service account.
 */
export async function checkPgaudit(
  client: pg.Client,
  config: PgauditSetupConfig,
): Promise<CheckResult[]> {
  const results: CheckResult[] = [];
  const preloaded = await isPreloaded(client);
  results.push(
    preloaded
      ? { item: 'shared_preload_libraries', ok: true, detail: 'pgaudit is preloaded' }
      : {
          item: 'shared_preload_libraries',
          ok: false,
          detail: 'pgaudit is not preloaded',
          remedy: PRELOAD_REMEDY,
        },
  );
  const extension = await client.query<{ extversion: string }>(
    "SELECT extversion FROM pg_extension WHERE extname = 'pgaudit'",
  );
  const version = extension.rows[0]?.extversion;
  results.push(
    version !== undefined
      ? {
          item: 'extension',
          ok: true,
          detail: `pgaudit ${version} created in ${client.database ?? 'this database'}`,
        }
      : {
          item: 'extension',
          ok: false,
          detail: 'CREATE EXTENSION pgaudit was not run in this database: pgAudit logs nothing',
          remedy: 'run audit-trail pgaudit setup',
        },
  );
  const auditRole = preloaded ? await currentSetting(client, 'pgaudit.role') : undefined;
  results.push(
    auditRole === RDS_AUDIT_ROLE
      ? { item: 'pgaudit.role', ok: true, detail: RDS_AUDIT_ROLE }
      : {
          item: 'pgaudit.role',
          ok: false,
          detail: `is "${auditRole ?? ''}"`,
          remedy: `set pgaudit.role = ${RDS_AUDIT_ROLE} in the DB cluster parameter group`,
        },
  );
  const roleExists = (await missingRoles(client, [RDS_AUDIT_ROLE])).length === 0;
  results.push(
    roleExists
      ? { item: `role ${RDS_AUDIT_ROLE}`, ok: true, detail: 'exists' }
      : {
          item: `role ${RDS_AUDIT_ROLE}`,
          ok: false,
          detail: 'missing',
          remedy: 'run audit-trail pgaudit setup',
        },
  );
  const prefix = await currentSetting(client, 'log_line_prefix');
  results.push(
    prefix === config.logLinePrefix
      ? { item: 'log_line_prefix', ok: true, detail: prefix }
      : {
          item: 'log_line_prefix',
          ok: false,
          detail: `server has "${prefix ?? ''}", config expects "${config.logLinePrefix}": records would not be parsed`,
          remedy:
            'set accessAudit.logLinePrefix to the server value (or fix log_line_prefix in the parameter group)',
        },
  );
  const records = await recordLevel(client);
  results.push(checkRecordLevel(records, config));
  results.push(await checkMessageLanguage(client, config));
  results.push(await checkLogMinMessages(client, records));
  results.push(await checkErrorStatements(client));
  const roleSettings = await readRoleSettings(client, [
    ...config.auditedRoles,
    ...config.serviceAccounts,
  ]);
  for (const role of config.auditedRoles) {
    results.push(checkRole(role, roleSettings.get(role), auditedRoleSettings(config)));
  }
  for (const role of config.serviceAccounts) {
    results.push(
      checkRole(role, roleSettings.get(role), { 'pgaudit.log': SERVICE_ACCOUNT_PGAUDIT_LOG }),
    );
  }
  results.push(await checkCanaryRole(client, config.canary.role));
  return results;
}

/** The canary role exists, can log in, holds no power and logs its READ. */
async function checkCanaryRole(client: pg.Client, role: string): Promise<CheckResult> {
  const item = `canary role ${role}`;
  const { rows } = await client.query<{
    rolcanlogin: boolean;
    powers: string[];
    memberof: string[];
  }>(
    // Catalog calls qualified: a lookalike in public (array_remove(text[], text) is an
    // exact match) would run as the administrator and could hide a power
    // (test/access-audit/planted-functions).
    `SELECT r.rolcanlogin,
            pg_catalog.array_remove(ARRAY[
              CASE WHEN r.rolsuper THEN 'SUPERUSER' END,
              CASE WHEN r.rolcreaterole THEN 'CREATEROLE' END,
              CASE WHEN r.rolcreatedb THEN 'CREATEDB' END,
              CASE WHEN r.rolreplication THEN 'REPLICATION' END,
              CASE WHEN r.rolbypassrls THEN 'BYPASSRLS' END], NULL) AS powers,
            ARRAY(SELECT g.rolname::text FROM pg_auth_members m JOIN pg_roles g ON g.oid = m.roleid
                   WHERE m.member = r.oid ORDER BY 1) AS memberof
       FROM pg_roles r WHERE r.rolname = $1`,
    [role],
  );
  const found = rows[0];
  if (found === undefined)
    return { item, ok: false, detail: 'missing', remedy: 'run audit-trail pgaudit setup' };
  const problems = [
    ...(found.rolcanlogin ? [] : ['cannot log in']),
    ...found.powers.map((power) => `has ${power}`),
    ...(found.memberof.length > 0 ? [`is a member of ${found.memberof.join(', ')}`] : []),
  ];
  if (problems.length > 0)
    return {
      item,
      ok: false,
      detail: problems.join(', '),
      remedy: `the canary needs LOGIN and nothing else: ALTER ROLE / REVOKE until it has no more`,
    };
  return checkRole(
    role,
    (await readRoleSettings(client, [role])).get(role),
    canaryRoleSettings(),
    item,
  );
}

function checkRole(
  role: string,
  actual: Map<string, string> | undefined,
  wanted: Record<string, string>,
  item = `role ${role}`,
): CheckResult {
  if (actual === undefined)
    return {
      item,
      ok: false,
      detail: 'role does not exist',
      remedy: `create role ${role} or remove it from accessAudit`,
    };
  const wrong = Object.entries(wanted).filter(([name, value]) => actual.get(name) !== value);
  if (wrong.length === 0) return { item, ok: true, detail: formatSettings(wanted) };
  const found = wrong.map(([name]) => `${name}=${actual.get(name) ?? '(unset)'}`).join(', ');
  return {
    item,
    ok: false,
    detail: `expected ${formatSettings(Object.fromEntries(wrong))}, found ${found}`,
    remedy: 'run audit-trail pgaudit setup',
  };
}

function formatSettings(settings: Record<string, string>): string {
  return Object.entries(settings)
    .map(([name, value]) => `${name}=${value}`)
    .join(', ');
}

/**
 * The severity pgAudit writes at (`pgaudit.log_level` only with `pgaudit.log_client`; LOG
 * otherwise) against `pgauditLogLevel`: another one alerts on every record
 * (`unexpected-audit-level`), or writes none below `log_min_messages`.
 */
function checkRecordLevel(
  { toClient, level }: RecordLevel,
  config: Pick<PgauditSetupConfig, 'pgauditLogLevel'>,
): CheckResult {
  const found = severityOf(level as PgauditLogLevel);
  const expected = severityOf(config.pgauditLogLevel);
  const detail = `records at ${found} (pgaudit.log_client ${toClient ? 'on' : 'off'}, pgaudit.log_level ${level})`;
  return found === expected
    ? { item: 'record level', ok: true, detail }
    : {
        item: 'record level',
        ok: false,
        detail: `${detail}, config expects ${expected}: every record alerts as unexpected-audit-level, or is not written below log_min_messages`,
        remedy:
          'restore pgaudit.log_client / pgaudit.log_level in the parameter group, or set accessAudit.pgauditLogLevel',
      };
}

/** Where pgAudit sends its records, and at which level (lower case). */
interface RecordLevel {
  readonly toClient: boolean;
  readonly level: string;
}

/** The level pgAudit writes its records at: `pgaudit.log_level` with `pgaudit.log_client`, LOG otherwise. */
async function recordLevel(client: pg.Client): Promise<RecordLevel> {
  const toClient = (await currentSetting(client, 'pgaudit.log_client')) === 'on';
  const level = toClient ? ((await currentSetting(client, 'pgaudit.log_level')) ?? 'log') : 'log';
  return { toClient, level: level.toLowerCase() };
}

/**
 * `log_min_messages` decides what reaches the server log at all: above the records' level
 * (`fatal` for LOG records, `error` for WARNING ones) pgAudit's records are never written,
 * with no pgaudit setting changed, and at `log` or above the server's ERROR lines, which
 * refused attempts to change a pgaudit setting are read from, are not either.
 */
async function checkLogMinMessages(
  client: pg.Client,
  { level }: RecordLevel,
): Promise<CheckResult> {
  const minimum = ((await currentSetting(client, 'log_min_messages')) ?? '').toLowerCase();
  const lost = [
    ...(reachesServerLog(level, minimum)
      ? []
      : [`pgAudit's records (at ${severityOf(level as PgauditLogLevel)})`]),
    ...(reachesServerLog('error', minimum)
      ? []
      : ["the server's ERROR lines (refused attempts to change a pgaudit setting)"]),
  ];
  return lost.length === 0
    ? { item: 'log_min_messages', ok: true, detail: minimum }
    : {
        item: 'log_min_messages',
        ok: false,
        detail: `"${minimum}": ${lost.join(' and ')} are not written to the server log`,
        remedy: 'set log_min_messages = warning (the default) in the parameter group',
      };
}

/**
 * stderr and csvlog write the severity and the CONTEXT label in `lc_messages`' language:
 * in most languages LOG itself is translated (records are not read), and in every one
 * CONTEXT is (stderr forgeries pass as genuine). jsonlog keeps them in English.
 */
async function checkMessageLanguage(
  client: pg.Client,
  config: Pick<PgauditSetupConfig, 'logFormat'>,
): Promise<CheckResult> {
  const language = (await currentSetting(client, 'lc_messages')) ?? '';
  const english = language === '' || /^(C|POSIX|en)([._@-]|$)/i.test(language);
  return english || config.logFormat === 'jsonlog'
    ? { item: 'lc_messages', ok: true, detail: `"${language}"` }
    : {
        item: 'lc_messages',
        ok: false,
        detail: `"${language}": ${config.logFormat} labels are translated, records at LOG may not be read and forged records in stderr not caught`,
        remedy: "set lc_messages = 'C' in the parameter group (or read the log as jsonlog)",
      };
}

/**
 * A refused attempt to change a pgaudit setting (`SET pgaudit.log = 'none'` by a role
 * that may not) leaves no pgAudit record, only the server's ERROR and the STATEMENT it
 * refused, which `log_min_error_statement` above ERROR leaves out: then only a refusal
 * whose message names the setting is seen (`audit-tampering-attempt`), not one that does
 * not (`ALTER ROLE other SET pgaudit.log …`: "permission denied").
 */
async function checkErrorStatements(client: pg.Client): Promise<CheckResult> {
  const level = (await currentSetting(client, 'log_min_error_statement')) ?? '';
  // The statement of an ERROR is logged when an ERROR would reach the log under it: LOG
  // ranks above ERROR there, so `log`, `fatal` and `panic` leave it out.
  return reachesServerLog('error', level.toLowerCase())
    ? { item: 'log_min_error_statement', ok: true, detail: level }
    : {
        item: 'log_min_error_statement',
        ok: false,
        detail: `"${level}": the statements the server refused are not logged, so a refused ALTER ROLE … SET pgaudit.log is not seen as an audit-tampering-attempt`,
        remedy: 'set log_min_error_statement = error (the default) in the parameter group',
      };
}

async function isPreloaded(client: pg.Client): Promise<boolean> {
  const value = (await currentSetting(client, 'shared_preload_libraries')) ?? '';
  return value
    .split(',')
    .map((library) => library.trim().replace(/^"|"$/g, ''))
    .includes('pgaudit');
}

async function currentSetting(client: pg.Client, name: string): Promise<string | undefined> {
  const { rows } = await client.query<{ value: string | null }>(
    'SELECT current_setting($1, true) AS value',
    [name],
  );
  return rows[0]?.value ?? undefined;
}

async function missingRoles(client: pg.Client, roles: readonly string[]): Promise<string[]> {
  const { rows } = await client.query<{ rolname: string }>(
    'SELECT rolname FROM pg_roles WHERE rolname = ANY($1)',
    [roles],
  );
  const present = new Set(rows.map((row) => row.rolname));
  return roles.filter((role) => !present.has(role));
}

/** Role-wide settings (`ALTER ROLE x SET`, all databases) of each existing role. */
async function readRoleSettings(
  client: pg.Client,
  roles: readonly string[],
): Promise<Map<string, Map<string, string>>> {
  const { rows } = await client.query<{ rolname: string; setconfig: string[] | null }>(
    `SELECT r.rolname, s.setconfig
       FROM pg_roles r
       LEFT JOIN pg_catalog.pg_db_role_setting s
         ON s.setrole = r.oid AND s.setdatabase OPERATOR(pg_catalog.=) 0
      WHERE r.rolname = ANY($1)`,
    [roles],
  );
  const result = new Map<string, Map<string, string>>();
  for (const row of rows) {
    const settings = new Map<string, string>();
    for (const entry of row.setconfig ?? []) {
      const equals = entry.indexOf('=');
      if (equals > 0) settings.set(entry.slice(0, equals), entry.slice(equals + 1));
    }
    result.set(row.rolname, settings);
  }
  return result;
}

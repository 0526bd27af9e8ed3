import { createHash, createHmac, pbkdf2Sync, randomBytes } from 'node:crypto';
import { sql, type Kysely } from 'kysely';
import {
  CANARY_ROLE_LIMITS,
  canaryRoleSettings,
  RDS_AUDIT_ROLE,
  SERVICE_ACCOUNT_PGAUDIT_LOG,
} from '../access-audit/setup';
import { ConfigError, type AuditTrailConfig } from '../config';
import { PINNED_OUTPUT_SETTINGS } from '../postgres/connect';
import { quoteIdent, quoteLiteral } from '../postgres/identifiers';
import { createRole, KIT_ROLE_KINDS, kitRoles, NOLOGIN_KINDS, type KitRoles } from './roles';
import { AuditTrailError } from '../errors';

/**
 * The logins a deployment gives the kit's services, each with only what its job needs
 * (see "Trust model" in the README). The database's administrator (on RDS the master
 * user) creates them; no service logs in as the administrator.
 */
export interface KitLogins {
  /**
   * DMS's target login: a member of the writer role (staging DML, nothing else), and
   * CREATE on its own schema of the same name, where DMS keeps its control tables
   * (`awsdms_apply_exceptions`, validation failures): never in the audit schema.
   */
  readonly dms: string;
  /**
   * The target login that runs the kit's migrations: a member of the owner and capture
   * roles (it hands them their objects) and CREATE on the database (the audit schema).
   */
  readonly migrator: string;
  /**
   * DMS's source login: logical replication (`rds_replication` on RDS and Aurora) and
   * SELECT on the audited tables, nothing else.
   */
  readonly replication: string;
  /**
   * The chain anchor Lambda's target login: a member of the reader role, nothing else
   * (it reads the chain head).
   */
  readonly anchor: string;
  /**
   * Auditors' target login, for the RDS Data API (`audit-trail history --target-arn`): a
   * member of the reader role, nothing else, with the kit's output settings pinned on the
   * role (Data API sessions take no start-up options).
   */
  readonly auditor: string;
}

/**
 * Login names for `config`: `<auditSchema>_dms`, `<auditSchema>_migrator`,
 * `<auditSchema>_replication`, `<auditSchema>_anchor`, `<auditSchema>_auditor`.
 * @throws ConfigError when a name would exceed PostgreSQL's 63 bytes.
 */
export function kitLogins(config: Pick<AuditTrailConfig, 'auditSchema'>): KitLogins {
  const logins = {
    dms: `${config.auditSchema}_dms`,
    migrator: `${config.auditSchema}_migrator`,
    replication: `${config.auditSchema}_replication`,
    anchor: `${config.auditSchema}_anchor`,
    auditor: `${config.auditSchema}_auditor`,
  };
  for (const name of Object.values(logins)) {
    if (Buffer.byteLength(name, 'utf8') > 63) {
      throw new ConfigError(
        `auditSchema: the login name "${name}" derived from it exceeds PostgreSQL's 63 bytes; choose a shorter auditSchema`,
      );
    }
  }
  return logins;
}

/** Thrown when a login cannot be set up as the kit needs it; nothing is half granted. */
export class LoginSetupError extends AuditTrailError {
  override readonly name = 'LoginSetupError';
  constructor(message: string, options: { readonly hint?: string; readonly cause?: unknown } = {}) {
    super(message, { code: 'LOGIN_SETUP', kind: 'failure', ...options });
  }
}

/**
 * The SCRAM-SHA-256 verifier PostgreSQL stores for `password` (RFC 5802/7677, as
 * `pg_authid.rolpassword` spells it). Sending the verifier instead of the password keeps
 * the password out of the server's logs (a failed `ALTER ROLE` is logged with its
 * statement text) and out of pgAudit's ROLE records. The password must be ASCII (the
 * kit's generated passwords are), where SASLprep changes nothing.
 */
export function scramVerifier(
  password: string,
  salt: Buffer = randomBytes(16),
  iterations = 4096,
): string {
  if (!/^[\x21-\x7e]+$/.test(password)) {
    throw new LoginSetupError('a login password must be printable ASCII without spaces');
  }
  const salted = pbkdf2Sync(password, salt, iterations, 32, 'sha256');
  const clientKey = createHmac('sha256', salted).update('Client Key').digest();
  const storedKey = createHash('sha256').update(clientKey).digest();
  const serverKey = createHmac('sha256', salted).update('Server Key').digest();
  return `SCRAM-SHA-256$${iterations}:${salt.toString('base64')}$${storedKey.toString('base64')}:${serverKey.toString('base64')}`;
}

/** Passwords of the target's two logins (from their secrets). */
export interface TargetLoginPasswords {
  readonly dms: string;
  readonly migrator: string;
  /** The chain anchor's login; left out when anchors are not deployed. */
  readonly anchor?: string;
  /** The auditors' Data API login; left out when the target has no Data API. */
  readonly auditor?: string;
}

/**
 * Run as the target's administrator: creates the kit roles that are missing (NOLOGIN),
 * the DMS login (member of the writer role, its own control schema) and the migrator
 * login (member of owner and capture, CREATE on the database), or resets their
 * passwords. Refuses a login that exists with more than it should have.
 * @returns one line per change, for the deployment log.
 */
export async function setUpTargetLogins(
  db: Kysely<unknown>,
  config: Pick<AuditTrailConfig, 'auditSchema' | 'auditRoles'>,
  passwords: TargetLoginPasswords,
): Promise<string[]> {
  const roles = kitRoles(config);
  const logins = kitLogins(config);
  refuseRolesNamedLikeLogins(roles, logins);
  const done: string[] = [];
  for (const kind of KIT_ROLE_KINDS) await createRole(db, roles[kind]);
  await refuseLoginRoles(
    db,
    NOLOGIN_KINDS.map((kind) => roles[kind]),
  );

  done.push(await upsertLogin(db, logins.dms, passwords.dms, [roles.writer]));
  await sql.raw(`GRANT ${quoteIdent(roles.writer)} TO ${quoteIdent(logins.dms)}`).execute(db);
  const control = quoteIdent(logins.dms);
  await sql.raw(`CREATE SCHEMA IF NOT EXISTS ${control}`).execute(db);
  await sql.raw(`GRANT USAGE, CREATE ON SCHEMA ${control} TO ${control}`).execute(db);

  done.push(
    await upsertLogin(db, logins.migrator, passwords.migrator, [roles.owner, roles.capture]),
  );
  await sql
    .raw(
      `GRANT ${quoteIdent(roles.owner)}, ${quoteIdent(roles.capture)} TO ${quoteIdent(logins.migrator)}`,
    )
    .execute(db);
  const { rows } = await sql<{ db: string }>`SELECT current_database() AS db`.execute(db);
  await sql
    .raw(`GRANT CREATE ON DATABASE ${quoteIdent(rows[0]!.db)} TO ${quoteIdent(logins.migrator)}`)
    .execute(db);

  if (passwords.anchor !== undefined) {
    done.push(await upsertLogin(db, logins.anchor, passwords.anchor, [roles.reader]));
    await sql.raw(`GRANT ${quoteIdent(roles.reader)} TO ${quoteIdent(logins.anchor)}`).execute(db);
  }
  if (passwords.auditor !== undefined) {
    const auditor = quoteIdent(logins.auditor);
    done.push(await upsertLogin(db, logins.auditor, passwords.auditor, [roles.reader]));
    await sql.raw(`GRANT ${quoteIdent(roles.reader)} TO ${auditor}`).execute(db);
    // Role settings outrank the database's: a key or instant without a zone is read in
    // UTC, values print as over the kit's own connections.
    for (const [name, value] of Object.entries(PINNED_OUTPUT_SETTINGS))
      await sql
        .raw(`ALTER ROLE ${auditor} SET ${quoteIdent(name)} = ${quoteLiteral(value)}`)
        .execute(db);
    done.push(`role ${logins.auditor}: output settings pinned`);
  }
  return done;
}

/**
 * Run as the source's administrator: creates (or resets the password of) DMS's
 * replication login with logical replication (membership in `rds_replication` where it
 * exists, as on RDS and Aurora; the REPLICATION attribute elsewhere) and SELECT on each
 * audited table. A table that does not exist is refused by name, as `migrate` refuses it.
 * @returns one line per change, for the deployment log.
 */
export async function setUpReplicationLogin(
  db: Kysely<unknown>,
  config: Pick<AuditTrailConfig, 'auditSchema' | 'tables'>,
  password: string,
): Promise<string[]> {
  const login = kitLogins(config).replication;
  const rdsReplication = await roleExists(db, 'rds_replication');
  const done = [
    await upsertLogin(db, login, password, rdsReplication ? ['rds_replication'] : [], {
      replication: !rdsReplication,
    }),
  ];
  if (rdsReplication) {
    await sql.raw(`GRANT rds_replication TO ${quoteIdent(login)}`).execute(db);
  } else {
    await sql.raw(`ALTER ROLE ${quoteIdent(login)} REPLICATION`).execute(db);
  }
  for (const table of config.tables) {
    const name = `${quoteIdent(table.schema)}.${quoteIdent(table.table)}`;
    const { rows } = await sql<{ found: boolean }>`
      SELECT pg_catalog.to_regclass(${name}) IS NOT NULL AS found`.execute(db);
    if (!rows[0]?.found) {
      throw new LoginSetupError(
        `source table ${table.schema}.${table.table} does not exist: create the audited tables on the source, then deploy again`,
      );
    }
    await sql
      .raw(`GRANT USAGE ON SCHEMA ${quoteIdent(table.schema)} TO ${quoteIdent(login)}`)
      .execute(db);
    await sql.raw(`GRANT SELECT ON TABLE ${name} TO ${quoteIdent(login)}`).execute(db);
  }
  done.push(`${login} may read ${config.tables.length} audited table(s)`);
  return done;
}

/**
 * Run as the target's administrator: pgAudit on the audit store. Creates the extension
 * (without it nothing is logged and nothing says so) and the `rds_pgaudit` role, and gives
 * the DMS login `pgaudit.log = ddl,role`: its staging writes, and the capture functions'
 * inserts that run inside its session, are the pipeline; every other login keeps the
 * parameter group's `ddl,role,write`. A target whose instances have not been rebooted
 * since pgaudit joined `shared_preload_libraries` (an upgraded stack) is reported in the
 * returned lines, not failed: the deploy that set the static parameter cannot reboot.
 */
export async function setUpTargetPgaudit(db: Kysely<unknown>, dmsLogin: string): Promise<string[]> {
  const extension = await ensurePgauditExtension(db, 'target');
  if (!extension.active) return extension.done;
  await sql
    .raw(
      `ALTER ROLE ${quoteIdent(dmsLogin)} SET pgaudit.log = ${quoteLiteral(SERVICE_ACCOUNT_PGAUDIT_LOG)}`,
    )
    .execute(db);
  return [
    ...extension.done,
    `role ${dmsLogin}: pgaudit.log=${SERVICE_ACCOUNT_PGAUDIT_LOG} (the pipeline's own writes)`,
  ];
}

/**
 * Run as a kit-created source's administrator, in the database the canary connects to:
 * the access audit's canary login (`accessAudit.canary.role`) with its password from the
 * canary's secret, and pgAudit's extension and `rds_pgaudit` role in that database, so a
 * new cluster's canary proves the pipeline from the first deploy. The login gets LOGIN
 * and nothing else (an existing one holding more is refused), `CANARY_ROLE_LIMITS`
 * and `canaryRoleSettings()`: it can run its literal `SELECT` and read nothing.
 * The audited roles and service accounts are the application's, created later:
 * `audit-trail pgaudit setup` sets them (README "Set up pgAudit on the source").
 * @returns one line per change, for the deployment log.
 */
export async function setUpCanaryLogin(
  db: Kysely<unknown>,
  role: string,
  password: string,
): Promise<string[]> {
  const extension = await ensurePgauditExtension(db, 'source');
  const login = quoteIdent(role);
  const done = [...extension.done, await upsertLogin(db, role, password, [])];
  await sql.raw(`ALTER ROLE ${login} ${CANARY_ROLE_LIMITS}`).execute(db);
  const settings = canaryRoleSettings();
  for (const [name, value] of Object.entries(settings))
    await sql.raw(`ALTER ROLE ${login} SET ${name} = ${quoteLiteral(value)}`).execute(db);
  const listed = Object.entries(settings).map(([name, value]) => `${name}=${value}`);
  done.push(`role ${role}: ${listed.join(', ')} (canary)`);
  return done;
}

/**
 * Creates the pgaudit extension (without it nothing is logged and nothing says so) and
 * the `rds_pgaudit` role. A database whose instances have not been rebooted since pgaudit
 * joined `shared_preload_libraries` (an upgraded stack) is reported in the returned
 * lines, not failed: the deploy that set the static parameter cannot reboot.
 */
async function ensurePgauditExtension(
  db: Kysely<unknown>,
  where: 'source' | 'target',
): Promise<{ readonly active: boolean; readonly done: string[] }> {
  const { rows } = await sql<{ libraries: string | null }>`
    SELECT current_setting('shared_preload_libraries', true) AS libraries`.execute(db);
  const preloaded = (rows[0]?.libraries ?? '')
    .split(',')
    .map((library) => library.trim().replace(/^"|"$/g, ''))
    .includes('pgaudit');
  if (!preloaded) {
    return {
      active: false,
      done: [
        `WARNING pgAudit is not active on the ${where}: pgaudit is not in shared_preload_libraries yet (static: reboot the instances), then deploy again with a changed config to finish the set-up`,
      ],
    };
  }
  await sql`CREATE EXTENSION IF NOT EXISTS pgaudit`.execute(db);
  await createRole(db, RDS_AUDIT_ROLE);
  return { active: true, done: ['extension pgaudit present'] };
}

interface RoleAttributes {
  readonly superuser: boolean;
  readonly create_role: boolean;
  readonly create_db: boolean;
  readonly replication: boolean;
  readonly bypass_rls: boolean;
  readonly member_of: string[];
}

/**
 * Creates `name` as a LOGIN role with `password` (sent as its SCRAM verifier), or resets
 * the password of an existing one after checking it holds no attribute and no membership
 * beyond `allowedMemberships`: credentials the kit hands a service must not open more.
 */
async function upsertLogin(
  db: Kysely<unknown>,
  name: string,
  password: string,
  allowedMemberships: readonly string[],
  allowed: { readonly replication?: boolean } = {},
): Promise<string> {
  const verifier = quoteLiteral(scramVerifier(password));
  // Catalog calls are pg_catalog-qualified in this module: the set-up runs as the
  // administrator, and a lookalike planted in public that matches a call's argument types
  // more exactly (array_agg(text) over array_agg(anynonarray)) would run with its rights
  // (test/trust/logins-planted-functions).
  const { rows } = await sql<RoleAttributes>`
    SELECT r.rolsuper AS superuser, r.rolcreaterole AS create_role, r.rolcreatedb AS create_db,
           r.rolreplication AS replication, r.rolbypassrls AS bypass_rls,
           coalesce(pg_catalog.array_agg(g.rolname::text) FILTER (WHERE g.rolname IS NOT NULL), '{}') AS member_of
    FROM pg_catalog.pg_roles r
    LEFT JOIN pg_catalog.pg_auth_members m ON m.member = r.oid
    LEFT JOIN pg_catalog.pg_roles g ON g.oid = m.roleid
    WHERE r.rolname = ${name}
    GROUP BY r.oid, r.rolsuper, r.rolcreaterole, r.rolcreatedb, r.rolreplication, r.rolbypassrls`.execute(
    db,
  );
  const existing = rows[0];
  if (existing === undefined) {
    await sql.raw(`CREATE ROLE ${quoteIdent(name)} LOGIN PASSWORD ${verifier}`).execute(db);
    return `created login ${name}`;
  }
  const extras = [
    ...(existing.superuser ? ['SUPERUSER'] : []),
    ...(existing.create_role ? ['CREATEROLE'] : []),
    ...(existing.create_db ? ['CREATEDB'] : []),
    ...(existing.replication && !allowed.replication ? ['REPLICATION'] : []),
    ...(existing.bypass_rls ? ['BYPASSRLS'] : []),
    ...existing.member_of
      .filter((role) => !allowedMemberships.includes(role))
      .map((role) => `member of ${role}`),
  ];
  if (extras.length > 0) {
    throw new LoginSetupError(
      `the login ${name} exists with more than the kit gives it (${extras.join(', ')}); remove that, or drop the login so the kit creates it, then deploy again`,
    );
  }
  await sql.raw(`ALTER ROLE ${quoteIdent(name)} LOGIN PASSWORD ${verifier}`).execute(db);
  return `reset the password of login ${name}`;
}

async function roleExists(db: Kysely<unknown>, name: string): Promise<boolean> {
  const { rows } = await sql<{ found: boolean }>`
    SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = ${name}) AS found`.execute(db);
  return rows[0]?.found ?? false;
}

/**
 * A kit role named like one of the kit's logins (`auditRoles.engine = "audit_dms"`) would
 * be created NOLOGIN and then made that login: DMS's login would hold the engine's
 * position, the migrator's could be the reader role, and so on.
 * @throws ConfigError naming the field and the login
 */
function refuseRolesNamedLikeLogins(roles: KitRoles, logins: KitLogins): void {
  for (const kind of KIT_ROLE_KINDS) {
    const login = Object.entries(logins).find(([, name]) => name === roles[kind]);
    if (login !== undefined)
      throw new ConfigError(
        `auditRoles.${kind}: "${roles[kind]}" is also the kit's ${login[0]} login; kit roles and logins need their own names`,
      );
  }
}

/** The owner, capture and engine roles must stay NOLOGIN and not superusers (see `NOLOGIN_KINDS`). */
async function refuseLoginRoles(db: Kysely<unknown>, names: readonly string[]): Promise<void> {
  const { rows } = await sql<{ name: string }>`
    SELECT rolname AS name FROM pg_catalog.pg_roles
    WHERE rolname = ANY(${[...names]}::text[]) AND (rolcanlogin OR rolsuper)`.execute(db);
  if (rows.length > 0) {
    throw new LoginSetupError(
      `the kit role(s) ${rows.map((row) => row.name).join(', ')} can log in or are superusers; they must be NOLOGIN NOSUPERUSER`,
    );
  }
}

/**
 * The source schema holding DMS's DDL-capture artifacts (the source endpoint's
 * `DdlArtifactsSchema`): a dedicated schema, so nothing of DMS's sits in `public`.
 */
export function ddlArtifactsSchema(config: Pick<AuditTrailConfig, 'auditSchema'>): string {
  const schema = `${config.auditSchema}_dms_ddl`;
  if (Buffer.byteLength(schema, 'utf8') > 63) {
    throw new ConfigError(
      `auditSchema: the schema name "${schema}" derived from it exceeds PostgreSQL's 63 bytes; choose a shorter auditSchema`,
    );
  }
  return schema;
}

/** DMS's names for its DDL-capture table, function and event trigger (fixed by DMS). */
export const DMS_DDL_AUDIT_TABLE = 'awsdms_ddl_audit';
export const DMS_DDL_FUNCTION = 'awsdms_intercept_ddl';
export const DMS_DDL_EVENT_TRIGGER = 'awsdms_intercept_ddl';

/**
 * The SQL that creates DMS's DDL-capture artifacts for a replication login that is not
 * the master user (DMS user guide, "without using the master user account"), as one
 * script: run by the source's administrator, idempotent. The table, its sequence and the
 * function belong to `login` (the function is SECURITY DEFINER, so it runs with the
 * replication login's few rights, never the master's); PUBLIC gets nothing. The function
 * body qualifies every table, function, type and operator instead of pinning
 * `search_path`: DMS reads `c_schema` as the schema unqualified names in the captured
 * statement resolve in, which is the caller's `current_schema`, and a `SET search_path`
 * clause would replace it; with nothing looked up by name, a caller's `search_path`
 * cannot substitute its own operator or function. Printed in the README for
 * `source.mode: existing`.
 */
export function ddlCaptureSql(schema: string, login: string): string[] {
  const s = quoteIdent(schema);
  const owner = quoteIdent(login);
  const table = `${s}.${quoteIdent(DMS_DDL_AUDIT_TABLE)}`;
  const fn = `${s}.${quoteIdent(DMS_DDL_FUNCTION)}`;
  const eq = 'OPERATOR(pg_catalog.=)';
  return [
    `CREATE SCHEMA IF NOT EXISTS ${s}`,
    `REVOKE ALL ON SCHEMA ${s} FROM PUBLIC`,
    `GRANT USAGE ON SCHEMA ${s} TO ${owner}`,
    `CREATE TABLE IF NOT EXISTS ${table} (
  c_key bigserial PRIMARY KEY,
  c_time timestamp,
  c_user varchar(64),
  c_txn varchar(16),
  c_tag varchar(24),
  c_oid integer,
  c_name varchar(64),
  c_schema varchar(64),
  c_ddlqry text
)`,
    `ALTER TABLE ${table} OWNER TO ${owner}`,
    `REVOKE ALL ON TABLE ${table} FROM PUBLIC`,
    `CREATE OR REPLACE FUNCTION ${fn}() RETURNS event_trigger
LANGUAGE plpgsql SECURITY DEFINER AS $body$
BEGIN
  IF tg_tag ${eq} 'CREATE TABLE' OR tg_tag ${eq} 'ALTER TABLE' OR tg_tag ${eq} 'DROP TABLE' THEN
    INSERT INTO ${table} (c_time, c_user, c_txn, c_tag, c_oid, c_name, c_schema, c_ddlqry)
    VALUES (LOCALTIMESTAMP, CURRENT_USER,
      pg_catalog.txid_current()::pg_catalog.text, tg_tag, 0, '',
      pg_catalog.current_schema(), pg_catalog.current_query());
    DELETE FROM ${table};
  END IF;
END
$body$`,
    `ALTER FUNCTION ${fn}() OWNER TO ${owner}`,
    `REVOKE ALL ON FUNCTION ${fn}() FROM PUBLIC`,
  ];
}

/** The `ddl_command_end` event trigger that calls DMS's capture function in `schema`. */
export function ddlEventTriggerSql(schema: string): string {
  const fn = `${quoteIdent(schema)}.${quoteIdent(DMS_DDL_FUNCTION)}()`;
  return `CREATE EVENT TRIGGER ${quoteIdent(DMS_DDL_EVENT_TRIGGER)} ON ddl_command_end EXECUTE FUNCTION ${fn}`;
}

/**
 * The whole DDL-capture set-up for `login` as one script for the source's master user:
 * {@link ddlCaptureSql}, then the event trigger (only a superuser or `rds_superuser` may
 * create one; left out when it exists and calls this function, since CREATE would fail).
 * What the README prints and `doctor` offers when something is missing.
 */
export function ddlCaptureScript(schema: string, login: string, eventTrigger = true): string {
  const statements = [
    ...ddlCaptureSql(schema, login),
    ...(eventTrigger ? [ddlEventTriggerSql(schema)] : []),
  ];
  return `${statements.join(';\n')};\n`;
}

/**
 * Run as the source's administrator after {@link setUpReplicationLogin}: DMS's DDL
 * capture artifacts ({@link ddlCaptureSql}) and the `ddl_command_end` event trigger,
 * which only a superuser (`rds_superuser` on RDS) may create. An event trigger of DMS's
 * name that calls another function (an earlier manual set-up in `public`) is refused by
 * name rather than replaced.
 * @returns one line per change, for the deployment log.
 */
export async function setUpDdlCapture(
  db: Kysely<unknown>,
  config: Pick<AuditTrailConfig, 'auditSchema'>,
): Promise<string[]> {
  const login = kitLogins(config).replication;
  const schema = ddlArtifactsSchema(config);
  // Giving objects to the login needs membership in it (RDS's master is no superuser).
  const { rows: member } = await sql<{ member: boolean }>`
    SELECT pg_catalog.pg_has_role(current_user, ${login}, 'MEMBER') AS member`.execute(db);
  if (!member[0]?.member) {
    await sql.raw(`GRANT ${quoteIdent(login)} TO CURRENT_USER`).execute(db);
  }
  await db.transaction().execute(async (trx) => {
    for (const statement of ddlCaptureSql(schema, login)) await sql.raw(statement).execute(trx);
    const fn = `${quoteIdent(schema)}.${quoteIdent(DMS_DDL_FUNCTION)}()`;
    const { rows } = await sql<{ same: boolean }>`
      SELECT evtfoid OPERATOR(pg_catalog.=) pg_catalog.to_regprocedure(${fn}) AS same
      FROM pg_catalog.pg_event_trigger WHERE evtname = ${DMS_DDL_EVENT_TRIGGER}`.execute(trx);
    if (rows.length === 0) {
      await sql.raw(ddlEventTriggerSql(schema)).execute(trx);
    } else if (!rows[0]!.same) {
      throw new LoginSetupError(
        `event trigger ${DMS_DDL_EVENT_TRIGGER} exists on the source and calls another function: drop it (and DMS's artifacts outside ${schema}), then deploy again`,
      );
    }
  });
  return [`${login}: DMS DDL capture in schema ${schema}`];
}

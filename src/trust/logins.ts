import { createHash, createHmac, pbkdf2Sync, randomBytes } from 'node:crypto';
import { sql, type Kysely } from 'kysely';
import { RDS_AUDIT_ROLE, SERVICE_ACCOUNT_PGAUDIT_LOG } from '../access-audit/setup';
import { ConfigError, type AuditTrailConfig } from '../config';
import { PINNED_OUTPUT_SETTINGS } from '../postgres/connect';
import { quoteIdent, quoteLiteral } from '../postgres/identifiers';
import { createRole, KIT_ROLE_KINDS, kitRoles } from './roles';

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
export class LoginSetupError extends Error {
  override readonly name = 'LoginSetupError';
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
  const done: string[] = [];
  for (const kind of KIT_ROLE_KINDS) await createRole(db, roles[kind]);
  await refuseLoginRoles(db, [roles.owner, roles.capture]);

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
      SELECT to_regclass(${name}) IS NOT NULL AS found`.execute(db);
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
  const { rows } = await sql<{ libraries: string | null }>`
    SELECT current_setting('shared_preload_libraries', true) AS libraries`.execute(db);
  const preloaded = (rows[0]?.libraries ?? '')
    .split(',')
    .map((library) => library.trim().replace(/^"|"$/g, ''))
    .includes('pgaudit');
  if (!preloaded) {
    return [
      'WARNING pgAudit is not active on the target: pgaudit is not in shared_preload_libraries yet (static: reboot the instances), then deploy again with a changed config to finish the set-up',
    ];
  }
  await sql`CREATE EXTENSION IF NOT EXISTS pgaudit`.execute(db);
  await createRole(db, RDS_AUDIT_ROLE);
  await sql
    .raw(
      `ALTER ROLE ${quoteIdent(dmsLogin)} SET pgaudit.log = ${quoteLiteral(SERVICE_ACCOUNT_PGAUDIT_LOG)}`,
    )
    .execute(db);
  return [
    'extension pgaudit present',
    `role ${dmsLogin}: pgaudit.log=${SERVICE_ACCOUNT_PGAUDIT_LOG} (the pipeline's own writes)`,
  ];
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
  const { rows } = await sql<RoleAttributes>`
    SELECT r.rolsuper AS superuser, r.rolcreaterole AS create_role, r.rolcreatedb AS create_db,
           r.rolreplication AS replication, r.rolbypassrls AS bypass_rls,
           coalesce(array_agg(g.rolname::text) FILTER (WHERE g.rolname IS NOT NULL), '{}') AS member_of
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

/** The owner and capture roles must stay NOLOGIN and not superusers (see `ensureKitRoles`). */
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

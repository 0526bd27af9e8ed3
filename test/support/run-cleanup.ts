import { randomInt } from 'node:crypto';
import pg from 'pg';
import { quoteIdent } from '../../src/postgres/identifiers';

/**
 * Cleanup for test runs on a server the run did not start (`TEST_PG_URL`): tests create
 * databases, roles (cluster-wide, some with fixed names, so a second run failed on
 * "role already exists") and replication slots in those databases, and leave them for
 * the server's teardown, which for such a server never comes.
 *
 * A run marks its start with a role, `audit_trail_test_run_<token>` (NOLOGIN, no
 * rights): every database and role created after it has a higher OID (one counter for
 * the cluster), so the run's leftovers are the databases and roles above its marker,
 * whoever in the run created them and however they were named. While it runs it holds a
 * session advisory lock keyed by its token, so a marker whose lock nobody holds is that
 * of a run that ended without cleaning up (a crash, Ctrl-C). Cleanup drops everything
 * above the oldest marker, but only when no other run is live: with two runs on one
 * server, OIDs cannot tell their objects apart, so the last run to end cleans up for
 * both (the other leaves its marker). Starting and cleaning take one more advisory lock,
 * so no run starts while another drops what was created after it began.
 *
 * Sound on a server used only by test runs (as the README asks): anything else created
 * on it while a run is marked is dropped too. (OIDs wrap after 2^32: on a server that has
 * used that many, objects from before the wrap may sit above a new mark.)
 */
export interface TestRunClaim {
  /** The run's marker role. */
  readonly marker: string;
  /** Ends the run: cleans up if no other run is live, then closes the claim's connection. */
  release(): Promise<CleanupReport>;
}

/** What a cleanup dropped, and what it could not. */
export interface CleanupReport {
  /** Why nothing was dropped (another run is live), if so. */
  readonly skipped?: string;
  readonly databases: readonly string[];
  readonly roles: readonly string[];
  readonly slots: readonly string[];
  /** Objects that could not be dropped, each with the server's reason. */
  readonly failures: readonly string[];
}

/** The first key of every advisory lock a run takes ("ATKT"); the second is its token, or 0. */
const LOCK_SPACE = 0x41544b54;
const CLEANUP_LOCK = 0;
export const MARKER_PREFIX = 'audit_trail_test_run_';

/**
 * Marks the start of a test run on the server at `adminUrl` (a superuser's URL), after
 * dropping the leftovers of runs that ended without cleaning up when no other run is
 * live. Keeps one connection open until {@link TestRunClaim.release}.
 */
export async function claimTestRun(
  adminUrl: string,
): Promise<TestRunClaim & { leftovers: CleanupReport }> {
  const client = new pg.Client({ connectionString: adminUrl });
  // Held for the whole run: a server that goes away must fail release(), not the process.
  client.on('error', () => undefined);
  await client.connect();
  try {
    // Its session advisory lock is what says the run is live, and the connection sits idle
    // for the whole run: a server ending idle sessions (idle_session_timeout, PostgreSQL 14
    // and later) would end it, and the next run would drop this one's objects under it.
    await client.query(
      `SELECT pg_catalog.set_config(name, '0', false) FROM pg_catalog.pg_settings
        WHERE name IN ('idle_session_timeout', 'idle_in_transaction_session_timeout')`,
    );
    const token = randomInt(1, 2 ** 31 - 1);
    const marker = `${MARKER_PREFIX}${token}`;
    const leftovers = await underCleanupLock(client, async () => {
      // Live from here on, before its marker exists: no cleanup ever sees a marker unlocked.
      await client.query('SELECT pg_catalog.pg_advisory_lock($1, $2)', [LOCK_SPACE, token]);
      const report = await cleanUpIfAlone(client, token);
      await client.query(`CREATE ROLE ${quoteIdent(marker)} NOLOGIN`);
      return report;
    });
    return {
      marker,
      leftovers,
      async release() {
        try {
          return await underCleanupLock(client, () => cleanUpIfAlone(client, token));
        } finally {
          await client.end();
        }
      },
    };
  } catch (error) {
    await client.end().catch(() => undefined);
    throw error;
  }
}

async function underCleanupLock<T>(client: pg.Client, work: () => Promise<T>): Promise<T> {
  await client.query('SELECT pg_catalog.pg_advisory_lock($1, $2)', [LOCK_SPACE, CLEANUP_LOCK]);
  try {
    return await work();
  } finally {
    await client.query('SELECT pg_catalog.pg_advisory_unlock($1, $2)', [LOCK_SPACE, CLEANUP_LOCK]);
  }
}

/**
 * Drops every database, replication slot and role created since the oldest marker (this
 * run's own, `ownToken`, included), markers too, unless a run other than this one is live.
 */
async function cleanUpIfAlone(client: pg.Client, ownToken: number): Promise<CleanupReport> {
  const { rows: markers } = await client.query<{ oid: string; live: boolean; own: boolean }>(
    `SELECT r.oid::text,
            EXISTS (SELECT FROM pg_catalog.pg_locks AS l
                     WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 2
                       AND l.classid = $1::oid
                       AND l.objid::text = substr(r.rolname, length($2) + 1)) AS live,
            r.rolname = $2 || $3::text AS own
       FROM pg_catalog.pg_roles AS r
      WHERE starts_with(r.rolname, $2)
      ORDER BY r.oid`,
    [LOCK_SPACE, MARKER_PREFIX, ownToken],
  );
  const empty = { databases: [], roles: [], slots: [], failures: [] };
  const others = markers.filter((m) => m.live && !m.own).length;
  if (others > 0) return { ...empty, skipped: `${others} other test run(s) live on this server` };
  const oldest = markers[0]?.oid;
  if (oldest === undefined) return empty;
  const failures: string[] = [];
  const attempt = async (what: string, statement: string, values: unknown[] = []) => {
    try {
      await client.query(statement, values);
      return true;
    } catch (error) {
      failures.push(`${what}: ${(error as Error).message}`);
      return false;
    }
  };

  const { rows: databases } = await client.query<{ datname: string; datistemplate: boolean }>(
    `SELECT d.datname, d.datistemplate FROM pg_catalog.pg_database AS d
      WHERE d.oid > $1::oid AND d.datname <> current_database() ORDER BY d.oid`,
    [oldest],
  );
  const names = databases.map((d) => d.datname);
  // A database with a replication slot cannot be dropped: its slots go first, their
  // readers (walsenders: DROP DATABASE ... FORCE ends only ordinary sessions) with them.
  const slots = await dropSlots(client, names, attempt);
  const dropped: string[] = [];
  for (const database of databases) {
    const name = quoteIdent(database.datname);
    if (database.datistemplate)
      await attempt(`database ${database.datname}`, `ALTER DATABASE ${name} IS_TEMPLATE false`);
    if (await attempt(`database ${database.datname}`, `DROP DATABASE ${name} WITH (FORCE)`))
      dropped.push(database.datname);
  }

  // Roles go after the databases their objects were in; DROP OWNED takes what they
  // still hold here (privileges, default privileges, objects in this database).
  const { rows: roles } = await client.query<{ rolname: string }>(
    `SELECT r.rolname FROM pg_catalog.pg_roles AS r
      WHERE r.oid >= $1::oid AND r.rolname <> current_user ORDER BY r.oid DESC`,
    [oldest],
  );
  const droppedRoles: string[] = [];
  for (const { rolname } of roles) {
    const role = quoteIdent(rolname);
    if (
      (await attempt(`role ${rolname}`, `DROP OWNED BY ${role}`)) &&
      (await attempt(`role ${rolname}`, `DROP ROLE ${role}`))
    )
      droppedRoles.push(rolname);
  }
  return { databases: dropped, roles: droppedRoles, slots, failures: [...new Set(failures)] };
}

/** Drops the replication slots of `databases`, ending the sessions that read them. */
async function dropSlots(
  client: pg.Client,
  databases: readonly string[],
  attempt: (what: string, statement: string, values?: unknown[]) => Promise<boolean>,
): Promise<string[]> {
  const dropped: string[] = [];
  for (let round = 0; round < 20; round += 1) {
    const { rows } = await client.query<{ slot_name: string; active_pid: number | null }>(
      `SELECT s.slot_name, s.active_pid FROM pg_catalog.pg_replication_slots AS s
        WHERE s.database = ANY ($1::name[]) ORDER BY s.slot_name`,
      [databases],
    );
    if (rows.length === 0) return dropped;
    for (const slot of rows) {
      if (slot.active_pid !== null)
        await client.query('SELECT pg_catalog.pg_terminate_backend($1)', [slot.active_pid]);
      else if (
        await attempt(`slot ${slot.slot_name}`, 'SELECT pg_catalog.pg_drop_replication_slot($1)', [
          slot.slot_name,
        ])
      )
        dropped.push(slot.slot_name);
    }
    // A terminated reader lets go of its slot a moment later.
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  return dropped;
}

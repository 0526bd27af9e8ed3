import pg from 'pg';
import { startLocalPostgres, type LocalPostgres } from '../../src/postgres/local-server';
import { claimTestRun, MARKER_PREFIX } from '../support/run-cleanup';

/**
 * A test run on a server it did not start (TEST_PG_URL) leaves nothing behind: the
 * databases, roles and replication slots it created are dropped when it ends, or, if it
 * crashed, when the next run starts; never while another run is live. Checked on a
 * server of its own (cleanup drops what any test created since a run began).
 */
describe('test run cleanup on a given server', () => {
  let server: LocalPostgres;
  beforeAll(async () => {
    server = await startLocalPostgres();
  });
  afterAll(() => server?.stop());

  const sql = async <Row extends pg.QueryResultRow>(text: string, database = 'postgres') => {
    const client = new pg.Client({ connectionString: server.url(database) });
    await client.connect();
    try {
      return (await client.query<Row>(text)).rows;
    } finally {
      await client.end();
    }
  };
  const databases = async () =>
    (
      await sql<{ datname: string }>(
        `SELECT datname FROM pg_database WHERE NOT datistemplate OR datname LIKE 'run%' ORDER BY 1`,
      )
    ).map((row) => row.datname);
  const roles = async () =>
    (
      await sql<{ rolname: string }>(
        `SELECT rolname FROM pg_roles WHERE rolname !~ '^pg_' AND rolname <> 'postgres' ORDER BY 1`,
      )
    ).map((row) => row.rolname);
  const slots = async () =>
    (await sql<{ slot_name: string }>('SELECT slot_name FROM pg_replication_slots')).map(
      (row) => row.slot_name,
    );

  /** What tests do: databases (one a template, one with a slot), roles owning and holding things. */
  const createWhatTestsCreate = async (tag: string) => {
    await sql(`CREATE ROLE ${tag}_owner NOLOGIN; CREATE ROLE ${tag}_login LOGIN;
      GRANT ${tag}_owner TO ${tag}_login; GRANT CONNECT ON DATABASE postgres TO ${tag}_login`);
    await sql(`CREATE DATABASE ${tag}_db OWNER ${tag}_owner`);
    await sql(`CREATE DATABASE ${tag}_tpl IS_TEMPLATE true`);
    await sql(`CREATE TABLE owned (id int); ALTER TABLE owned OWNER TO ${tag}_owner`, `${tag}_db`);
    await sql(
      `SELECT pg_create_logical_replication_slot('${tag}_slot', 'test_decoding')`,
      `${tag}_db`,
    );
  };

  it('drops what the run created when it ends, and nothing that was there before', async () => {
    await sql('CREATE DATABASE kept_db');
    await sql('CREATE ROLE kept_role');
    const before = { databases: await databases(), roles: await roles() };
    const run = await claimTestRun(server.url());
    expect(await roles()).toContain(run.marker);
    await createWhatTestsCreate('runa');
    // A session still connected to a database of the run does not keep it.
    const lingering = new pg.Client({ connectionString: server.url('runa_db') });
    await lingering.connect();
    lingering.on('error', () => undefined);
    const report = await run.release();
    expect(report).toMatchObject({
      databases: ['runa_db', 'runa_tpl'],
      slots: ['runa_slot'],
      failures: [],
    });
    expect([...report.roles].sort()).toEqual([run.marker, 'runa_login', 'runa_owner'].sort());
    expect({ databases: await databases(), roles: await roles() }).toEqual(before);
    expect(await slots()).toEqual([]);
    await lingering.end().catch(() => undefined);
  });

  it("a crashed run's leftovers go when the next run starts", async () => {
    const crashed = await claimTestRun(server.url());
    await createWhatTestsCreate('runb');
    // The run's process dies: its connection, and the lock that said it is live, go.
    const token = crashed.marker.slice(MARKER_PREFIX.length);
    await sql(`SELECT pg_terminate_backend(pid) FROM pg_locks
                WHERE locktype = 'advisory' AND objid = ${token} AND objsubid = 2`);
    expect(await roles()).toContain(crashed.marker);
    const next = await claimTestRun(server.url());
    expect(next.leftovers).toMatchObject({
      databases: ['runb_db', 'runb_tpl'],
      slots: ['runb_slot'],
      failures: [],
    });
    expect(await roles()).not.toContain(crashed.marker);
    expect(await databases()).not.toContain('runb_db');
    expect((await next.release()).roles).toEqual([next.marker]);
  });

  it('a run ending while another is live drops nothing; the last one cleans up for both', async () => {
    const first = await claimTestRun(server.url());
    const second = await claimTestRun(server.url());
    await createWhatTestsCreate('runc');
    expect(await second.release()).toMatchObject({ skipped: expect.stringMatching(/1 other/) });
    expect(await databases()).toContain('runc_db');
    expect(await first.release()).toMatchObject({
      databases: ['runc_db', 'runc_tpl'],
      slots: ['runc_slot'],
      failures: [],
    });
    expect(await roles()).not.toContain(first.marker);
    expect(await roles()).not.toContain(second.marker);
    expect(await roles()).not.toContain('runc_owner');
  });
  it("a live run whose connection sat idle past the server's idle_session_timeout stays live", async (context) => {
    const [setting] = await sql(`SELECT FROM pg_settings WHERE name = 'idle_session_timeout'`);
    if (setting === undefined) context.skip(); // PostgreSQL 13 has no such timeout
    // The server ends sessions idle for 300 ms: the run's claim connection sits idle for
    // the whole run, and with it would go the lock that says the run is live.
    await sql(`ALTER ROLE CURRENT_USER SET idle_session_timeout = '300ms'`);
    try {
      const first = await claimTestRun(server.url());
      await createWhatTestsCreate('rund');
      await new Promise((resolve) => setTimeout(resolve, 1_000));
      const second = await claimTestRun(server.url());
      expect(second.leftovers.databases).toEqual([]);
      expect(await databases()).toContain('rund_db');
      expect(await second.release()).toMatchObject({ skipped: expect.stringMatching(/1 other/) });
      expect(await first.release()).toMatchObject({
        databases: ['rund_db', 'rund_tpl'],
        failures: [],
      });
    } finally {
      await sql(`ALTER ROLE CURRENT_USER RESET idle_session_timeout`);
    }
  });
});

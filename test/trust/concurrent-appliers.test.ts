import pg from 'pg';
import { quoteIdent } from '../../src/postgres/identifiers';
import { verifyIntegrity } from '../../src/trust/integrity';
import { kitRoles } from '../../src/trust/roles';
import { cdc, DmsApplier } from '../support/dms-apply';
import { withClient } from '../support/databases';
import { createLogin, installWithHistory, type Install } from './support';

type Isolation = 'READ COMMITTED' | 'REPEATABLE READ' | 'SERIALIZABLE';
type DatabaseError = { code?: string; message: string; hint?: string };

/** An applier session on the target (its own connection, like a second DMS task or engine). */
async function applier(
  install: Install,
  url = install.targetUrl,
): Promise<{ client: pg.Client; dms: DmsApplier }> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  return { client, dms: new DmsApplier(client, 'audit', 'items', ['id']) };
}

/** Waits until backend `pid` waits for a lock (the chain lock the first applier holds). */
async function waitUntilBlocked(watcher: pg.Client, pid: number): Promise<void> {
  for (let attempt = 0; attempt < 600; attempt += 1) {
    const { rows } = await watcher.query<{ waiting: boolean }>(
      `SELECT wait_event_type = 'Lock' AS waiting FROM pg_stat_activity WHERE pid = $1`,
      [pid],
    );
    if (rows[0]?.waiting) return;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new Error(`backend ${pid} never waited for the chain lock`);
}

async function backendPid(client: pg.Client): Promise<number> {
  const { rows } = await client.query<{ pid: number }>('SELECT pg_backend_pid() AS pid');
  return rows[0]!.pid;
}

/**
 * Two appliers at `isolation`, both with a snapshot taken before either writes. The first
 * captures and commits; the second captures either behind the chain lock the first holds
 * (`'behind the lock'`) or after the first has committed (`'after the commit'`, no wait at
 * all). The second must then either succeed on the new head or fail with a retryable
 * serialization failure that names the chain, never fork the chain or drop a link. A
 * failed second applier retries, as a DMS task or the engine would. An `insider` second
 * applier is a login with only the writer role that tries to skip the stale-head check.
 */
async function raceTwoAppliers(
  isolation: Isolation,
  when: 'behind the lock' | 'after the commit',
  { insider = false } = {},
) {
  const install = await installWithHistory();
  const secondUrl = insider ? await writerLogin(install) : install.targetUrl;
  const [first, second, watcher] = await Promise.all([
    applier(install),
    applier(install, secondUrl),
    applier(install),
  ]);
  try {
    for (const session of [first, second]) {
      await session.client.query(`BEGIN ISOLATION LEVEL ${isolation}`);
      await session.client.query(takeSnapshot(session === second && insider));
    }
    // The transaction-local mark that once told the capture path the head was checked.
    if (insider) await second.client.query(`SET LOCAL audit_trail.chain_head_checked = 'on'`);
    await first.dms.insert({ id: '10', name: 'first' }, cdc('INSERT', '2026-11-22 11:00:00', 10));
    const secondHeaders = cdc('INSERT', '2026-11-22 11:00:01', 11);
    const secondInsert = () =>
      second.dms
        .insert({ id: '11', name: 'second' }, secondHeaders)
        .then(() => undefined)
        .catch((error: unknown) => error as DatabaseError);
    let failure: DatabaseError | undefined;
    if (when === 'behind the lock') {
      const secondPid = await backendPid(second.client);
      const pending = secondInsert();
      await waitUntilBlocked(watcher.client, secondPid);
      await first.client.query('COMMIT');
      failure = await pending;
    } else {
      await first.client.query('COMMIT');
      failure = await secondInsert();
    }
    if (failure) {
      await second.client.query('ROLLBACK');
      await second.client.query(`BEGIN ISOLATION LEVEL ${isolation}`);
      await second.dms.insert({ id: '11', name: 'second' }, secondHeaders);
    }
    await second.client.query('COMMIT');
    const report = await verifyIntegrity({ targetUrl: install.targetUrl, auditSchema: 'audit' });
    return { failure, report };
  } finally {
    await Promise.all([first, second, watcher].map((s) => s.client.end()));
  }
}

/** A read that takes the transaction's snapshot (the writer may read staging only). */
const takeSnapshot = (asWriter: boolean) =>
  `SELECT count(*) FROM audit.${asWriter ? 'items_staging' : 'audit_chain'}`;

/** A login holding only the kit's writer role (what DMS's or the engine's login holds). */
async function writerLogin(install: Install): Promise<string> {
  const login = await createLogin(install.targetUrl, 'insider');
  await withClient(install.targetUrl, (client) =>
    client.query(
      `GRANT ${quoteIdent(kitRoles(install.config).writer)} TO ${quoteIdent(login.name)}`,
    ),
  );
  return login.url;
}

describe('concurrent appliers on the chain lock', () => {
  it('READ COMMITTED: the second applier waits, then chains onto the first one’s block', async () => {
    const { failure, report } = await raceTwoAppliers('READ COMMITTED', 'behind the lock');
    expect(failure).toBeUndefined();
    expect(report).toMatchObject({ ok: true, findingCount: 0, rows: 5 });
  });

  it.each<[Isolation, 'behind the lock' | 'after the commit']>([
    ['REPEATABLE READ', 'behind the lock'],
    ['REPEATABLE READ', 'after the commit'],
    ['SERIALIZABLE', 'behind the lock'],
    ['SERIALIZABLE', 'after the commit'],
  ])(
    '%s, second applier %s: a retryable serialization failure naming the chain; after the retry the chain is whole',
    async (isolation, when) => {
      const { failure, report } = await raceTwoAppliers(isolation, when);
      expect(failure).toMatchObject({ code: '40001' });
      expect(failure?.message).toMatch(/^audit chain head moved: audit\.audit_chain /);
      expect(failure?.hint).toMatch(/Retry the transaction.*READ COMMITTED/);
      expect(report).toMatchObject({ ok: true, findingCount: 0, rows: 5 });
    },
  );

  it('an insider with the writer role who sets audit_trail.chain_head_checked still gets the serialization failure', async () => {
    // The flag once let a REPEATABLE READ applier skip the stale-head probe: any session
    // can set a transaction-local setting, so a stale applier got a bare unique violation.
    const { failure, report } = await raceTwoAppliers('REPEATABLE READ', 'after the commit', {
      insider: true,
    });
    expect(failure).toMatchObject({ code: '40001' });
    expect(failure?.message).toMatch(/^audit chain head moved: audit\.audit_chain /);
    expect(report).toMatchObject({ ok: true, findingCount: 0, rows: 5 });
  });

  it('REPEATABLE READ alone: several statements in one transaction chain normally', async () => {
    const install = await installWithHistory();
    const { client, dms } = await applier(install);
    try {
      await client.query('BEGIN ISOLATION LEVEL REPEATABLE READ');
      await dms.insert({ id: '10', name: 'a' }, cdc('INSERT', '2026-11-22 11:00:00', 10));
      await dms.insert({ id: '11', name: 'b' }, cdc('INSERT', '2026-11-22 11:00:01', 11));
      await dms.update({ id: '10' }, { name: 'c' }, cdc('UPDATE', '2026-11-22 11:00:02', 12));
      await client.query('COMMIT');
    } finally {
      await client.end();
    }
    const report = await verifyIntegrity({ targetUrl: install.targetUrl, auditSchema: 'audit' });
    expect(report).toMatchObject({ ok: true, findingCount: 0, rows: 6 });
  });
});

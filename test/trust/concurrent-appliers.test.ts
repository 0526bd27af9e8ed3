import pg from 'pg';
import { verifyIntegrity } from '../../src/trust/integrity';
import { cdc, DmsApplier } from '../support/dms-apply';
import { installWithHistory, type Install } from './support';

type Isolation = 'READ COMMITTED' | 'REPEATABLE READ' | 'SERIALIZABLE';

/** An applier session on the target (its own connection, like a second DMS task or engine). */
async function applier(install: Install): Promise<{ client: pg.Client; dms: DmsApplier }> {
  const client = new pg.Client({ connectionString: install.targetUrl });
  await client.connect();
  return { client, dms: new DmsApplier(client, 'audit', 'items', ['id']) };
}

/** Holds the chain lock until it is committed, to line the second applier up behind it. */
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
 * Two appliers at `isolation`, both with a snapshot taken before either writes: the
 * first captures and holds the chain lock; the second captures behind it and, once the
 * first commits, must either succeed on the new head or fail with a retryable
 * serialization failure that names the chain, never fork the chain or drop a link. A
 * failed second applier retries, as a DMS task or the engine would.
 */
async function raceTwoAppliers(isolation: Isolation) {
  const t0 = Date.now();
  const log = (m: string) => console.log(`${Date.now() - t0}ms ${m}`);
  const install = await installWithHistory();
  log('installed');
  const [first, second, watcher] = await Promise.all([
    applier(install),
    applier(install),
    applier(install),
  ]);
  try {
    for (const session of [first, second]) {
      await session.client.query(`BEGIN ISOLATION LEVEL ${isolation}`);
      await session.client.query('SELECT count(*) FROM audit.audit_chain'); // takes the snapshot
    }
    log('snapshots');
    const secondPid = await backendPid(second.client);
    await first.dms.insert({ id: '10', name: 'first' }, cdc('INSERT', '2026-11-22 11:00:00', 10));
    log('first inserted');
    const secondHeaders = cdc('INSERT', '2026-11-22 11:00:01', 11);
    const pending = second.dms
      .insert({ id: '11', name: 'second' }, secondHeaders)
      .then(() => undefined)
      .catch((error: unknown) => error as { code?: string; message: string });
    await waitUntilBlocked(watcher.client, secondPid);
    log('second blocked');
    await first.client.query('COMMIT');
    const failure = await pending;
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

describe('concurrent appliers on the chain lock', () => {
  it('READ COMMITTED: the second applier waits, then chains onto the first one’s block', async () => {
    const { failure, report } = await raceTwoAppliers('READ COMMITTED');
    expect(failure).toBeUndefined();
    expect(report).toMatchObject({ ok: true, findingCount: 0, rows: 5 });
  });

  it.each<Isolation>(['REPEATABLE READ', 'SERIALIZABLE'])(
    '%s: the stale applier gets a retryable serialization failure naming the chain; after the retry the chain is whole',
    async (isolation) => {
      const { failure, report } = await raceTwoAppliers(isolation);
      expect(failure).toMatchObject({ code: '40001' });
      expect(failure?.message).toMatch(/audit chain head moved/);
      expect(report).toMatchObject({ ok: true, findingCount: 0, rows: 5 });
    },
  );
});

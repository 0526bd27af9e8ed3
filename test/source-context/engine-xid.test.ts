import { Kysely, PostgresDialect } from 'kysely';
import pg from 'pg';
import type { AuditTrailConfigInput } from '../../src/config';
import { ReplicationConnection, type StreamMessage } from '../../src/engine/replication-connection';
import { createHistory, type History } from '../../src/history';
import { createKysely } from '../../src/postgres/connect';
import { auditContext, installSourceContext } from '../../src/source-context';
import { verifyIntegrity } from '../../src/trust/integrity';
import { replicateArgs, runCli, writeConfig } from '../support/cli';
import { createPipeline, type Pipeline } from '../engine/helpers';

// The engine side of two guarantees test/source-context/dms-context.test.ts shows on
// DMS-shaped writes: a wrapped xid never borrows another transaction's context, and a
// replayed context row adds nothing and changes no context.

const CONFIG = {
  tables: [{ schema: 'public', table: 'items' }],
  sourceContext: {},
} satisfies AuditTrailConfigInput;

/** pgoutput's Begin: 'B', final LSN (8 bytes), commit time (8), xid (4). */
const BEGIN_XID_OFFSET = 17;

describe('context through the local engine: wrapped xids and replays', () => {
  let pipeline: Pipeline;
  let source: pg.Pool;
  let target: Kysely<unknown>;
  let history: History;
  const { setAuditContext } = auditContext(CONFIG);

  beforeAll(async () => {
    pipeline = await createPipeline(
      'CREATE TABLE public.items (id int PRIMARY KEY, name text)',
      CONFIG,
      async (sourceUrl, config) => {
        const db = createKysely<unknown>(sourceUrl, { max: 1 });
        await installSourceContext(db, config).finally(() => db.destroy());
      },
    );
    source = new pg.Pool({ connectionString: pipeline.sourceUrl });
    target = new Kysely({
      dialect: new PostgresDialect({ pool: new pg.Pool({ connectionString: pipeline.targetUrl }) }),
    });
    history = createHistory(target);
    await pipeline.replicate(); // the initial load: later changes stream as CDC
  });

  afterAll(async () => {
    vi.restoreAllMocks();
    await source?.end();
    await target?.destroy();
    await pipeline?.dispose();
  });

  /** Runs `work` in one source transaction; returns its 32-bit xid, as pgoutput sends it. */
  const sourceTransaction = async (work: (client: pg.PoolClient) => Promise<void>) => {
    const client = await source.connect();
    try {
      await client.query('BEGIN');
      await work(client);
      const { rows } = await client.query<{ xid: string }>(
        'SELECT (txid_current() % 4294967296)::text AS xid',
      );
      await client.query('COMMIT');
      return Number(rows[0]!.xid);
    } finally {
      client.release();
    }
  };

  const auditRows = async () =>
    Number(
      (
        await pipeline.target(
          `SELECT count(*)::int AS n FROM audit.audit_log WHERE change_seq IS NOT NULL`,
        )
      ).rows[0].n,
    );

  it('never attaches a context to a later transaction the stream reports under the same 32-bit xid', async () => {
    const withContext = await sourceTransaction(async (client) => {
      await setAuditContext(client, { actor: 'alice', reason: 'TICKET-1' });
      await client.query(`INSERT INTO items VALUES (1, 'pen')`);
    });
    const later = await sourceTransaction(async (client) => {
      await client.query(`UPDATE items SET name = 'ink pen' WHERE id = 1`);
    });
    // 2^32 transactions after `withContext`, pgoutput's Begin carries the same 32-bit
    // xid again: the stream the engine reads says so for `later`, nothing else changes.
    let rewritten = 0;
    const next = ReplicationConnection.prototype.next;
    const spy = vi
      .spyOn(ReplicationConnection.prototype, 'next')
      .mockImplementation(async function (this: ReplicationConnection) {
        const message = await next.call(this);
        if (
          message?.kind !== 'data' ||
          message.payload[0] !== 'B'.charCodeAt(0) ||
          message.payload.readUInt32BE(BEGIN_XID_OFFSET) !== later
        )
          return message;
        const payload = Buffer.from(message.payload);
        payload.writeUInt32BE(withContext, BEGIN_XID_OFFSET);
        rewritten++;
        return { ...message, payload };
      });
    try {
      await pipeline.replicate();
    } finally {
      spy.mockRestore();
    }
    expect(rewritten).toBe(1);
    const versions = await history.history('public.items', { id: 1 });
    // Both recorded under one xid: only the commit time tells them apart.
    expect(versions.map((v) => [v.operation, v.transactionId, v.context?.actor ?? null])).toEqual([
      ['INSERT', String(withContext), 'alice'],
      ['UPDATE', String(withContext), null],
    ]);
    const sameXid = await history.transaction(withContext);
    expect(sameXid.map((v) => [v.table, v.operation, v.context?.actor ?? null])).toEqual([
      ['transaction_context', 'INSERT', 'alice'],
      ['items', 'INSERT', 'alice'],
      ['items', 'UPDATE', null],
    ]);
    const now = new Date(Date.now() + 60_000);
    expect(
      (await history.changesBy('alice', '2000-01-01T00:00:00Z', now)).map((v) => v.operation),
    ).toEqual(['INSERT']);
  });

  it('skips a context transaction the stream delivers again after applying it', async () => {
    const before = await auditRows();
    const xid = await sourceTransaction(async (client) => {
      await setAuditContext(client, { actor: 'carol', reason: 'first delivery' });
      await client.query(`INSERT INTO items VALUES (5, 'cap')`);
    });
    // The server sends the whole transaction (Begin to Commit) a second time, as a
    // restart from an older position would: the engine must see it is applied.
    const next = ReplicationConnection.prototype.next;
    let recording: StreamMessage[] | null = null;
    const again: StreamMessage[] = [];
    let delivered = 0;
    const spy = vi
      .spyOn(ReplicationConnection.prototype, 'next')
      .mockImplementation(async function (this: ReplicationConnection) {
        const queued = again.shift();
        if (queued) return queued;
        const message = await next.call(this);
        if (message?.kind !== 'data') return message;
        const code = String.fromCharCode(message.payload[0]!);
        if (code === 'B' && message.payload.readUInt32BE(BEGIN_XID_OFFSET) === xid) recording = [];
        recording?.push(message);
        if (code === 'C' && recording) {
          again.push(...recording);
          recording = null;
          delivered++;
        }
        return message;
      });
    try {
      await pipeline.replicate();
    } finally {
      spy.mockRestore();
    }
    expect(delivered).toBe(1);
    expect(await auditRows()).toBe(before + 2);
    const versions = await history.transaction(xid);
    expect(versions.map((v) => [v.table, v.context?.actor, v.context?.reason])).toEqual([
      ['transaction_context', 'carol', 'first delivery'],
      ['items', 'carol', 'first delivery'],
    ]);
  });

  // Killed before the target commit (apply-batch) the transaction is applied afresh;
  // after it (after-commit) the restart asks the slot for what follows the stored
  // position, so the server does not send it again: exactly once either way.
  it.each(['apply-batch:1', 'after-commit:1'])(
    'a crash at %s and a restart apply the context transaction once, its context unchanged',
    async (crashAt) => {
      const before = await auditRows();
      const id = crashAt.startsWith('apply') ? 10 : 20;
      const xid = await sourceTransaction(async (client) => {
        await setAuditContext(client, { actor: 'bob', reason: crashAt, requestId: `r-${id}` });
        await client.query(`INSERT INTO items VALUES ($1, 'nib'), ($2, 'ink')`, [id, id + 1]);
      });
      const configFile = await writeConfig(CONFIG);
      const crashed = await runCli(replicateArgs(configFile, pipeline, '--until-idle'), {
        AUDIT_TRAIL_ENGINE_CRASH_AT: crashAt,
      });
      expect(crashed.signal).toBe('SIGKILL');
      const restarted = await runCli(replicateArgs(configFile, pipeline, '--until-idle'));
      expect(restarted.code).toBe(0);
      // One context row and two item rows: exactly once each.
      expect(await auditRows()).toBe(before + 3);
      const versions = await history.transaction(xid);
      expect(versions.map((v) => [v.table, v.context])).toEqual([
        [
          'transaction_context',
          {
            actor: 'bob',
            onBehalfOf: null,
            requestId: `r-${id}`,
            client: null,
            reason: crashAt,
            metadata: null,
          },
        ],
        ['items', expect.objectContaining({ actor: 'bob', reason: crashAt })],
        ['items', expect.objectContaining({ actor: 'bob', reason: crashAt })],
      ]);
      const integrity = await verifyIntegrity({
        targetUrl: pipeline.targetUrl,
        auditSchema: 'audit',
        anchors: [],
      });
      expect(integrity).toMatchObject({ ok: true, findingCount: 0 });
    },
  );
});

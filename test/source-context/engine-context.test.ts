import { Kysely, PostgresDialect } from 'kysely';
import pg from 'pg';
import type { AuditTrailConfigInput } from '../../src/config';
import { createHistory } from '../../src/history';
import { createKysely } from '../../src/postgres/connect';
import {
  auditContext,
  AuditContextError,
  type AuditContextRowFor,
  installSourceContext,
  pruneAuditContext,
} from '../../src/source-context';
import { verifyAuditTrail } from '../../src/verify';
import { verifyIntegrity } from '../../src/trust/integrity';
import { createPipeline, type Pipeline } from '../engine/helpers';

// The local engine end to end: the application writes context with the helpers on the
// source, the engine replicates the context table with the changed rows.

const CONFIG = {
  tables: [{ schema: 'public', table: 'items' }],
  sourceContext: { require: ['actor'], grantInsertTo: ['ctx_app'] },
} satisfies AuditTrailConfigInput;

interface SourceDb {
  items: { id: number; name: string };
}

describe('context through the local engine', () => {
  let pipeline: Pipeline;
  let source: Kysely<SourceDb>;
  let pool: pg.Pool;
  const { withAuditContext, setAuditContext, beginWithAuditContext } = auditContext(CONFIG);

  beforeAll(async () => {
    pipeline = await createPipeline(
      `DO $$ BEGIN CREATE ROLE ctx_app LOGIN PASSWORD 'ctx-app'; EXCEPTION WHEN duplicate_object THEN NULL; END $$;
       CREATE TABLE public.items (id int PRIMARY KEY, name text);
       GRANT SELECT, INSERT, UPDATE, DELETE ON public.items TO ctx_app;`,
      CONFIG,
      async (sourceUrl, config) => {
        const db = createKysely<unknown>(sourceUrl, { max: 1 });
        await installSourceContext(db, config).finally(() => db.destroy());
      },
    );
    // The application connects as a role with INSERT on the context table and nothing more.
    const appUrl = new URL(pipeline.sourceUrl);
    appUrl.username = 'ctx_app';
    appUrl.password = 'ctx-app';
    pool = new pg.Pool({ connectionString: appUrl.toString() });
    source = new Kysely<SourceDb>({ dialect: new PostgresDialect({ pool }) });
    await pipeline.replicate(); // the initial load: later changes stream as CDC
  });

  afterAll(async () => {
    await source?.destroy();
    await pipeline?.dispose();
  });

  const history = () => {
    const db = new Kysely<unknown>({
      dialect: new PostgresDialect({ pool: new pg.Pool({ connectionString: pipeline.targetUrl }) }),
    });
    return { db, api: createHistory(db) };
  };

  it('carries kysely and pg context, leaves plain transactions at null, and chains it', async () => {
    await withAuditContext(
      source,
      { actor: 'alice', reason: 'TICKET-7', requestId: 'r-1', metadata: { n: 9007199254740993n } },
      async (trx) => {
        await trx.insertInto('items').values({ id: 1, name: 'pen' }).execute();
        await trx.insertInto('items').values({ id: 2, name: 'ink' }).execute();
      },
    );
    const client = await pool.connect();
    try {
      await client.query('BEGIN');
      await client.query(`UPDATE items SET name = 'ink pot' WHERE id = 2`);
      // Set after the change: the order inside the transaction does not matter.
      await setAuditContext(client, { actor: 'bob', onBehalfOf: 'carol', client: 'support' });
      await client.query('COMMIT');
    } finally {
      client.release();
    }
    await pipeline.source(`UPDATE items SET name = 'fountain pen' WHERE id = 1`);
    await withAuditContext(source, { actor: 'dave', reason: 'looked only' }, async () => undefined);
    await pipeline.replicate();

    const { db, api } = history();
    try {
      const one = await api.history('public.items', { id: 1 });
      expect(one.map((v) => [v.operation, v.context?.actor ?? null])).toEqual([
        ['INSERT', 'alice'],
        ['UPDATE', null],
      ]);
      expect(one[0]!.context).toMatchObject({
        actor: 'alice',
        reason: 'TICKET-7',
        requestId: 'r-1',
        onBehalfOf: null,
        client: null,
      });
      expect(String((one[0]!.context!.metadata as { n: unknown }).n)).toBe('9007199254740993');
      const two = await api.history('public.items', [2]);
      expect(two.map((v) => v.context?.actor)).toEqual(['alice', 'bob']);
      expect(two[1]!.context).toMatchObject({ onBehalfOf: 'carol', client: 'support' });
      const aliceId = one[0]!.transactionId!;
      expect((await api.transaction(aliceId)).map((v) => [v.table, v.context?.actor])).toEqual([
        ['transaction_context', 'alice'],
        ['items', 'alice'],
        ['items', 'alice'],
      ]);
      const now = new Date(Date.now() + 60_000);
      const all = await api.changesBy('alice', '2000-01-01T00:00:00Z', now);
      expect(all.map((v) => v.key)).toEqual([{ id: 1 }, { id: 2 }]);
      expect(await api.changesBy('dave', '2000-01-01T00:00:00Z', now)).toEqual([]);
      const dave = await api.changesBetween(
        'audit_context.transaction_context',
        '2000-01-01T00:00:00Z',
        now,
        {
          actor: 'dave',
        },
      );
      expect(dave.map((v) => v.context?.reason)).toEqual(['looked only']);
    } finally {
      await db.destroy();
    }
    const integrity = await verifyIntegrity({
      targetUrl: pipeline.targetUrl,
      auditSchema: 'audit',
      anchors: [],
    });
    expect(integrity).toMatchObject({ ok: true, findingCount: 0 });
  });

  it('refuses a second context, a missing required field and a client outside a transaction, without breaking the application transaction', async () => {
    await expect(
      withAuditContext(source, { actor: 'eve' }, async (trx) => {
        await trx.insertInto('items').values({ id: 3, name: 'nib' }).execute();
        await expect(
          withAuditContext(trx, { actor: 'mallory' }, async () => undefined),
        ).rejects.toThrow('already set in this transaction');
        // The transaction is still usable.
        await trx.updateTable('items').set({ name: 'steel nib' }).where('id', '=', 3).execute();
      }),
    ).resolves.toBeUndefined();
    await expect(
      // @ts-expect-error -- actor is required by the config
      withAuditContext(source, { reason: 'no actor' }, async () => undefined),
    ).rejects.toThrow(AuditContextError);
    const client = await pool.connect();
    try {
      await expect(setAuditContext(client, { actor: 'eve' })).rejects.toThrow(
        'inside a transaction',
      );
      await expect(
        setAuditContext(pool as unknown as pg.ClientBase, { actor: 'eve' }),
      ).rejects.toThrow('not a pool');
    } finally {
      client.release();
    }
    // A context row cannot claim another transaction's id.
    await expect(
      pipeline.source(
        `INSERT INTO audit_context.transaction_context (transaction_id, actor) VALUES (1, 'x')`,
      ),
    ).rejects.toThrow(/transaction_context_own_transaction/);
    await pipeline.replicate();
    const { db, api } = history();
    try {
      const three = await api.history('public.items', [3]);
      expect(three.map((v) => [v.operation, v.context?.actor])).toEqual([
        ['INSERT', 'eve'],
        ['UPDATE', 'eve'],
      ]);
    } finally {
      await db.destroy();
    }
  });

  it('starts a transaction with its context in one round trip: hostile values round-trip exactly, both helpers', async () => {
    // Quotes, backslashes (E-string territory), SQL-looking text, dollar quotes, control
    // characters, and unicode beyond the BMP: the values travel as quoted literals.
    const hostile = {
      actor: `o'brien\\'; DROP TABLE items; --`,
      onBehalfOf: `\\x41 \\\\ \\n $$ $q$ E'\\''`,
      requestId: 'тест-🙂-\u200b-\u202e-é-e\u0301',
      client: '"quoted" \t tab \r\n line',
      reason: "a'b''c\\d",
      metadata: { "k'ey\\": "v'al\\ue\u0001", nested: { emoji: '🧾' } },
    };
    const client = await pool.connect();
    try {
      // A fresh connection prepares the context insert on first use; a DISCARD ALL (a
      // pool's reset) drops it, and the next transaction prepares it again.
      await beginWithAuditContext(client, hostile);
      await client.query(`INSERT INTO items (id, name) VALUES (10, 'hostile pg')`);
      await client.query('COMMIT');
      await client.query('DISCARD ALL');
      await beginWithAuditContext(client, { ...hostile, reason: 'after discard' });
      await client.query(`INSERT INTO items (id, name) VALUES (11, 'after discard')`);
      await client.query('COMMIT');
      expect(client.getTransactionStatus()).toBe('I');
    } finally {
      client.release();
    }
    await withAuditContext(source, { ...hostile, actor: `${hostile.actor} (kysely)` }, (trx) =>
      trx.insertInto('items').values({ id: 12, name: 'hostile kysely' }).execute(),
    );
    await pipeline.replicate();
    const { db, api } = history();
    try {
      const contextOf = async (id: number) => (await api.history('public.items', [id]))[0]!.context;
      const expected = {
        actor: hostile.actor,
        onBehalfOf: hostile.onBehalfOf,
        requestId: hostile.requestId,
        client: hostile.client,
        reason: hostile.reason,
        metadata: hostile.metadata,
      };
      expect(await contextOf(10)).toEqual(expected);
      expect(await contextOf(11)).toEqual({ ...expected, reason: 'after discard' });
      expect(await contextOf(12)).toEqual({ ...expected, actor: `${hostile.actor} (kysely)` });
    } finally {
      await db.destroy();
    }
  });

  it('the one-round-trip kysely transaction commits, rolls back, and is over when it ends', async () => {
    let escaped: unknown;
    await expect(
      withAuditContext(source, { actor: 'rollback' }, async (trx) => {
        expect(trx.isTransaction).toBe(true);
        await trx.insertInto('items').values({ id: 20, name: 'never' }).execute();
        escaped = trx;
        throw new Error('application failure');
      }),
    ).rejects.toThrow('application failure');
    await expect(
      (escaped as typeof source).selectFrom('items').selectAll().execute(),
    ).rejects.toThrow('already committed or rolled back');
    const rows = await source.selectFrom('items').select('id').where('id', '=', 20).execute();
    expect(rows).toEqual([]);
    const count = await pipeline.source(
      `SELECT count(*)::int AS n FROM audit_context.transaction_context WHERE actor = 'rollback'`,
    );
    expect(count.rows).toEqual([{ n: 0 }]);
    // A committed transaction's context row is written by that transaction itself.
    await withAuditContext(source, { actor: 'committed' }, (trx) =>
      trx.insertInto('items').values({ id: 21, name: 'kept' }).execute(),
    );
    const same = await pipeline.source(
      `SELECT c.transaction_id % 4294967296 = i.xmin::text::bigint AS same
       FROM items i, audit_context.transaction_context c WHERE i.id = 21 AND c.actor = 'committed'`,
    );
    expect(same.rows).toEqual([{ same: true }]);
  });

  it('beginWithAuditContext refuses a client in a transaction and leaves a refused row rolled back', async () => {
    const client = await pool.connect();
    try {
      await client.query('BEGIN');
      await expect(beginWithAuditContext(client, { actor: 'x' })).rejects.toThrow('already in one');
      await client.query('ROLLBACK');
      await expect(beginWithAuditContext(client, { actor: 'nul\u0000' })).rejects.toThrow(
        'NUL character or an unpaired surrogate',
      );
      await expect(beginWithAuditContext(client, { actor: 'half \ud83d' })).rejects.toThrow(
        'unpaired surrogate',
      );
      // A row the server refuses (jsonb cannot hold \u0000): the transaction is rolled back.
      await expect(
        beginWithAuditContext(client, { actor: 'x', metadata: { bad: 'nul\u0000' } }),
      ).rejects.toThrow(/unsupported Unicode escape sequence/);
      expect(client.getTransactionStatus()).toBe('I');
    } finally {
      client.release();
    }
  });
  it('prunes old context rows on the source in batches; history keeps their context', async () => {
    await pipeline.replicate();
    const { rows: before } = await pipeline.source(
      `SELECT count(*)::int AS n, clock_timestamp() AS cutoff FROM audit_context.transaction_context`,
    );
    const { n: oldRows, cutoff } = before[0] as { n: number; cutoff: Date };
    expect(oldRows).toBeGreaterThan(4);
    await withAuditContext(source, { actor: 'kept' }, (trx) =>
      trx.insertInto('items').values({ id: 40, name: 'after the cutoff' }).execute(),
    );
    // The application role may only insert context rows.
    await expect(pruneAuditContext(source, CONFIG, { olderThan: cutoff })).rejects.toThrow(
      /permission denied/,
    );
    await expect(
      pruneAuditContext(source, CONFIG, { olderThan: cutoff, batchSize: 0 }),
    ).rejects.toThrow(AuditContextError);
    await expect(
      pruneAuditContext(source, CONFIG, { olderThan: new Date(Number.NaN) }),
    ).rejects.toThrow(AuditContextError);
    const owner = new Kysely<unknown>({
      dialect: new PostgresDialect({
        pool: new pg.Pool({ connectionString: pipeline.sourceUrl, max: 1 }),
      }),
    });
    try {
      expect(await pruneAuditContext(owner, CONFIG, { olderThan: cutoff, batchSize: 2 })).toEqual({
        deleted: oldRows,
        batches: Math.floor(oldRows / 2) + 1,
      });
      expect(await pruneAuditContext(owner, CONFIG, { olderThan: cutoff })).toEqual({
        deleted: 0,
        batches: 1,
      });
    } finally {
      await owner.destroy();
    }
    const left = await pipeline.source(`SELECT actor FROM audit_context.transaction_context`);
    expect(left.rows).toEqual([{ actor: 'kept' }]);

    await pipeline.replicate();
    const { db, api } = history();
    try {
      const one = await api.history('public.items', { id: 1 });
      expect(one.map((v) => v.context?.actor ?? null)).toEqual(['alice', null]);
      expect(one[0]!.context).toMatchObject({ reason: 'TICKET-7', requestId: 'r-1' });
      const two = await api.history('public.items', [2]);
      expect(two.map((v) => v.context?.actor)).toEqual(['alice', 'bob']);
      const aliceTx = await api.transaction(one[0]!.transactionId!);
      expect(aliceTx.map((v) => [v.table, v.operation, v.context?.actor])).toEqual([
        ['transaction_context', 'INSERT', 'alice'],
        ['items', 'INSERT', 'alice'],
        ['items', 'INSERT', 'alice'],
      ]);
      const now = new Date(Date.now() + 60_000);
      expect((await api.changesBy('alice', '2000-01-01T00:00:00Z', now)).map((v) => v.key)).toEqual(
        [{ id: 1 }, { id: 2 }],
      );
      expect((await api.history('public.items', [40]))[0]!.context?.actor).toBe('kept');
      // One DELETE version per pruned row, in the prune's own transactions.
      const deletes = await pipeline.target(
        `SELECT count(*)::int AS n FROM audit.audit_log
          WHERE source_table = 'transaction_context' AND operation = 'DELETE'`,
      );
      expect(deletes.rows).toEqual([{ n: oldRows }]);
    } finally {
      await db.destroy();
    }
    const report = await verifyAuditTrail({
      config: pipeline.config,
      sourceUrl: pipeline.sourceUrl,
      targetUrl: pipeline.targetUrl,
    });
    expect(report.ok).toBe(true);
    const integrity = await verifyIntegrity({
      targetUrl: pipeline.targetUrl,
      auditSchema: 'audit',
      anchors: [],
    });
    expect(integrity).toMatchObject({ ok: true, findingCount: 0 });
  });
  it('types the context table from the config (AuditContextRowFor)', async () => {
    interface ContextDb {
      'audit_context.transaction_context': AuditContextRowFor<typeof CONFIG>;
    }
    const owner = new Kysely<ContextDb>({
      dialect: new PostgresDialect({
        pool: new pg.Pool({ connectionString: pipeline.sourceUrl, max: 1 }),
      }),
    });
    try {
      const rows = await owner
        .selectFrom('audit_context.transaction_context')
        .select(['transaction_id', 'actor', 'reason', 'recorded_at'])
        .orderBy('transaction_id')
        .execute();
      expectTypeOf(rows[0]!.actor).toEqualTypeOf<string>(); // required by CONFIG
      expectTypeOf(rows[0]!.reason).toEqualTypeOf<string | null>();
      expectTypeOf(rows[0]!.transaction_id).toEqualTypeOf<string>();
      expect(rows.length).toBeGreaterThan(0);
      expect(typeof rows[0]!.transaction_id).toBe('string');
      expect(rows[0]!.recorded_at).toBeInstanceOf(Date);
      // What the types refuse, the table refuses too (checked by npm run typecheck).
      const table = 'audit_context.transaction_context' as const;
      const refused = [
        // @ts-expect-error -- transaction_id is the writing transaction's own id
        () => owner.insertInto(table).values({ transaction_id: '1', actor: 'x' }),
        // @ts-expect-error -- actor is required by the config
        () => owner.insertInto(table).values({ reason: 'no actor' }),
        // @ts-expect-error -- context rows are not updated
        () => owner.updateTable(table).set({ reason: 'rewritten' }),
      ];
      expect(refused).toHaveLength(3);
    } finally {
      await owner.destroy();
    }
  });
});

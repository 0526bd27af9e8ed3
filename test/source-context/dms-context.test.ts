import { Kysely, PostgresDialect } from 'kysely';
import pg from 'pg';
import { parseConfig } from '../../src/config';
import { createHistory, LosslessNumber, type History } from '../../src/history';
import { migrateTarget } from '../../src/migrate/migrate-target';
import { createKysely } from '../../src/postgres/connect';
import { installSourceContext } from '../../src/source-context';
import { verifyIntegrity } from '../../src/trust/integrity';
import { createTestDatabase, withClient } from '../support/databases';
import { cdc, DmsApplier } from '../support/dms-apply';
import { historyQueriesOf } from '../support/history-queries';
import { enableKitTriggers } from '../support/kit-triggers';

// DMS-shaped: the statements DMS issues on the target, with the header values DMS
// attaches (the source xid and commit time are those of the source transaction).

const config = parseConfig({
  tables: [{ schema: 'public', table: 'items' }],
  sourceContext: {},
});

const CONTEXT_TABLE = 'transaction_context';

describe('context through DMS-shaped staging writes', () => {
  let target: pg.Client;
  let db: Kysely<unknown>;
  let history: History;
  let items: DmsApplier;
  let contexts: DmsApplier;
  let targetUrl: string;

  beforeAll(async () => {
    const sourceUrl = await createTestDatabase('ctxsrc');
    targetUrl = await createTestDatabase('ctxtgt');
    await withClient(sourceUrl, (client) =>
      client.query('CREATE TABLE public.items (id int PRIMARY KEY, name text)'),
    );
    const source = createKysely<unknown>(sourceUrl, { max: 1 });
    try {
      expect(await installSourceContext(source, config)).toMatchObject({ created: true });
      // Re-running changes nothing; a changed `require` changes exactly those columns.
      expect(await installSourceContext(source, config)).toMatchObject({
        created: false,
        required: [],
        optional: [],
      });
      const strict = parseConfig({ ...config, sourceContext: { require: ['actor', 'reason'] } });
      expect(await installSourceContext(source, strict)).toMatchObject({
        required: ['actor', 'reason'],
      });
      expect(await installSourceContext(source, config)).toMatchObject({
        optional: ['actor', 'reason'],
      });
    } finally {
      await source.destroy();
    }
    await migrateTarget({ config, sourceUrl, targetUrl });
    target = new pg.Client({ connectionString: targetUrl });
    await target.connect();
    db = new Kysely({
      dialect: new PostgresDialect({ pool: new pg.Pool({ connectionString: targetUrl }) }),
    });
    history = createHistory(db);
    items = new DmsApplier(target, 'audit', 'items', ['id']);
    contexts = new DmsApplier(target, 'audit', CONTEXT_TABLE, ['transaction_id']);
  });

  afterAll(async () => {
    await target.end();
    await db.destroy();
  });

  const queriesOf = (read: (api: History) => Promise<unknown>) => historyQueriesOf(targetUrl, read);

  /**
   * Runs `explain` with seqscan off (the tables here are too small for the planner to
   * prefer an index that can serve the query), in a transaction it rolls back.
   */
  const withoutSeqscan = async <T>(explain: () => Promise<T>): Promise<T> => {
    await target.query('BEGIN');
    try {
      await target.query('SET LOCAL enable_seqscan = off');
      return await explain();
    } finally {
      await target.query('ROLLBACK');
    }
  };

  /** The context row a source transaction `xid` (epoch 0) wrote, applied as DMS applies it. */
  const contextRow = (xid: number, actor: string, reason: string | null = null) => ({
    transaction_id: String(xid),
    actor,
    on_behalf_of: null,
    request_id: `req-${xid}`,
    client: 'web',
    reason,
    metadata: '{"ticket": 7, "amount": 1.10}',
    recorded_at: '2026-11-22 10:00:00+00',
  });

  const inTargetTransaction = async (work: () => Promise<void>) => {
    await target.query('BEGIN');
    await work();
    await target.query('COMMIT');
  };

  it('joins the context to the rows of its source transaction, applied before or after them', async () => {
    const first = '2026-11-22 10:00:01.000001';
    const second = '2026-11-22 10:00:02.000002';
    await inTargetTransaction(async () => {
      // Source transaction 800: context first.
      await contexts.insert(contextRow(800, 'alice', 'TICKET-7'), cdc('INSERT', first, 800));
      await items.insert({ id: '1', name: 'pen' }, cdc('INSERT', first, 800));
      // Source transaction 801: context last (DMS applies in the source's statement order).
      await items.update({ id: '1' }, { name: 'ink pen' }, cdc('UPDATE', second, 801));
      await items.insert({ id: '2', name: 'ink' }, cdc('INSERT', second, 801));
      await contexts.insert(contextRow(801, 'bob'), cdc('INSERT', second, 801));
    });
    const versions = await history.history('public.items', { id: 1 });
    expect(versions.map((v) => [v.operation, v.transactionId, v.context?.actor])).toEqual([
      ['INSERT', '800', 'alice'],
      ['UPDATE', '801', 'bob'],
    ]);
    expect(versions[0]!.context).toEqual({
      actor: 'alice',
      onBehalfOf: null,
      requestId: 'req-800',
      client: 'web',
      reason: 'TICKET-7',
      metadata: { ticket: 7, amount: expect.objectContaining({ value: '1.10' }) },
    });
    // In the order history --json has always printed them (jsonb's, when the server built
    // the object; the client picks the fields since #14).
    expect(Object.keys(versions[0]!.context!)).toEqual([
      'actor',
      'client',
      'reason',
      'metadata',
      'requestId',
      'onBehalfOf',
    ]);
    // versionAt (asOf's version) and latest carry it too.
    const at = await history.versionAt('public.items', { id: 1 }, '2026-11-22T10:00:01.5Z');
    expect([at?.transactionId, at?.context?.actor]).toEqual(['800', 'alice']);
    const latest = await history.latest('public.items');
    expect(latest.map((v) => [v.key, v.context?.actor])).toEqual([
      [{ id: 1 }, 'bob'],
      [{ id: 2 }, 'bob'],
    ]);
    const tx801 = await history.transaction(801);
    expect(tx801.filter((v) => v.table === 'items').map((v) => v.context?.actor)).toEqual([
      'bob',
      'bob',
    ]);
    // One transaction's versions have equal contexts, each its own: changing one version's
    // context changes no other's.
    const [one, two] = tx801.filter((v) => v.table === 'items');
    expect(one!.context).toStrictEqual(two!.context);
    const bob = {
      actor: 'bob',
      onBehalfOf: null,
      requestId: 'req-801',
      client: 'web',
      reason: null,
      metadata: { ticket: 7, amount: new LosslessNumber('1.10') },
    };
    expect(two!.context).toStrictEqual(bob);
    const context = one!.context as unknown as { actor: string; metadata: { ticket: number } };
    context.actor = 'eve';
    context.metadata.ticket = 8;
    expect(two!.context).toStrictEqual(bob);
  });

  it('leaves transactions without context at null, and lists a context-only transaction', async () => {
    const at = '2026-11-22 10:00:03.000003';
    await items.update({ id: '2' }, { name: 'blue ink' }, cdc('UPDATE', at, 802));
    const contextOnly = '2026-11-22 10:00:04.000004';
    await contexts.insert(
      contextRow(803, 'carol', 'read-only review'),
      cdc('INSERT', contextOnly, 803),
    );
    const versions = await history.history('public.items', { id: 2 });
    expect(versions.at(-1)).toMatchObject({ transactionId: '802', context: null });
    const only = await history.transaction(803);
    expect(only.map((v) => [v.table, v.operation, v.context?.actor])).toEqual([
      [CONTEXT_TABLE, 'INSERT', 'carol'],
    ]);
    // changesBy lists changes to audited tables, not the context rows themselves.
    expect(
      await history.changesBy('carol', '2026-11-22T00:00:00Z', '2026-11-23T00:00:00Z'),
    ).toEqual([]);
  });

  it('never attaches the context of a wrapped xid: the commit time must match too', async () => {
    // xid 900 wrote a context; 2^32 transactions later another transaction 900 (as DMS
    // reports the 32-bit xid) changes a row without context.
    await contexts.insert(
      contextRow(900, 'mallory'),
      cdc('INSERT', '2026-11-22 10:00:05.000005', 900),
    );
    await items.insert({ id: '3', name: 'nib' }, cdc('INSERT', '2027-03-01 08:00:00.000001', 900));
    const [version] = await history.history('public.items', { id: 3 });
    expect(version).toMatchObject({ transactionId: '900', context: null });
    const [again] = await history
      .transaction(900)
      .then((vs) => vs.filter((v) => v.table === 'items'));
    expect(again!.context).toBeNull();
  });

  it('attaches its own context to each of transactions committed at the same instant', async () => {
    // A source whose commit times are coarse (or two sources in one log): the xid tells
    // them apart. The transaction committed last in the log comes first here, so neither
    // the lowest nor the last id at that instant is the answer for both.
    const at = '2027-02-01 07:00:00.000000';
    await contexts.insert(contextRow(1202, 'heidi', 'second'), cdc('INSERT', at, 1202));
    await contexts.insert(contextRow(1201, 'grace', 'first'), cdc('INSERT', at, 1201));
    await items.insert({ id: '41', name: 'clip' }, cdc('INSERT', at, 1201));
    await items.insert({ id: '42', name: 'pin' }, cdc('INSERT', at, 1202));
    for (const [id, actor, reason] of [
      [41, 'grace', 'first'],
      [42, 'heidi', 'second'],
    ] as const) {
      const [version] = await history.history('public.items', { id });
      expect(version!.context).toMatchObject({ actor, reason });
      expect(await history.versionAt('public.items', { id }, `${at}Z`)).toMatchObject({
        context: { actor, reason },
      });
    }
  });

  it('adds nothing when DMS replays a context row, and the context stays the same', async () => {
    const at = '2027-03-02 09:00:00.000006'; // after row 3's insert (a later change)
    const headers = cdc('INSERT', at, 1000);
    const change = cdc('UPDATE', at, 1000);
    await contexts.insert(contextRow(1000, 'dave', 'first'), headers);
    await items.update({ id: '3' }, { name: 'gold nib' }, change);
    const countRows = async () =>
      (await target.query('SELECT count(*)::int AS n FROM audit.audit_log')).rows[0].n as number;
    const before = await countRows();
    // After a task restart DMS re-applies both (INSERT_RECORD turns the insert into an update).
    await contexts.insertRecord(contextRow(1000, 'dave', 'first'), headers);
    await items.update({ id: '3' }, { name: 'gold nib' }, change);
    expect(await countRows()).toBe(before);
    const versions = await history.transaction(1000);
    expect(versions.map((v) => [v.table, v.context?.actor, v.context?.reason])).toEqual([
      [CONTEXT_TABLE, 'dave', 'first'],
      ['items', 'dave', 'first'],
    ]);
  });

  it('answers changesBy and changesBetween by actor across many transactions', async () => {
    const week = ['2026-11-22T00:00:00Z', '2026-11-29T00:00:00Z'] as const;
    const alice = await history.changesBy('alice', ...week);
    expect(alice.map((v) => [v.table, v.operation, v.key])).toEqual([
      ['items', 'INSERT', { id: 1 }],
    ]);
    const bob = await history.changesBy('bob', ...week);
    expect(bob.map((v) => [v.operation, v.key])).toEqual([
      ['UPDATE', { id: 1 }],
      ['INSERT', { id: 2 }],
    ]);
    expect(await history.changesBy('bob', '2026-11-22T10:00:02.000003Z', week[1])).toEqual([]);
    const bobsItems = await history.changesBetween('public.items', ...week, { actor: 'bob' });
    expect(bobsItems.map((v) => v.key)).toEqual([{ id: 1 }, { id: 2 }]);
    const all = await history.changesBetween('public.items', ...week);
    expect(all.length).toBeGreaterThan(bobsItems.length);
  });

  it('finds the actor through the actor index (changesBy), bounded by the range', async () => {
    // Many transactions of other actors around Erin's two, one of hers outside the range.
    await inTargetTransaction(async () => {
      for (let i = 0; i < 40; i++) {
        const xid = 2000 + i;
        const at = `2026-11-24 09:00:${String(i).padStart(2, '0')}.000001`;
        const actor = i === 10 || i === 30 || i === 39 ? 'erin' : `user-${i % 7}`;
        await contexts.insert(contextRow(xid, actor), cdc('INSERT', at, xid));
        await items.insert({ id: String(100 + i), name: `item ${i}` }, cdc('INSERT', at, xid));
      }
    });
    const range = ['2026-11-24T09:00:05Z', '2026-11-24T09:00:35Z'] as const;
    const erin = await history.changesBy('erin', ...range);
    expect(erin.map((v) => [v.transactionId, v.key, v.context?.actor])).toEqual([
      ['2010', { id: 110 }, 'erin'],
      ['2030', { id: 130 }, 'erin'],
    ]);
    // The plan reads the actor's context rows from the index (migration 0011; this
    // failed before it). With seqscan off the planner takes any index that can serve
    // the query: the tables here are too small for it to prefer one.
    const queries = await queriesOf((api) => api.changesBy('erin', ...range));
    const query = queries.find((q) => q.sql.includes("->> 'actor'"));
    expect(query).toBeDefined();
    const { rows } = await withoutSeqscan(() =>
      target.query({
        text: `EXPLAIN ${query!.sql}`,
        values: query!.parameters as unknown[],
        rowMode: 'array',
      }),
    );
    const plan = rows.map((row: unknown[]) => String(row[0])).join('\n');
    expect(plan).toMatch(/audit_log_context_actor_idx/);
  });

  it("finds each version's context through the context row index, not every row of its transaction", async () => {
    // Transaction 3000 changes many rows; its context row is one of them.
    const at = '2026-11-25 09:00:00.000001';
    await inTargetTransaction(async () => {
      await contexts.insert(contextRow(3000, 'frank', 'bulk'), cdc('INSERT', at, 3000));
      for (let i = 0; i < 30; i++)
        await items.insert({ id: String(300 + i), name: `bulk ${i}` }, cdc('INSERT', at, 3000));
    });
    const queries = await queriesOf(async (api) => {
      const [version] = await api.history('public.items', { id: 315 });
      expect(version?.context).toMatchObject({ actor: 'frank', reason: 'bulk' });
    });
    const query = queries.find((q) => q.sql.includes('as "ctx"'));
    expect(query).toBeDefined();
    // Migration 0014 (0026 puts commit time first); before it, the lookup went through
    // audit_log_transaction_idx and read all 31 rows of transaction 3000 from the heap for
    // each version.
    const { rows } = await withoutSeqscan(() =>
      target.query({
        text: `EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) ${query!.sql}`,
        values: query!.parameters as unknown[],
      }),
    );
    const lookups = indexScans(rows[0]['QUERY PLAN'][0].Plan).filter((scan) => scan.alias === 'c');
    expect(lookups).toEqual([{ alias: 'c', index: 'audit_log_context_commit_idx', rows: 1 }]);
  });

  it('keeps the context of old versions when the source prunes context rows (DELETE)', async () => {
    // pruneAuditContext on the source deletes old context rows in its own transactions;
    // DMS applies each DELETE to staging (operation_indicator keeps the row, flagged D).
    const prune = '2026-12-01 03:00:00.000001';
    for (const xid of [800, 801]) {
      expect(
        await contexts.delete({ transaction_id: String(xid) }, cdc('DELETE', prune, 5000)),
      ).toBe(1);
    }
    const versions = await history.history('public.items', { id: 1 });
    expect(versions.map((v) => [v.transactionId, v.context?.actor, v.context?.reason])).toEqual([
      ['800', 'alice', 'TICKET-7'],
      ['801', 'bob', null],
    ]);
    const week = ['2026-11-22T00:00:00Z', '2026-11-29T00:00:00Z'] as const;
    expect((await history.changesBy('alice', ...week)).map((v) => v.key)).toEqual([{ id: 1 }]);
    // The prune itself is recorded: one DELETE version per context row, without context.
    const pruned = await history.transaction(5000);
    expect(pruned.map((v) => [v.table, v.operation, v.key, v.context])).toEqual([
      [CONTEXT_TABLE, 'DELETE', { transaction_id: '800' }, null],
      [CONTEXT_TABLE, 'DELETE', { transaction_id: '801' }, null],
    ]);
  });

  it('seals context rows in the hash chain like every audit row', async () => {
    const report = await verifyIntegrity({ targetUrl, auditSchema: 'audit', anchors: [] });
    expect(report).toMatchObject({ ok: true, findingCount: 0 });
    const { rows } = await target.query(
      `SELECT count(*)::int AS n FROM audit.audit_log l
        WHERE l.source_table = $1
          AND NOT EXISTS (SELECT FROM audit.audit_chain b WHERE l.id = ANY (b.row_ids))`,
      [CONTEXT_TABLE],
    );
    expect(rows[0].n).toBe(0);
    // Altering a context row's actor is named by verify --integrity.
    await target.query(`ALTER TABLE audit.audit_log DISABLE TRIGGER USER;
      UPDATE audit.audit_log SET new_row = jsonb_set(new_row, '{actor}', '"someone else"')
       WHERE source_table = '${CONTEXT_TABLE}' AND transaction_id = '800';
      ${enableKitTriggers('audit_log')}`);
    const tampered = await verifyIntegrity({ targetUrl, auditSchema: 'audit', anchors: [] });
    expect(tampered.ok).toBe(false);
    expect(tampered.findings.map((finding) => finding.kind)).toContain('altered');
  });
});

interface PlanNode {
  readonly 'Node Type': string;
  readonly Alias?: string;
  readonly 'Index Name'?: string;
  readonly 'Actual Rows'?: number;
  readonly 'Actual Loops'?: number;
  readonly Plans?: readonly PlanNode[];
}

/** The index scans of an EXPLAIN (FORMAT JSON) plan: table alias, index, rows read per loop. */
function indexScans(node: PlanNode): { alias?: string; index?: string; rows?: number }[] {
  const own = /Index/.test(node['Node Type'])
    ? [{ alias: node.Alias, index: node['Index Name'], rows: node['Actual Rows'] }]
    : [];
  return [...own, ...(node.Plans ?? []).flatMap(indexScans)];
}

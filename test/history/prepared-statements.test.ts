import { Kysely, PostgresDialect, sql } from 'kysely';
import pg from 'pg';
import { generateAuditRows } from '../../bench/cases/history';
import { parseConfig } from '../../src/config';
import { createHistory, historyCursor } from '../../src/history';
import { stringifyRowJson } from '../../src/history/row-json';
import { migrateTarget } from '../../src/migrate/migrate-target';
import { createKysely } from '../../src/postgres/connect';
import { formatTextArray, quoteLiteral } from '../../src/postgres/identifiers';
import { createTestDatabase, withClient } from '../support/databases';
import { historyQueriesOf, type RecordedQuery } from '../support/history-queries';

/** Big enough that a sequential scan of the log would be the planner's loss, not a tie. */
const AUDIT_ROWS = 150_000;

interface Prepared {
  name: string;
  statement: string;
  generic_plans: string;
  custom_plans: string;
}

describe('history statements prepared by name', () => {
  let targetUrl: string;
  let keys: number[];

  beforeAll(async () => {
    const sourceUrl = await createTestDatabase('src');
    targetUrl = await createTestDatabase('tgt');
    await withClient(sourceUrl, (client) =>
      client.query(
        'CREATE TABLE items (id bigint PRIMARY KEY, name text NOT NULL, price numeric(12,2), qty int, updated_at timestamptz)',
      ),
    );
    await migrateTarget({
      config: parseConfig({ tables: [{ table: 'items' }] }),
      sourceUrl,
      targetUrl,
    });
    await generateAuditRows(targetUrl, AUDIT_ROWS);
    keys = await withClient(targetUrl, async (client) => {
      // Keys with many versions and with few, so pages and instants differ.
      const { rows } = await client.query<{ id: string }>(`
        SELECT row_key ->> 'id' AS id FROM audit.audit_log WHERE source_table = 'items'
        GROUP BY 1 ORDER BY count(*) DESC, 1 LIMIT 6`);
      const { rows: few } = await client.query<{ id: string }>(`
        SELECT row_key ->> 'id' AS id FROM audit.audit_log WHERE source_table = 'items'
        GROUP BY 1 ORDER BY count(*), 1 LIMIT 6`);
      return [...rows, ...few].map((row) => Number(row.id));
    });
  }, 300_000);

  /**
   * Every answer the sampled keys give: first page, next page, all, asOf; and the first
   * version's transaction, the changes of the 50 ms from the middle version on, and the
   * first three of them. Then the table's newest versions (latest).
   */
  async function answers(db: Kysely<unknown>): Promise<string> {
    const history = createHistory(db);
    const out: unknown[] = [];
    for (const id of keys) {
      const first = await history.history('public.items', { id }, { limit: 5 });
      const next = await history.history(
        'public.items',
        { id },
        { limit: 5, after: historyCursor(first.at(-1)!) },
      );
      const all = await history.history('public.items', [String(id)]);
      const middle = all[Math.floor(all.length / 2)]!.commitTimestamp;
      out.push(first, next, all.length, await history.asOf('public.items', { id }, middle));
      out.push(await history.transaction(all[0]!.transactionId!));
      const until = new Date(new Date(middle).getTime() + 50).toISOString();
      out.push(await history.changesBetween('public.items', middle, until));
      out.push(await history.changesBetween('public.items', middle, until, { limit: 3 }));
    }
    out.push(await history.latest('public.items'));
    return stringifyRowJson(out);
  }

  it('compiles each query shape once, and prepares it once per connection', async () => {
    const db = createKysely<unknown>(targetUrl, { max: 1 });
    try {
      await answers(db);
      await answers(db);
      // The plan counters are PostgreSQL 14+; on 13 the four names alone show that each
      // text was prepared once (preparing a name twice is an error).
      const { rows: version } = await sql<{ n: number }>`
        SELECT current_setting('server_version_num')::int AS n`.execute(db);
      const countsPlans = version[0]!.n >= 140000;
      const { rows } = await sql<Prepared>`
        SELECT name, statement${sql.raw(countsPlans ? ', generic_plans::text, custom_plans::text' : '')}
        FROM pg_prepared_statements WHERE name LIKE 'atk\\_%' ORDER BY name`.execute(db);
      // firstPage, nextPage, all, versionAt and transaction, each run 2 x 12 times; and
      // latest, run twice: six texts. changesBetween is planned per call (its window).
      expect(rows.length).toBe(6);
      for (const row of rows) {
        const runs = /group by/i.test(row.statement) ? 2 : 24;
        if (countsPlans)
          expect(Number(row.generic_plans) + Number(row.custom_plans), row.statement).toBe(runs);
        expect(row.statement).toContain('audit_log');
        expect(row.statement).not.toContain('row_key_of');
      }
    } finally {
      await db.destroy();
    }
  });

  it("reads a key's versions from the per-key index in apply order: no sort, only the rows it returns", async () => {
    // The key with the most versions (about 1,000): a plan that reads them all and sorts
    // them costs its whole history on every page.
    const id = keys[0]!;
    let versions = 0;
    const queries = await historyQueriesOf(targetUrl, async (history) => {
      const first = await history.history('public.items', { id }, { limit: 5 });
      await history.history('public.items', { id }, { limit: 5, after: first.at(-1) });
      const all = await history.history('public.items', { id });
      versions = all.length;
      await history.versionAt(
        'public.items',
        { id },
        all[Math.floor(all.length / 2)]!.commitTimestamp,
      );
    });
    const perKey = queries.filter((query) => query.sql.includes('jsonb_hash_extended'));
    expect(perKey.length).toBe(4);
    expect(versions).toBeGreaterThan(500);
    const [firstPage, nextPage, all, versionAt] = await Promise.all(
      perKey.map((query) => genericPlan(targetUrl, query)),
    );
    for (const [plan, rows] of [
      [firstPage, 5],
      [nextPage, 5],
      [all, versions],
      [versionAt, 1],
    ] as const) {
      const path = pathTo(plan!, (node) => node.Alias === 'l');
      const scan = path.at(-1)!;
      const described = describePath(path);
      expect.soft(scan['Node Type'], described).toBe('Index Scan');
      expect.soft(scan['Index Name'], described).toBe('audit_log_key_apply_order_idx');
      expect
        .soft(
          path.filter((node) => /Sort/.test(node['Node Type'])),
          described,
        )
        .toEqual([]);
      // Only the versions returned are read from the table: versionAt's instant is
      // checked in the index, not on each newer version fetched from the heap.
      expect.soft(scan['Actual Rows'], described).toBe(rows);
      expect.soft(scan['Rows Removed by Filter'] ?? 0, described).toBe(0);
      // Each version's context lookup checks the context tables read once per query (an
      // InitPlan), not read again for every version.
      const contextTables = allNodes(plan!).filter((node) => node.Alias === 'ct');
      expect.soft(contextTables.length, described).toBeGreaterThan(0);
      for (const node of contextTables)
        expect.soft(node['Actual Loops'], describePath(contextTables)).toBe(1);
    }
  }, 60_000);

  it("finds a table's newest versions from keys and ids, and reads only those rows and their context", async () => {
    let keysOfTable = 0;
    const queries = await historyQueriesOf(targetUrl, async (history) => {
      keysOfTable = (await history.latest('public.items')).length;
    });
    expect(keysOfTable).toBeGreaterThan(100);
    const { nodes, described } = await planOfTheOneRead(queries, 'force_generic_plan');
    // The table's versions: through its index, grouped by key without sorting them.
    expect
      .soft(
        nodes.map((node) => node['Index Name']),
        described,
      )
      .toContain('audit_log_key_apply_order_idx');
    // The only sort is of the answer (key order), one row per key.
    for (const sort of nodes.filter((node) => /Sort/.test(node['Node Type'])))
      expect.soft(sort['Actual Rows'], described).toBe(keysOfTable);
    // Each newest version read once by id, and only its context looked up.
    const answer = nodes.find((node) => node.Alias === 'l')!;
    expect.soft(answer['Index Name'], described).toBe('audit_log_pkey');
    expect
      .soft((answer['Actual Loops'] ?? 1) * answer['Actual Rows']!, described)
      .toBe(keysOfTable);
    const context = nodes.find((node) => node.Alias === 'c')!;
    expect.soft(context['Actual Loops'], described).toBe(keysOfTable);
  }, 120_000);

  it('narrows changesBetween to its window with the BRIN index on commit time, the log being in commit order', async () => {
    const { middle, pages } = await withClient(targetUrl, async (client) => {
      const { rows } = await client.query<{ middle: Date; pages: number }>(`
        SELECT (SELECT commit_timestamp FROM audit.audit_log ORDER BY id
                 OFFSET (SELECT count(*) / 2 FROM audit.audit_log) LIMIT 1) AS middle,
               relpages AS pages
        FROM pg_class WHERE oid = 'audit.audit_log'::regclass`);
      return rows[0]!;
    });
    const until = new Date(middle.getTime() + 50).toISOString();
    let changes = 0;
    const queries = await historyQueriesOf(targetUrl, async (api) => {
      changes = (await api.changesBetween('public.items', middle.toISOString(), until)).length;
    });
    expect(changes).toBeGreaterThan(0);
    // As it is sent: unnamed, so planned for its own window.
    const { nodes, described } = await planOfTheOneRead(queries, 'force_custom_plan');
    expect
      .soft(
        nodes.map((node) => node['Index Name']),
        described,
      )
      .toContain('audit_log_commit_time_idx');
    // A 50 ms window is a few block ranges of the BRIN index (128 pages each), not the log.
    const heap = nodes.find((node) => node.Alias === 'l');
    const blocks = (heap?.['Exact Heap Blocks'] ?? 0) + (heap?.['Lossy Heap Blocks'] ?? 0);
    expect(pages).toBeGreaterThan(2000);
    expect.soft(blocks, described).toBeGreaterThan(0);
    expect.soft(blocks, described).toBeLessThanOrEqual(3 * 128);
    // The table's registry row is read once per query, not looked up for every change.
    const registry = nodes.filter((node) => node.Alias === 't');
    expect.soft(registry.length, described).toBeGreaterThan(0);
    for (const node of registry) expect.soft(node['Actual Loops'], described).toBe(1);
  }, 120_000);

  /**
   * The plan of the one statement among `queries` that reads the audit log (the others read
   * the registry and the key's renames), run on its values: every node, and a line per node.
   */
  async function planOfTheOneRead(
    queries: readonly RecordedQuery[],
    mode: 'force_generic_plan' | 'force_custom_plan',
  ): Promise<{ nodes: PlanNode[]; described: string }> {
    const reads = queries.filter((query) => query.sql.includes('audit_log'));
    expect(reads.length).toBe(1);
    const nodes = allNodes(await genericPlan(targetUrl, reads[0]!, mode));
    return { nodes, described: nodes.map((node) => describePath([node])).join('\n') };
  }

  it('answers exactly as unprepared statements do, with generic plans forced', async () => {
    const generic = createKysely<unknown>(targetUrl, {
      max: 1,
      settings: { plan_cache_mode: 'force_generic_plan' },
    });
    const unprepared = new Kysely<unknown>({
      dialect: new PostgresDialect({ pool: new pg.Pool({ connectionString: targetUrl, max: 1 }) }),
    });
    try {
      const expected = await answers(unprepared);
      expect(expected.length).toBeGreaterThan(1000);
      expect(await answers(generic)).toBe(expected);
    } finally {
      await generic.destroy();
      await unprepared.destroy();
    }
  });
});

interface PlanNode {
  readonly 'Node Type': string;
  readonly Alias?: string;
  readonly 'Index Name'?: string;
  readonly 'Actual Rows'?: number;
  readonly 'Actual Loops'?: number;
  readonly 'Rows Removed by Filter'?: number;
  readonly 'Exact Heap Blocks'?: number;
  readonly 'Lossy Heap Blocks'?: number;
  readonly Plans?: readonly PlanNode[];
}

/**
 * The generic plan PostgreSQL keeps for a prepared statement, run with EXPLAIN ANALYZE
 * on the recorded values: `EXPLAIN (GENERIC_PLAN)` is 16+ and does not execute, while
 * `plan_cache_mode = force_generic_plan` and `EXPLAIN EXECUTE` work on every major. With
 * `force_custom_plan`, the plan made for these values (an unnamed statement's).
 */
async function genericPlan(
  url: string,
  query: RecordedQuery,
  mode: 'force_generic_plan' | 'force_custom_plan' = 'force_generic_plan',
): Promise<PlanNode> {
  const literal = (value: unknown): string => {
    if (value === null || value === undefined) return 'NULL';
    if (Array.isArray(value)) return quoteLiteral(formatTextArray(value.map(String)));
    return quoteLiteral(String(value));
  };
  return withClient(url, async (client) => {
    await client.query(`SET plan_cache_mode = ${mode}`);
    await client.query(`PREPARE per_key AS ${query.sql}`);
    const { rows } = await client.query<{ 'QUERY PLAN': { Plan: PlanNode }[] }>(
      `EXPLAIN (ANALYZE, FORMAT JSON) EXECUTE per_key(${query.parameters.map(literal).join(', ')})`,
    );
    return rows[0]!['QUERY PLAN'][0]!.Plan;
  });
}

/** The nodes from the plan's root down to the first node `match` accepts ([] if none). */
function pathTo(node: PlanNode, match: (node: PlanNode) => boolean): PlanNode[] {
  if (match(node)) return [node];
  for (const child of node.Plans ?? []) {
    const below = pathTo(child, match);
    if (below.length > 0) return [node, ...below];
  }
  return [];
}

/** Every node of a plan, root first. */
function allNodes(node: PlanNode): PlanNode[] {
  return [node, ...(node.Plans ?? []).flatMap(allNodes)];
}

/** One line per node of a path: type, alias, index, rows (what a failure should show). */
function describePath(path: readonly PlanNode[]): string {
  return path
    .map(
      (node) =>
        `${node['Node Type']} ${node.Alias ?? ''} ${node['Index Name'] ?? ''} rows=${node['Actual Rows']} loops=${node['Actual Loops']}` +
        (node['Rows Removed by Filter'] ? ` removed=${node['Rows Removed by Filter']}` : ''),
    )
    .join(' > ');
}

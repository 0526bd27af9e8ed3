import { Kysely, PostgresDialect, sql } from 'kysely';
import pg from 'pg';
import { generateAuditRows } from '../../bench/cases/history';
import { parseConfig } from '../../src/config';
import { createHistory, historyCursor } from '../../src/history';
import { stringifyRowJson } from '../../src/history/row-json';
import { migrateTarget } from '../../src/migrate/migrate-target';
import { createKysely } from '../../src/postgres/connect';
import { createTestDatabase, withClient } from '../support/databases';

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

  /** Every answer the sampled keys give: first page, next page, all, asOf. */
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
    }
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
      // firstPage, nextPage, all and versionAt: four texts, each run 2 x 12 times.
      expect(rows.length).toBe(4);
      for (const row of rows) {
        if (countsPlans)
          expect(Number(row.generic_plans) + Number(row.custom_plans), row.statement).toBe(24);
        expect(row.statement).toContain('audit_log');
        expect(row.statement).not.toContain('row_key_of');
      }
    } finally {
      await db.destroy();
    }
  });

  it('keeps an index scan of the per-key index in the generic plan, on a big log', async (context) => {
    const db = createKysely<unknown>(targetUrl, { max: 1 });
    try {
      const { rows: version } = await sql<{ n: number }>`
        SELECT current_setting('server_version_num')::int AS n`.execute(db);
      // EXPLAIN (GENERIC_PLAN) is PostgreSQL 16+.
      if (version[0]!.n < 160000) context.skip();
      await answers(db);
      const { rows } = await sql<Prepared>`
        SELECT name, statement FROM pg_prepared_statements WHERE name LIKE 'atk\\_%'`.execute(db);
      expect(rows.length).toBe(4);
      for (const row of rows) {
        const { rows: plan } = await sql<{ 'QUERY PLAN': string }>`
          EXPLAIN (GENERIC_PLAN) ${sql.raw(row.statement)}`.execute(db);
        const text = plan.map((line) => line['QUERY PLAN']).join('\n');
        // A key's versions come in apply order (id), so the planner may read them through a
        // bitmap of the per-key index and sort them; either way, by the per-key index.
        expect(text, text).toMatch(
          /(Index Scan( Backward)? using|Bitmap Index Scan on) audit_log_key_hash_history_idx/,
        );
        expect(text, text).not.toMatch(/Seq Scan on audit_log/);
      }
    } finally {
      await db.destroy();
    }
  });

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

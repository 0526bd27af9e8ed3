import { existsSync } from 'node:fs';
import path from 'node:path';
import { parseConfig } from '../../src/config';
import { createEngine, silentLogger } from '../../src/engine';
import { migrateTarget } from '../../src/migrate/migrate-target';
import { LOGICAL_REPLICATION_SETTINGS } from '../../src/postgres/local-server';
import { startPgauditServer, type PgauditServer } from '../access-audit/support/pgaudit-server';
import { withClient } from '../support/databases';

/**
 * JIT on the target: PostgreSQL's default where LLVM is present (Debian's and RDS's
 * builds; the embedded test servers have none). A JIT-compiled staging UPDATE costs
 * ~1.6 s instead of ~10 ms, so the kit's sessions and trigger functions must not JIT.
 * jit_above_cost = 0 makes the server JIT every statement that may: anything the kit
 * runs and still compiles shows in pg_stat_statements' jit counters.
 */
const BIN = process.env.PGAUDIT_PG_BIN ?? '/usr/lib/postgresql/15/bin';
const jitAvailable =
  existsSync(path.join(BIN, 'postgres')) && existsSync(path.join(BIN, '..', 'lib', 'llvmjit.so'));

// CI installs Debian's PostgreSQL 15 for the live pgAudit suite: there, a missing JIT
// server fails instead of skipping.
it.runIf(!jitAvailable && process.env.AUDIT_TRAIL_REQUIRE_PGAUDIT === '1')(
  'has a PostgreSQL with LLVM JIT to test against',
  () => {
    throw new Error(`no PostgreSQL with llvmjit.so in ${BIN} (apt-get install postgresql-15)`);
  },
);

describe.skipIf(!jitAvailable)('JIT on the target (PostgreSQL 15 with LLVM)', () => {
  let server: PgauditServer;
  const config = parseConfig({ tables: [{ table: 'items' }] });
  const slotName = 'jit_test_slot';

  beforeAll(async () => {
    server = await startPgauditServer(BIN, {
      preload: false,
      settings: {
        ...Object.fromEntries(
          Object.entries(LOGICAL_REPLICATION_SETTINGS).map(([name, value]) => [
            name,
            String(value),
          ]),
        ),
        shared_preload_libraries: 'pg_stat_statements',
        'pg_stat_statements.track': 'all',
        jit_above_cost: '0',
      },
    });
    await withClient(server.adminUrl(), (client) =>
      client.query('CREATE DATABASE src').then(() => client.query('CREATE DATABASE tgt')),
    );
    await withClient(server.adminUrl('src'), (client) =>
      client.query(`CREATE TABLE public.items (id int PRIMARY KEY, name text, price numeric, doc json, f float8);
                    INSERT INTO public.items SELECT g, 'item ' || g, g, '{"g": 1}', 0.5 FROM generate_series(1, 50) g`),
    );
    await withClient(server.adminUrl('tgt'), (client) =>
      client.query('CREATE EXTENSION pg_stat_statements'),
    );
    await migrateTarget({
      config,
      sourceUrl: server.adminUrl('src'),
      targetUrl: server.adminUrl('tgt'),
    });
  }, 120_000);

  afterAll(async () => {
    await withClient(server.adminUrl('src'), (client) =>
      client.query('SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots'),
    ).catch(() => undefined);
    await server?.stop();
  });

  /** The test's own queries must not JIT either, or they would show in the counters. */
  const quiet = (database: string) => `${server.adminUrl(database)}?options=-c%20jit%3Doff`;

  const replicate = () =>
    createEngine({
      config,
      sourceUrl: server.adminUrl('src'),
      targetUrl: server.adminUrl('tgt'),
      slotName,
      logger: silentLogger,
      lagIntervalMs: 0,
    }).runUntilIdle();

  const jitStatements = (where: string) =>
    withClient(quiet('tgt'), async (client) => {
      const { rows } = await client.query<{ query: string; jit_functions: string }>(
        `SELECT query, jit_functions::text FROM pg_stat_statements
          WHERE dbid = (SELECT oid FROM pg_database WHERE datname = 'tgt') AND jit_functions > 0 AND ${where}`,
      );
      return rows;
    });

  it('has JIT on and available, and JIT-compiles an ordinary session statement', async () => {
    await withClient(server.adminUrl('tgt'), async (client) => {
      const { rows } = await client.query<{ jit: string; available: boolean }>(
        `SELECT current_setting('jit') AS jit, pg_jit_available() AS available`,
      );
      expect(rows[0]).toEqual({ jit: 'on', available: true });
      await client.query('SELECT count(*) FROM pg_class WHERE relname <> $1', ['probe']);
    });
    expect(await jitStatements(`query LIKE 'SELECT count(*) FROM pg_class%'`)).not.toEqual([]);
  });

  it('compiles nothing while the engine loads and applies multi-row changes', async () => {
    await withClient(quiet('tgt'), (client) => client.query('SELECT pg_stat_statements_reset()'));
    await replicate(); // initial load
    await withClient(server.adminUrl('src'), (client) =>
      client.query(`UPDATE public.items SET price = price + 1, doc = '{"g": 2}';
                    DELETE FROM public.items WHERE id > 40`),
    );
    await replicate();
    const { rows } = await withClient(quiet('tgt'), (client) =>
      client.query<{ operation: string; n: number }>(
        `SELECT operation, count(*)::int AS n FROM audit.audit_log GROUP BY 1 ORDER BY 1`,
      ),
    );
    expect(rows).toEqual([
      { operation: 'DELETE', n: 10 },
      { operation: 'SNAPSHOT', n: 50 },
      { operation: 'UPDATE', n: 50 },
    ]);
    // Every statement on the target: the engine's and those inside the capture triggers.
    expect(await jitStatements('true')).toEqual([]);
  });

  it('does not JIT inside the capture triggers, whatever the applying session has set', async () => {
    await withClient(quiet('tgt'), (client) => client.query('SELECT pg_stat_statements_reset()'));
    await withClient(server.adminUrl('tgt'), async (client) => {
      // A writer session with JIT on (as DMS's would be): its own UPDATE may compile,
      // the audit inserts the trigger runs may not.
      await client.query(
        `UPDATE audit.items_staging SET price = price * 2, ar_h_operation = 'UPDATE',
           ar_h_change_seq = '2026112210000000000000000000000' || lpad(id::text, 4, '0'),
           ar_h_transaction_id = '1', ar_h_indicator = 'U'
         WHERE id <= 40`,
      );
    });
    expect(await jitStatements(`query LIKE 'UPDATE audit.items_staging%'`)).not.toEqual([]);
    expect(await jitStatements(`query NOT LIKE 'UPDATE audit.items_staging%'`)).toEqual([]);
  });
});

import pg from 'pg';
import { parseConfig } from '../../src/config';
import { createKysely } from '../../src/postgres/connect';
import { installSourceContext } from '../../src/source-context';
import { createTestDatabase, withClient } from '../support/databases';

// What the source context table guarantees, whatever enforces it: one row per
// transaction, carrying the writing transaction's own id, metadata a JSON object,
// no rewriting of a row by a later transaction; for the application's least-privileged
// role, in replica mode too, and after upgrading a table an earlier version created.

const CONFIG = parseConfig({
  tables: [{ table: 'items' }],
  sourceContext: { grantInsertTo: ['ctx_guard_app'] },
});
const TABLE = 'audit_context.transaction_context';

async function install(url: string): Promise<void> {
  const db = createKysely<unknown>(url, { max: 1 });
  await installSourceContext(db, CONFIG).finally(() => db.destroy());
}

/** Runs `statements` in one transaction; resolves to the error's SQLSTATE and message, or null. */
async function failure(
  client: pg.ClientBase,
  ...statements: string[]
): Promise<{ code: string; message: string } | null> {
  await client.query('BEGIN');
  try {
    for (const statement of statements) await client.query(statement);
    await client.query('COMMIT');
    return null;
  } catch (error) {
    await client.query('ROLLBACK');
    const { code, message } = error as { code: string; message: string };
    return { code, message };
  }
}

describe('source context table guard', () => {
  let url: string;

  beforeAll(async () => {
    url = await createTestDatabase('ctxguard');
    await withClient(url, (client) =>
      client.query(`DO $$ BEGIN CREATE ROLE ctx_guard_app LOGIN PASSWORD 'ctx-guard';
        EXCEPTION WHEN duplicate_object THEN NULL; END $$`),
    );
    await install(url);
  });

  it('refuses another transaction id, a non-object metadata and a second row, for the application role', async () => {
    const appUrl = new URL(url);
    appUrl.username = 'ctx_guard_app';
    appUrl.password = 'ctx-guard';
    const app = new pg.Client({ connectionString: appUrl.toString() });
    await app.connect();
    try {
      expect(
        await failure(app, `INSERT INTO ${TABLE} (actor, metadata) VALUES ('alice', '{"a":1}')`),
      ).toBeNull();
      expect(
        await failure(
          app,
          `INSERT INTO ${TABLE} (transaction_id, actor) VALUES (txid_current(), 'alice')`,
        ),
      ).toBeNull();
      const otherId = await failure(
        app,
        `INSERT INTO ${TABLE} (transaction_id, actor) VALUES (txid_current() - 1, 'mallory')`,
      );
      expect(otherId).toMatchObject({ code: '23514' });
      expect(otherId?.message).toMatch(/transaction_context_own_transaction/);
      const nullId = await failure(
        app,
        `INSERT INTO ${TABLE} (transaction_id, actor) VALUES (NULL, 'mallory')`,
      );
      expect(nullId).not.toBeNull();
      for (const metadata of [`'[1]'`, `'"text"'`, `'1'`, `'null'`]) {
        const refused = await failure(
          app,
          `INSERT INTO ${TABLE} (actor, metadata) VALUES ('alice', ${metadata})`,
        );
        expect(refused).toMatchObject({ code: '23514' });
        expect(refused?.message).toMatch(/transaction_context_metadata_object/);
      }
      expect(
        await failure(
          app,
          `INSERT INTO ${TABLE} (actor) VALUES ('alice')`,
          `INSERT INTO ${TABLE} (actor) VALUES ('bob')`,
        ),
      ).toMatchObject({ code: '23505' });
    } finally {
      await app.end();
    }
  });

  it('refuses a later transaction rewriting a row, even one that moves it to itself', async () => {
    await withClient(url, async (client) => {
      const { rows } = await client.query<{ id: string }>(
        `INSERT INTO ${TABLE} (actor, reason) VALUES ('alice', 'first') RETURNING transaction_id::text AS id`,
      );
      const id = rows[0]!.id;
      for (const set of [
        `reason = 'rewritten'`,
        `transaction_id = txid_current(), reason = 'moved'`,
      ]) {
        const refused = await failure(
          client,
          `UPDATE ${TABLE} SET ${set} WHERE transaction_id = ${id}`,
        );
        expect(refused).toMatchObject({ code: '23514' });
      }
      const kept = await client.query(`SELECT reason FROM ${TABLE} WHERE transaction_id = ${id}`);
      expect(kept.rows).toEqual([{ reason: 'first' }]);
      // Retention deletes old rows.
      expect(await failure(client, `DELETE FROM ${TABLE} WHERE transaction_id = ${id}`)).toBeNull();
    });
  });

  it('holds in replica mode (session_replication_role = replica)', async () => {
    await withClient(url, async (client) => {
      const refused = await failure(
        client,
        `SET LOCAL session_replication_role = replica`,
        `INSERT INTO ${TABLE} (transaction_id, actor) VALUES (1, 'mallory')`,
      );
      expect(refused).toMatchObject({ code: '23514' });
    });
  });

  it('has no CHECK constraint, which PostgreSQL re-plans in every INSERT statement', async () => {
    // The guard is a row trigger whose plan stays cached per connection: in a callgrind
    // count the two CHECKs cost about 39,000 instructions per INSERT (stringToNode and
    // expression planning per statement) and the trigger about 17,000 (BENCHMARKS 1b).
    await withClient(url, async (client) => {
      const { rows } = await client.query(
        `SELECT conname FROM pg_constraint WHERE conrelid = '${TABLE}'::regclass AND contype = 'c'`,
      );
      expect(rows).toEqual([]);
    });
  });

  it('upgrades a table with the earlier CHECK constraints, keeping its rows', async () => {
    const oldUrl = await createTestDatabase('ctxguardold');
    await withClient(oldUrl, (client) =>
      client.query(`
        CREATE SCHEMA audit_context;
        CREATE TABLE ${TABLE} (
          transaction_id bigint PRIMARY KEY DEFAULT txid_current()
            CONSTRAINT transaction_context_own_transaction CHECK (transaction_id = txid_current()),
          actor text, on_behalf_of text, request_id text, client text, reason text,
          metadata jsonb CONSTRAINT transaction_context_metadata_object CHECK (jsonb_typeof(metadata) = 'object'),
          recorded_at timestamptz NOT NULL DEFAULT now()
        );
        INSERT INTO ${TABLE} (actor) VALUES ('before upgrade');`),
    );
    await install(oldUrl);
    await install(oldUrl);
    await withClient(oldUrl, async (client) => {
      const checks = await client.query(
        `SELECT conname FROM pg_constraint WHERE conrelid = '${TABLE}'::regclass AND contype = 'c'`,
      );
      expect(checks.rows).toEqual([]);
      const kept = await client.query(`SELECT actor FROM ${TABLE}`);
      expect(kept.rows).toEqual([{ actor: 'before upgrade' }]);
      expect(
        await failure(client, `INSERT INTO ${TABLE} (transaction_id, actor) VALUES (1, 'x')`),
      ).toMatchObject({ code: '23514' });
      expect(
        await failure(client, `INSERT INTO ${TABLE} (actor, metadata) VALUES ('x', '[]')`),
      ).toMatchObject({ code: '23514' });
    });
  });
});

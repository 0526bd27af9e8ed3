import { sql } from 'kysely';
import { parseConfig } from '../../src/config';
import { createDataApiKysely } from '../../src/data-api';
import { createKysely } from '../../src/postgres/connect';
import { auditContext, installSourceContext } from '../../src/source-context';
import { emulateDataApi } from '../support/data-api-emulator';
import { createTestDatabase, withClient } from '../support/databases';

// withAuditContext sends BEGIN and the context row in one simple query on node-postgres;
// a driver that cannot (the RDS Data API: one statement per call, transactions through
// its API) gets kysely's own transaction and the context insert as its first statement.

const CLUSTER_ARN = 'arn:aws:rds:eu-west-1:123456789012:cluster:app-source';
const SECRET_ARN = 'arn:aws:secretsmanager:eu-west-1:123456789012:secret:app-AbCdEf';
const config = parseConfig({ tables: [{ table: 'items' }], sourceContext: {} });

interface SourceDb {
  items: { id: number; name: string };
}

describe('withAuditContext on other kysely drivers', () => {
  let sourceUrl: string;
  let emulator: ReturnType<typeof emulateDataApi> | undefined;

  beforeAll(async () => {
    sourceUrl = await createTestDatabase('ctx_drivers');
    await withClient(sourceUrl, (client) =>
      client.query('CREATE TABLE items (id int PRIMARY KEY, name text)'),
    );
    const db = createKysely<unknown>(sourceUrl, { max: 1 });
    await installSourceContext(db, config).finally(() => db.destroy());
    emulator = emulateDataApi({ resourceArn: CLUSTER_ARN, secrets: { [SECRET_ARN]: sourceUrl } });
  });
  afterAll(() => emulator?.close());

  const { withAuditContext } = auditContext(config);
  const contextOfItem = async (id: number) =>
    withClient(sourceUrl, async (client) => {
      const { rows } = await client.query(
        `SELECT c.actor, c.reason FROM items i JOIN audit_context.transaction_context c
           ON c.transaction_id % 4294967296 = i.xmin::text::bigint WHERE i.id = $1`,
        [id],
      );
      return rows;
    });

  it('uses one round trip on node-postgres (the insert is prepared on the connection)', async () => {
    const db = createKysely<SourceDb>(sourceUrl, { max: 1 });
    try {
      const prepared = await withAuditContext(
        db,
        { actor: 'pg', reason: 'one trip' },
        async (trx) => {
          await trx.insertInto('items').values({ id: 1, name: 'pg' }).execute();
          const { rows } = await sql<{ n: number }>`
          SELECT count(*)::int AS n FROM pg_prepared_statements
          WHERE name LIKE 'audit_trail_begin_context_%'`.execute(trx);
          return rows[0]!.n;
        },
      );
      expect(prepared).toBe(1);
    } finally {
      await db.destroy();
    }
    expect(await contextOfItem(1)).toEqual([{ actor: 'pg', reason: 'one trip' }]);
  });

  it('falls back to kysely’s transaction through the RDS Data API, and rolls back with it', async () => {
    const db = createDataApiKysely<SourceDb>({
      resourceArn: CLUSTER_ARN,
      secretArn: SECRET_ARN,
      database: new URL(sourceUrl).pathname.slice(1),
    });
    try {
      await withAuditContext(db, { actor: 'data-api', reason: 'fallback' }, (trx) =>
        trx.insertInto('items').values({ id: 2, name: 'data api' }).execute(),
      );
      await expect(
        withAuditContext(db, { actor: 'data-api', reason: 'rolled back' }, async (trx) => {
          await trx.insertInto('items').values({ id: 3, name: 'never' }).execute();
          throw new Error('application failure');
        }),
      ).rejects.toThrow('application failure');
    } finally {
      await db.destroy();
    }
    expect(await contextOfItem(2)).toEqual([{ actor: 'data-api', reason: 'fallback' }]);
    const rolledBack = await withClient(sourceUrl, (client) =>
      client.query(
        `SELECT count(*)::int AS n FROM audit_context.transaction_context WHERE reason = 'rolled back'`,
      ),
    );
    expect(rolledBack.rows).toEqual([{ n: 0 }]);
  });
});

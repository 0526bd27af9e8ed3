import { AuditTrailError } from '../../src/errors';
import type { StoredPosition } from '../../src/engine/position-store';
import { withClient } from '../support/databases';
import { openApplierSession } from './applier-session';
import { createPipeline, type Pipeline } from './helpers';
import { errorOf } from '../support/settled';

const CONFIG = { tables: [{ schema: 'public', table: 'items' }] };

/**
 * When the applier's target commit fails (its position write refused, or any error at
 * commit), the error leaves the applier with the target transaction rolled back: the
 * staging rows it held are gone before anyone can act on the error. Relying on the run
 * ending and the connection closing is not enough: a caller that catches the error and
 * goes on with the connection must not be able to commit them.
 */
describe('engine: a refused target commit is rolled back before its error leaves the applier', () => {
  let p: Pipeline;

  beforeAll(async () => {
    p = await createPipeline(
      `CREATE TABLE items (id int PRIMARY KEY, name text); INSERT INTO items VALUES (1, 'a');`,
      CONFIG,
    );
    await p.replicate();
  });
  afterAll(async () => p?.dispose());

  it('leaves no transaction open: a caller that catches POSITION_BACKWARDS and commits commits nothing', async () => {
    const session = await openApplierSession(p, 'refused-rollback-test');
    const { store, target } = session;
    try {
      const start = await store.read(target);
      expect(start?.initialLoadDone).toBe(true);
      // Another writer moved the change sequence on: this applier's write is refused.
      const ahead: StoredPosition = { ...start!, lastSeqPrefix: '2999010100000000' };
      await withClient(p.targetUrl, (client) => store.write(client, ahead));
      await p.source(`INSERT INTO items VALUES (2, 'x')`);

      const applier = await session.applier(start!);
      const error = await errorOf(applier.apply());
      expect(error).toBeInstanceOf(AuditTrailError);
      expect((error as AuditTrailError).code).toBe('POSITION_BACKWARDS');

      // The caller goes on with the same connection, and commits.
      await target.query('COMMIT');
      expect(await stagingKeys(p)).toEqual([1]);
      const { rows: audit } = await p.target(`SELECT count(*)::int AS n FROM audit.audit_log`);
      expect(audit[0].n).toBe(1);
      expect(await withClient(p.targetUrl, (client) => store.read(client))).toEqual(ahead);
    } finally {
      await session.close();
    }
  });
});

async function stagingKeys(p: Pipeline): Promise<number[]> {
  const { rows } = await p.target(`SELECT id FROM audit.items_staging ORDER BY id`);
  return rows.map((row: { id: number }) => row.id);
}

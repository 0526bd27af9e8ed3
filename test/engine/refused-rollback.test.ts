import pg from 'pg';
import { AuditTrailError } from '../../src/errors';
import { silentLogger } from '../../src/engine';
import { PositionStore, type StoredPosition } from '../../src/engine/position-store';
import { ReplicationConnection } from '../../src/engine/replication-connection';
import { SchemaChangePositions } from '../../src/engine/schema-change-positions';
import { currentInsertLsn } from '../../src/engine/source-position';
import { readStagingTables } from '../../src/engine/staging-tables';
import { StreamApplier, type ApplierHost } from '../../src/engine/stream-applier';
import {
  connectText,
  ENGINE_TARGET_CONNECTION,
  ENGINE_TARGET_SETTINGS,
} from '../../src/engine/text-client';
import { noProgress } from '../../src/support/progress';
import { withClient } from '../support/databases';
import { createPipeline, type Pipeline } from './helpers';
import { errorOf } from '../support/settled';

const CONFIG = { tables: [{ schema: 'public', table: 'items' }] };

/** An engine that does nothing but let the applier run. */
const host: ApplierHost = {
  logger: silentLogger,
  progress: noProgress,
  stopping: false,
  applied: () => undefined,
  lagMeasured: () => undefined,
  totals: () => ({ lagSeconds: 0, transactions: 0, changes: 0 }),
};

/**
 * When the applier's target commit fails (its position write refused, or any error at
 * commit), the error leaves the applier with the target transaction rolled back: the
 * staging rows it held are gone before anyone can act on the error. Relying on the run
 * ending and the connection closing is not enough: a caller that catches the error and
 * goes on with the connection must not be able to commit them.
 */
describe('engine: a refused target commit is rolled back before its error leaves the applier', () => {
  let p: Pipeline;
  let store: PositionStore;

  beforeAll(async () => {
    p = await createPipeline(
      `CREATE TABLE items (id int PRIMARY KEY, name text); INSERT INTO items VALUES (1, 'a');`,
      CONFIG,
    );
    store = new PositionStore('audit', p.slotName);
    await p.replicate();
  });
  afterAll(async () => p?.dispose());

  const stored = () => withClient(p.targetUrl, async (client) => (await store.read(client))!);

  it('leaves no transaction open: a caller that catches POSITION_BACKWARDS and commits commits nothing', async () => {
    const source = new pg.Client(p.sourceUrl);
    await source.connect();
    const target = await connectText(
      p.targetUrl,
      'refused-rollback-test',
      'target',
      ENGINE_TARGET_SETTINGS,
      ENGINE_TARGET_CONNECTION,
    );
    const repl = new ReplicationConnection(p.sourceUrl);
    try {
      const start = await store.read(target);
      expect(start?.initialLoadDone).toBe(true);
      // Another writer moved the change sequence on: this applier's write is refused.
      const ahead: StoredPosition = { ...start!, lastSeqPrefix: '2999010100000000' };
      await withClient(p.targetUrl, (client) => store.write(client, ahead));
      await p.source(`INSERT INTO items VALUES (2, 'x')`);

      const tables = await readStagingTables(target, p.config);
      const applier = new StreamApplier({
        host,
        repl,
        source,
        publication: p.slotName,
        target,
        tables,
        positions: store,
        schemaChanges: await SchemaChangePositions.read(target, 'audit', p.slotName, tables),
        start: start!,
        lagIntervalMs: 0,
        stopLsn: await currentInsertLsn(source),
        knownLeaves: new Map(),
      });
      await repl.connect();
      repl.startReplication(p.slotName, p.slotName, start!.lastEndLsn);
      const error = await errorOf(applier.apply());
      expect(error).toBeInstanceOf(AuditTrailError);
      expect((error as AuditTrailError).code).toBe('POSITION_BACKWARDS');

      // The caller goes on with the same connection, and commits.
      await target.query('COMMIT');
      expect(await stagingKeys(p)).toEqual([1]);
      const { rows: audit } = await p.target(`SELECT count(*)::int AS n FROM audit.audit_log`);
      expect(audit[0].n).toBe(1);
      expect(await stored()).toEqual(ahead);
    } finally {
      await repl.close().catch(() => undefined);
      await Promise.all([source.end(), target.end()]);
    }
  });
});

async function stagingKeys(p: Pipeline): Promise<number[]> {
  const { rows } = await p.target(`SELECT id FROM audit.items_staging ORDER BY id`);
  return rows.map((row: { id: number }) => row.id);
}

import pg from 'pg';
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
import type { Pipeline } from './helpers';

/** An engine that does nothing but let the applier run. */
const host: ApplierHost = {
  logger: silentLogger,
  progress: noProgress,
  stopping: false,
  applied: () => undefined,
  lagMeasured: () => undefined,
  totals: () => ({ lagSeconds: 0, transactions: 0, changes: 0 }),
};

/** One applier run by hand, with the connections it needs (the engine's own are not used). */
export interface ApplierSession {
  readonly source: pg.Client;
  readonly target: pg.Client;
  readonly repl: ReplicationConnection;
  readonly store: PositionStore;
  /**
   * Starts streaming from the stored position `start` (as read at the session's start,
   * unless given) and returns an until-idle applier over it.
   */
  applier(start?: StoredPosition): Promise<StreamApplier>;
  close(): Promise<void>;
}

/** Opens the connections an applier uses, on `p`'s source and target. */
export async function openApplierSession(p: Pipeline, name: string): Promise<ApplierSession> {
  const source = new pg.Client(p.sourceUrl);
  await source.connect();
  const target = await connectText(
    p.targetUrl,
    name,
    'target',
    ENGINE_TARGET_SETTINGS,
    ENGINE_TARGET_CONNECTION,
  );
  const repl = new ReplicationConnection(p.sourceUrl);
  const store = new PositionStore('audit', p.slotName);
  return {
    source,
    target,
    repl,
    store,
    async applier(start) {
      const from = start ?? (await store.read(target))!;
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
        start: from,
        lagIntervalMs: 0,
        stopLsn: await currentInsertLsn(source),
        knownLeaves: new Map(),
      });
      await repl.connect();
      repl.startReplication(p.slotName, p.slotName, from.lastEndLsn);
      return applier;
    },
    async close() {
      await repl.close().catch(() => undefined);
      await Promise.all([source.end(), target.end()]);
    },
  };
}

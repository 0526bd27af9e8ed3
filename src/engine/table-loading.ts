import type pg from 'pg';
import { copyInitialLoad, InitialLoadStopped } from './initial-load';
import {
  AttachedPartitionError,
  AttachedPartitionFilter,
  LOADS_ATTACHED_PARTITIONS_FROM,
  leafAsLoadTable,
  listLeaves,
  listLeavesInSnapshot,
  relationKey,
  type LeafPartition,
} from './partition-loading';
import { recordLegacyLoads } from './legacy-loads';
import { formatLsn, type Lsn } from './lsn';
import type { EngineLogger } from './logger';
import type { LoadedLeaf, PositionStore, StoredPosition } from './position-store';
import { SchemaChangeError, SchemaChangeStop } from './relation-binding';
import { ReplicationConnection } from './replication-connection';
import { dropSlotIfExists } from './source-setup';
import { currentInsertLsn, readSourceClock } from './source-position';
import type { PartitionChangeEntry } from './partition-changes';
import type { SchemaChangePositions } from './schema-change-positions';
import type { StagingTable } from './staging-tables';
import { StagingWriter } from './staging-writer';
import { StreamApplier, type ApplierHost } from './stream-applier';
import { connectText } from './text-client';
import { serverVersionNum } from '../postgres/server-version';
import { stagingTableName } from '../staging/header-columns';
import { noProgress, type ProgressReporter } from '../support/progress';
import { finishReload } from '../staging/reload-baseline';

/** What loading needs from the engine. */
export interface LoadContext {
  /** Runs the catch-up apply of {@link loadAddedTables}; its logger and stop flag serve the load too. */
  readonly host: ApplierHost;
  readonly sourceUrl: string;
  readonly slot: string;
  readonly publication: string;
  readonly batchSize?: number;
  readonly lagIntervalMs: number;
}

/** Where streaming continues after a load, and the rows copied per table. */
export interface LoadResult {
  readonly position: StoredPosition;
  readonly initialLoadRows: Record<string, number>;
}

/** The connections and tables a load works on. */
export interface LoadTargets {
  readonly source: pg.Client;
  readonly target: pg.Client;
  /** The engine's replication connection, connected, not streaming. */
  readonly repl: ReplicationConnection;
  readonly tables: readonly StagingTable[];
  readonly positions: PositionStore;
  readonly schemaChanges: SchemaChangePositions;
  /**
   * Leaf partitions of the audited tables when the engine started (`schema\0name`), with
   * their attachment (`LeafPartition.attachment`).
   */
  readonly knownLeaves: ReadonlyMap<string, string>;
}

/**
 * The first run's load: creates the slot, copies every table from the snapshot it
 * exports, and stores the slot's consistent point as the position, all in one target
 * transaction (a crash mid-load leaves nothing behind, and the restart reloads).
 * @throws {@link InitialLoadStopped} when asked to stop during the copy.
 */
export async function loadFromNewSlot(context: LoadContext, on: LoadTargets): Promise<LoadResult> {
  const { source, target, repl, tables, positions } = on;
  const logger = context.host.logger;
  // A slot left by a load that never committed is useless: its snapshot is gone.
  await dropSlotIfExists(source, context.slot);
  // Taken before the slot exists, so it precedes the commit of every change the slot
  // will stream: history orders full-load rows before the changes made during the copy.
  const snapshotTime = await readSourceClock(source);
  const slot = await repl.createSlot(context.slot);
  logger.log('info', 'replication slot created', {
    slot: context.slot,
    consistentPoint: formatLsn(slot.consistentPoint),
  });
  const loader = await connectText(context.sourceUrl, 'audit-trail-initial-load', 'source');
  try {
    const writer = new StagingWriter(target, { batchSize: context.batchSize });
    await target.query('BEGIN');
    const initialLoadRows = await copyInitialLoad({
      source: loader,
      snapshotName: slot.snapshotName,
      snapshotTime,
      writer,
      tables,
      logger,
      progress: context.host.progress,
      shouldStop: () => context.host.stopping,
    });
    const position: StoredPosition = {
      initialLoadDone: true,
      lastCommitLsn: 0n,
      lastEndLsn: slot.consistentPoint,
      lastSeqPrefix: '',
      lastSeqCounter: 0n,
    };
    await positions.write(target, position);
    await positions.markLoaded(
      target,
      tables.map((table) => table.source),
    );
    await positions.markLeavesLoaded(
      target,
      await listLeavesInSnapshot(loader, slot.snapshotName, tables),
    );
    await target.query('COMMIT');
    logger.log('info', 'initial load committed', { rows: initialLoadRows });
    return { position, initialLoadRows };
  } catch (error) {
    await target.query('ROLLBACK').catch(() => undefined);
    throw error;
  } finally {
    await loader.end().catch(() => undefined);
  }
}

/**
 * Loads tables added to the config after the first run, consistently with the stream
 * (as DMS reloads a table added to a task): a temporary slot exports a snapshot at
 * LSN C; the stream is applied up to C without the added tables (their changes before
 * C are in the snapshot); the tables are copied from the snapshot; streaming then
 * continues from C with them. No gap, no overlap. A crash before the copy commits
 * leaves them unloaded, and the next start does it again. The engine's replication
 * connection is used for the catch-up and closed: stream again on a new one.
 *
 * Leaf partitions attached to an audited table since it was loaded (`leaves`) are
 * loaded the same way: their rows, including the ones they held when attached (no
 * change carries those), are copied from the snapshot into the partitioned table's
 * staging table, and the catch-up leaves out their changes
 * ({@link AttachedPartitionFilter}).
 * @returns the position after the load, or null when asked to stop.
 */
export async function loadAddedTables(
  context: LoadContext,
  on: LoadTargets,
  added: readonly StagingTable[],
  position: StoredPosition,
  leaves: readonly LeafPartition[] = [],
): Promise<LoadResult | null> {
  const { source, target, repl, tables, positions } = on;
  const { host } = context;
  host.logger.log('info', 'loading tables added to the config', {
    tables: added.map((table) => `${table.source.schema}.${table.source.table}`),
    ...(leaves.length === 0
      ? {}
      : { attachedPartitions: leaves.map((leaf) => `${leaf.schema}.${leaf.name}`) }),
  });
  const attached =
    leaves.length === 0 ? null : await AttachedPartitionFilter.prepare(source, leaves);
  const snapshotTime = await readSourceClock(source);
  const exporter = new ReplicationConnection(context.sourceUrl, 'audit-trail-added-tables');
  await exporter.connect();
  try {
    const snapshot = await exporter.createSlot(`${context.slot}_add`, true);
    repl.startReplication(context.slot, context.publication, position.lastEndLsn);
    const catchUp = walProgress(
      host.progress,
      'catch-up before loading added tables (WAL bytes)',
      position.lastEndLsn,
      snapshot.consistentPoint,
    );
    try {
      await new StreamApplier({
        host,
        repl,
        source,
        publication: context.publication,
        target,
        tables,
        positions,
        schemaChanges: on.schemaChanges,
        start: position,
        batchSize: context.batchSize,
        lagIntervalMs: context.lagIntervalMs,
        halt: { commitLsn: snapshot.consistentPoint, message: null },
        skip: new Set(added.map((table) => table.qualifiedName)),
        attached,
        knownLeaves: on.knownLeaves,
        appliedTo: (lsn) => catchUp.reached(lsn),
      }).apply();
      if (!host.stopping) catchUp.reached(snapshot.consistentPoint);
    } catch (error) {
      if (error instanceof SchemaChangeStop) throw new SchemaChangeError(error.message);
      throw error;
    } finally {
      catchUp.done();
    }
    await repl.close();
    if (host.stopping) return null;
    return await copyAddedTables(
      context,
      on,
      { added, leaves, attached },
      snapshot,
      snapshotTime,
      position,
    );
  } finally {
    await exporter.close();
  }
}

/**
 * A task over the WAL from `from` to `to`, in bytes: `reached(lsn)` advances it to
 * `lsn` (never past `to`, never back).
 */
function walProgress(
  progress: ProgressReporter,
  label: string,
  from: Lsn,
  to: Lsn,
): { reached(lsn: Lsn): void; done(): void } {
  // Nothing to catch up on: no task (a bar of 0 of 0 bytes says nothing).
  const task = (to > from ? progress : noProgress).start(label, Number(to - from), 'bytes');
  let at = from;
  return {
    reached: (lsn) => {
      const next = lsn < to ? lsn : to;
      if (next <= at) return;
      task.advance(Number(next - at));
      at = next;
    },
    done: () => task.done(),
  };
}

/** The copy step of {@link loadAddedTables}, from the exporter's snapshot. */
async function copyAddedTables(
  context: LoadContext,
  on: LoadTargets,
  {
    added,
    leaves,
    attached,
  }: {
    added: readonly StagingTable[];
    leaves: readonly LeafPartition[];
    attached: AttachedPartitionFilter | null;
  },
  { snapshotName, consistentPoint }: { snapshotName: string; consistentPoint: Lsn },
  snapshotTime: string,
  position: StoredPosition,
): Promise<LoadResult | null> {
  const { target, positions } = on;
  const logger = context.host.logger;
  const loader = await connectText(context.sourceUrl, 'audit-trail-initial-load');
  try {
    const writer = new StagingWriter(target, { batchSize: context.batchSize });
    await target.query('BEGIN');
    const initialLoadRows = await copyInitialLoad({
      source: loader,
      snapshotName,
      snapshotTime,
      writer,
      tables: [...added, ...leaves.map(leafAsLoadTable)],
      // A table added back finds the staging table it kept emptied by migrate (#17 item
      // 19, src/migrate/readded-tables.ts), and the catch-up above applied none of its
      // changes: its load, like a new table's, conflicts with no row.
      logger,
      progress: context.host.progress,
      shouldStop: () => context.host.stopping,
      ...(attached ? { copies: (table, row) => attached.copies(table, row) } : {}),
    });
    // A table added back ends its reload here (a DELETE for each prior key not copied),
    // committed with the load; for any other table there is nothing to end.
    for (const table of added)
      await finishReload(target, positions.auditSchema, table.source, snapshotTime);
    await positions.markLoaded(
      target,
      added.map((table) => table.source),
    );
    await positions.markLeavesLoaded(target, [
      ...leaves,
      ...(await listLeavesInSnapshot(loader, snapshotName, added)),
    ]);
    // The snapshot shows them attached: each attach committed before its point.
    await positions.logPartitionChanges(target, leaves.map(attachEntry), consistentPoint);
    await target.query('COMMIT');
    logger.log('info', 'added tables loaded', { rows: initialLoadRows });
    return { position: (await positions.read(target)) ?? position, initialLoadRows };
  } catch (error) {
    await target.query('ROLLBACK').catch(() => undefined);
    if (error instanceof InitialLoadStopped) return null;
    throw heldKeyConflict(error, leaves) ?? error;
  } finally {
    await loader.end().catch(() => undefined);
  }
}

/**
 * Configured tables this slot has not loaded yet (added to the config after the first
 * run, or added back, which forgets the table's record). A slot loaded before loads were
 * recorded has no record at all: which of its tables were loaded is inferred once, from
 * evidence no staging writer can make, and recorded ({@link recordLegacyLoads}, which
 * refuses what it cannot tell). A slot an engine that records loads wrote is never
 * inferred: with no record left (every table added back), every table is loaded.
 */
export async function tablesToLoad(
  target: pg.Client,
  tables: readonly StagingTable[],
  positions: PositionStore,
): Promise<StagingTable[]> {
  const key = (table: StagingTable) => `${table.source.schema}\u0000${table.source.table}`;
  const loaded = await positions.loadedTables(target);
  if (loaded.size === 0 && !(await positions.recordsLoads(target)))
    for (const table of await recordLegacyLoads(target, tables, positions)) loaded.add(key(table));
  return tables.filter((table) => !loaded.has(key(table)));
}

/**
 * Leaf partitions attached to an audited table since this slot loaded it: the ones the
 * source has now that the slot has not loaded. A slot from before partitions were
 * recorded takes the ones it finds as loaded (verify reports rows attached before).
 *
 * Before that, what left or came back ({@link refuseReattached}, {@link noteDetached}):
 * a loaded leaf now attached under another attachment (detached and attached again)
 * stops the engine; a loaded leaf no longer attached is said once, as a warning.
 * @param added tables about to be loaded whole (their leaves come with them)
 */
export async function attachedLeaves(
  on: LoadTargets,
  added: readonly StagingTable[],
  logger: EngineLogger,
): Promise<LeafPartition[]> {
  const rest = on.tables.filter((table) => !added.includes(table));
  const current = await listLeaves(on.source, rest);
  const loaded = await on.positions.loadedLeaves(on.target);
  await refuseReattached(on, current, loaded.leaves);
  await noteDetached(on, logger, rest, current, loaded.leaves);
  const isLoaded = (leaf: LeafPartition) => loaded.leaves.has(relationKey(leaf.schema, leaf.name));
  if (!loaded.recorded || !(await announcesLeaves(on.source))) {
    // Taken as loaded (verify reports the rows they held); still attached since this slot
    // last looked, unless the slot recorded no leaves before (then they are its baseline).
    if (loaded.recorded) {
      const found = current.filter((leaf) => !isLoaded(leaf)).map(attachEntry);
      await on.positions.logPartitionChanges(on.target, found, await currentInsertLsn(on.source));
    }
    await on.positions.markLeavesLoaded(on.target, current);
    return [];
  }
  // Leaves recorded before attachments were get the one found now.
  await on.positions.markLeavesLoaded(on.target, current.filter(isLoaded));
  return current.filter((leaf) => !isLoaded(leaf));
}

/**
 * A leaf partition this slot loaded that is attached now under another attachment was
 * detached and attached again (or dropped and created anew) since: while it was out,
 * its changes were no change of the audited table, so no stream has them, and its rows
 * in staging may be stale or gone. The kit cannot tell from the stream what became of
 * each, so it stops instead of guessing; reloading the partitioned table records them
 * exactly (a SNAPSHOT for each row that changed or came back, a DELETE for each gone).
 * A leaf recorded before attachments were is taken as the same attachment.
 * @throws {@link AttachedPartitionError}
 */
async function refuseReattached(
  on: LoadTargets,
  current: readonly LeafPartition[],
  loaded: ReadonlyMap<string, LoadedLeaf>,
): Promise<void> {
  const again = current.filter((leaf) => {
    const recorded = loaded.get(relationKey(leaf.schema, leaf.name))?.attachment;
    return recorded != null && recorded !== leaf.attachment;
  });
  if (again.length === 0) return;
  // Both are schema changes the engine saw, refused or not (logged once each).
  const seenBy = await currentInsertLsn(on.source);
  const detached = again.map((leaf) => loaded.get(relationKey(leaf.schema, leaf.name))!);
  await on.positions.logPartitionChanges(on.target, detached.map(detachEntry), seenBy);
  await on.positions.logPartitionChanges(on.target, again.map(attachEntry), seenBy);
  const named = again.map(
    (leaf) => `${leaf.schema}.${leaf.name} of ${leaf.root.source.schema}.${leaf.root.source.table}`,
  );
  throw new AttachedPartitionError(
    `partition ${named.join(', partition ')} was detached and attached again since the ` +
      'engine loaded it: the changes made to it while it was detached reached no pipeline ' +
      '(they were no change of the audited table), so which of its rows changed or went is ' +
      'not in any stream; nothing was applied',
    'reload the partitioned table over its kept staging table: remove it from the config, ' +
      'run audit-trail migrate, add it back and run migrate again; the engine then records a ' +
      'SNAPSHOT for each row that changed or came back and a DELETE for each row gone',
  );
}

/**
 * Says once (a warning, and `detached_at` in the slot's record) which loaded leaf
 * partitions are no longer attached to their audited table. Their rows did not change:
 * they left the table without a change in the WAL, and a row trigger on the
 * partitioned table sees nothing either, so history keeps each row's last version, and
 * `verify` lists the rows as `missing-in-source` with the partition they left with.
 */
async function noteDetached(
  on: LoadTargets,
  logger: EngineLogger,
  tables: readonly StagingTable[],
  current: readonly LeafPartition[],
  loaded: ReadonlyMap<string, LoadedLeaf>,
): Promise<void> {
  const attached = new Set(current.map((leaf) => relationKey(leaf.schema, leaf.name)));
  const roots = new Set(
    tables.map((table) => relationKey(table.source.schema, table.source.table)),
  );
  const gone = [...loaded.entries()]
    .filter(([key, leaf]) => !leaf.detached && roots.has(leaf.root) && !attached.has(key))
    .map(([, leaf]) => leaf);
  if (gone.length === 0) return;
  for (const root of new Set(gone.map((leaf) => leaf.root))) {
    logger.log(
      'warn',
      'partition detached from an audited table: its rows left the table without a change, ' +
        'so history keeps their last versions and verify lists them as missing-in-source ' +
        'with the partition; reload the table to record them as gone',
      {
        table: root.replace('\u0000', '.'),
        partitions: gone
          .filter((leaf) => leaf.root === root)
          .map((leaf) => `${leaf.schema}.${leaf.name}`)
          .sort(),
      },
    );
  }
  // Read after the catalog showed them detached: each detach committed before it.
  await on.positions.logPartitionChanges(
    on.target,
    gone.map(detachEntry),
    await currentInsertLsn(on.source),
  );
  await on.positions.markLeavesDetached(on.target, gone);
}

/** The schema-change log's entry for a loaded leaf found detached (with its recorded bound). */
function detachEntry(leaf: LoadedLeaf): PartitionChangeEntry {
  const [schema, table] = leaf.root.split('\u0000') as [string, string];
  return { ...leaf, root: { schema, table }, change: 'DETACH' };
}

/** The schema-change log's entry for a leaf found attached. */
function attachEntry(leaf: LeafPartition): PartitionChangeEntry {
  return { ...leaf, root: leaf.root.source, change: 'ATTACH' };
}

/**
 * Whether the source's pgoutput tells the held rows of an attached partition apart the
 * way {@link AttachedPartitionFilter} reads the stream. Seen on PostgreSQL 15 and 17; on
 * 13 and 14 (CI's version matrix) the load recorded a row inserted after the attach as a
 * SNAPSHOT and missed a partition attached while streaming. There the engine does what
 * it did before it loaded partitions: it takes the leaves it finds as loaded, and verify
 * reports the rows a partition held when it was attached (missing-in-audit, with the
 * remedy), never a guessed version.
 */
async function announcesLeaves(source: LoadTargets['source']): Promise<boolean> {
  return (await serverVersionNum(source)) >= LOADS_ATTACHED_PARTITIONS_FROM;
}

/**
 * A row an attached partition held whose key staging already has (a row of that key was
 * deleted from another partition before the attach: staging keeps it, flagged): the
 * copy cannot record it as a new row, and nothing of the load is kept. DMS's reload
 * meets the same conflict.
 */
function heldKeyConflict(
  error: unknown,
  leaves: readonly LeafPartition[],
): AttachedPartitionError | null {
  const failure = error as { code?: string; table?: string; detail?: string };
  if (failure.code !== '23505') return null;
  const mine = leaves.filter((leaf) => stagingTableName(leaf.root.source.table) === failure.table);
  if (mine.length === 0) return null;
  const key = /^Key (.*) already exists\.$/.exec(failure.detail ?? '')?.[1] ?? 'of a row it held';
  return new AttachedPartitionError(
    `cannot load partition ${mine.map((leaf) => `${leaf.schema}.${leaf.name}`).join(', ')}: ` +
      `staging already holds the key ${key} (a row deleted before the attach, kept flagged ` +
      'deleted), and the partition held a row with that key when it was attached; nothing of ' +
      'the load was kept',
  );
}

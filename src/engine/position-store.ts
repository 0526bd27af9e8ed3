import type pg from 'pg';
import { query } from '../postgres/callback-query';
import { quoteQualified } from '../postgres/identifiers';
import { AuditTrailError } from '../errors';
import { formatChangeSeq } from './change-sequence';
import { formatLsn, parseLsn, type Lsn } from './lsn';
import { logPartitionChanges, type PartitionChangeEntry } from './partition-changes';
import { LOADED_PARTITION_TABLE, relationKey, type LeafPartition } from './partition-loading';

/** A leaf partition as this slot recorded it (see {@link PositionStore.loadedLeaves}). */
export interface LoadedLeaf {
  /** Its partitioned table, `schema\0name`. */
  readonly root: string;
  readonly schema: string;
  readonly name: string;
  /** The attachment loaded (`LeafPartition.attachment`); null if recorded before those were. */
  readonly attachment: string | null;
  /** The bound of the attachment loaded; null if recorded before bounds were (migration 0020). */
  readonly bound: string | null;
  /** Whether the engine found it detached already. */
  readonly detached: boolean;
}
import { SCHEMA_CHANGE_POSITION_TABLE } from './schema-change-positions';

/** Name of the engine's bookkeeping table in the audit schema. */
export const POSITION_TABLE = 'cdc_engine_position';

/** Tables the engine has initially loaded, per slot. */
export const LOADED_TABLE_TABLE = 'cdc_engine_loaded_table';

/**
 * The kit migration that created {@link LOADED_TABLE_TABLE}: an engine from before it
 * recorded no loads (see `legacy-loads.ts`).
 */
export const LOADED_TABLE_MIGRATION = '0007-cdc-engine-loaded-table';

/** An audited source table. */
export interface LoadedTableName {
  readonly schema: string;
  readonly table: string;
}

/** What the engine has durably applied for one slot, read from the target. */
export interface StoredPosition {
  /** True once the initial load committed (in the same transaction as its rows). */
  readonly initialLoadDone: boolean;
  /** Commit LSN of the last applied source transaction; transactions at or before it are skipped. */
  readonly lastCommitLsn: Lsn;
  /** End LSN of that commit: where streaming resumes. */
  readonly lastEndLsn: Lsn;
  /** Change-sequence state, so sequences continue monotonically after a restart. */
  readonly lastSeqPrefix: string;
  readonly lastSeqCounter: bigint;
}

/**
 * The engine's position on the target. It is written in the same target transaction
 * as the staging rows it describes, which is what makes apply exactly-once: after a
 * crash, either both the rows and the position are there, or neither is.
 */
export class PositionStore {
  private readonly table: string;
  private readonly loadedTable: string;
  private readonly schemaChangePositionTable: string;
  private readonly loadedPartitionTable: string;

  constructor(
    /** The audit schema the engine's bookkeeping lives in. */
    readonly auditSchema: string,
    /** The replication slot whose bookkeeping this is. */
    readonly slot: string,
  ) {
    this.table = quoteQualified(auditSchema, POSITION_TABLE);
    this.loadedTable = quoteQualified(auditSchema, LOADED_TABLE_TABLE);
    this.schemaChangePositionTable = quoteQualified(auditSchema, SCHEMA_CHANGE_POSITION_TABLE);
    this.loadedPartitionTable = quoteQualified(auditSchema, LOADED_PARTITION_TABLE);
  }

  /**
   * Leaf partitions (`schema\0name`) this slot has loaded, with the attachment it loaded
   * (null if recorded before attachments were) and whether it found the leaf detached,
   * and whether it records them at all (false for a slot loaded before partitions were
   * recorded).
   */
  async loadedLeaves(target: pg.ClientBase): Promise<{
    recorded: boolean;
    leaves: Map<string, LoadedLeaf>;
  }> {
    // The engine's target connection reads every value as text.
    const { rows: position } = await target.query<{ recorded: string }>(
      `SELECT leaves_recorded::text AS recorded FROM ${this.table} WHERE slot_name = $1`,
      [this.slot],
    );
    const { rows } = await target.query<{
      source_schema: string;
      source_table: string;
      partition_schema: string;
      partition_name: string;
      attachment: string | null;
      bound: string | null;
      detached: string;
    }>(
      `SELECT source_schema, source_table, partition_schema, partition_name, attachment, bound,
              (detached_at IS NOT NULL)::text AS detached
         FROM ${this.loadedPartitionTable} WHERE slot_name = $1`,
      [this.slot],
    );
    return {
      recorded: position[0]?.recorded !== 'false',
      leaves: new Map(
        rows.map((row) => [
          relationKey(row.partition_schema, row.partition_name),
          {
            root: relationKey(row.source_schema, row.source_table),
            schema: row.partition_schema,
            name: row.partition_name,
            attachment: row.attachment,
            bound: row.bound,
            detached: row.detached === 'true',
          },
        ]),
      ),
    };
  }

  /**
   * Records leaf partitions as loaded, with their attachment and bound (and that this
   * slot records them). A leaf recorded before attachments (or bounds) were gets the one
   * found now.
   */
  async markLeavesLoaded(target: pg.ClientBase, leaves: readonly LeafPartition[]): Promise<void> {
    await target.query(`UPDATE ${this.table} SET leaves_recorded = true WHERE slot_name = $1`, [
      this.slot,
    ]);
    if (leaves.length === 0) return;
    await target.query(
      `INSERT INTO ${this.loadedPartitionTable} AS loaded
         (slot_name, source_schema, source_table, partition_schema, partition_name, attachment, bound)
       SELECT $1, s, t, ps, pn, a, b
         FROM unnest($2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[])
                AS u(s, t, ps, pn, a, b)
       ON CONFLICT (slot_name, partition_schema, partition_name) DO UPDATE
          SET attachment = excluded.attachment, bound = excluded.bound
        WHERE loaded.attachment IS NULL
           OR (loaded.attachment = excluded.attachment AND loaded.bound IS NULL)`,
      [
        this.slot,
        leaves.map((leaf) => leaf.root.source.schema),
        leaves.map((leaf) => leaf.root.source.table),
        leaves.map((leaf) => leaf.schema),
        leaves.map((leaf) => leaf.name),
        leaves.map((leaf) => leaf.attachment),
        leaves.map((leaf) => leaf.bound),
      ],
    );
  }

  /** {@link logPartitionChanges} for this slot. */
  async logPartitionChanges(
    target: pg.ClientBase,
    entries: readonly PartitionChangeEntry[],
    seenBy: Lsn,
  ): Promise<void> {
    await logPartitionChanges(target, this.auditSchema, this.slot, entries, seenBy);
  }

  /** Records that the engine found these loaded leaves detached (it says so once). */
  async markLeavesDetached(target: pg.ClientBase, leaves: readonly LoadedLeaf[]): Promise<void> {
    if (leaves.length === 0) return;
    await target.query(
      `UPDATE ${this.loadedPartitionTable} SET detached_at = now()
        WHERE slot_name = $1 AND detached_at IS NULL
          AND (partition_schema, partition_name) IN
              (SELECT * FROM unnest($2::text[], $3::text[]))`,
      [this.slot, leaves.map((leaf) => leaf.schema), leaves.map((leaf) => leaf.name)],
    );
  }

  /** `schema.table` (NUL-separated) of every table this slot has loaded. */
  async loadedTables(target: pg.ClientBase): Promise<Set<string>> {
    const { rows } = await target.query<{ source_schema: string; source_table: string }>(
      `SELECT source_schema, source_table FROM ${this.loadedTable} WHERE slot_name = $1`,
      [this.slot],
    );
    return new Set(rows.map((row) => `${row.source_schema}\u0000${row.source_table}`));
  }

  /**
   * Whether this slot's row was written by an engine that records its loads: migration
   * 0013 marked the rows that existed then `leaves_recorded = false`, and such an engine
   * sets it (after recording its tables) at its first start; a row it creates has it
   * already. Only the engine role and the owner write the row.
   */
  async recordsLoads(target: pg.ClientBase): Promise<boolean> {
    const { rows } = await target.query<{ recorded: string }>(
      `SELECT leaves_recorded::text AS recorded FROM ${this.table} WHERE slot_name = $1`,
      [this.slot],
    );
    return rows[0]?.recorded === 'true';
  }

  /** Records tables as loaded, inside the caller's open target transaction. */
  async markLoaded(target: pg.ClientBase, tables: readonly LoadedTableName[]): Promise<void> {
    if (tables.length === 0) return;
    await target.query(
      `INSERT INTO ${this.loadedTable} (slot_name, source_schema, source_table)
       SELECT $1, s, t FROM unnest($2::text[], $3::text[]) AS u(s, t)
       ON CONFLICT DO NOTHING`,
      [this.slot, tables.map((t) => t.schema), tables.map((t) => t.table)],
    );
  }

  /**
   * Checks that migrate installed the engine's bookkeeping tables. The engine never
   * creates them itself: their one definition is the kit's migrations, and the engine's
   * writer login may not create tables in the audit schema.
   */
  async requireInstalled(target: pg.ClientBase): Promise<void> {
    // Tables, and the columns later migrations added that the engine writes.
    const { rows } = await target.query<{ missing: string | null }>(
      `SELECT string_agg(name, ', ') AS missing FROM (
         SELECT name FROM unnest($1::text[]) AS name WHERE to_regclass(name) IS NULL
         UNION ALL
         SELECT $2 || '.' || column_name
           FROM unnest($3::text[]) AS column_name
          WHERE to_regclass($2) IS NOT NULL
            AND NOT EXISTS (SELECT FROM pg_catalog.pg_attribute
                             WHERE attrelid = to_regclass($2) AND attname = column_name
                               AND NOT attisdropped)) AS m`,
      [
        [this.table, this.loadedTable, this.schemaChangePositionTable, this.loadedPartitionTable],
        this.table,
        ['acked_lsn'],
      ],
    );
    const missing = rows[0]?.missing;
    if (missing)
      throw new AuditTrailError(`the target has no ${missing}`, {
        code: 'TARGET_NOT_MIGRATED',
        kind: 'usage',
        hint: 'run "audit-trail migrate" first',
      });
  }

  /** The stored position, or `null` when this slot never completed an initial load. */
  async read(target: pg.ClientBase): Promise<StoredPosition | null> {
    const { rows } = await target.query<Record<string, string | boolean>>(
      `SELECT initial_load_done, last_commit_lsn::text AS last_commit_lsn, last_end_lsn::text AS last_end_lsn,
              last_seq_prefix, last_seq_counter::text AS last_seq_counter
         FROM ${this.table} WHERE slot_name = $1`,
      [this.slot],
    );
    const row = rows[0];
    if (!row) return null;
    return {
      initialLoadDone: row.initial_load_done === true || row.initial_load_done === 't',
      lastCommitLsn: parseLsn(String(row.last_commit_lsn)),
      lastEndLsn: parseLsn(String(row.last_end_lsn)),
      lastSeqPrefix: String(row.last_seq_prefix),
      lastSeqCounter: BigInt(String(row.last_seq_counter)),
    };
  }

  /**
   * The furthest position this slot was told (acknowledged) that the target records:
   * the last applied commit's end, or further when an idle engine acknowledged more
   * ({@link recordAcknowledged}). `null` when the row was written by an engine that did
   * not record acknowledgements (before migration 0025), or there is no row.
   */
  async acknowledged(target: pg.ClientBase): Promise<Lsn | null> {
    const { rows } = await target.query<{ lsn: string | null }>(
      `SELECT GREATEST(acked_lsn, last_end_lsn)::text AS lsn
         FROM ${this.table} WHERE slot_name = $1 AND acked_lsn IS NOT NULL`,
      [this.slot],
    );
    const lsn = rows[0]?.lsn;
    return lsn ? parseLsn(lsn) : null;
  }

  /**
   * Records that the slot is told `lsn` (outside a transaction: before telling it), so
   * the slot is never confirmed past what the target records. Never moves back.
   * @returns false when there is no loaded position to record it beside: do not tell
   *   the slot then.
   */
  async recordAcknowledged(target: pg.ClientBase, lsn: Lsn): Promise<boolean> {
    const { rowCount } = await query(
      target,
      `UPDATE ${this.table} SET acked_lsn = GREATEST(acked_lsn, $2::text::pg_lsn)
        WHERE slot_name = $1 AND initial_load_done`,
      [this.slot, formatLsn(lsn)],
    );
    return rowCount === 1;
  }

  /**
   * Writes the position inside the caller's open target transaction. The stored position
   * only moves forward: a write whose commit LSN or change-sequence state is below the
   * stored one, or that marks a loaded position not loaded, is refused by the statement
   * itself (compared with the row as committed, so also against another writer), and
   * nothing is written. A slot whose initial load is not done (a load from a new slot)
   * may start again from anywhere. A new row (and a load from a new slot) records its end
   * as acknowledged ({@link acknowledged}).
   * The statement's WHERE refuses everything the row trigger
   * `cdc_engine_position_forward_only` (triggers/engine-position.sql) refuses of what it
   * sets (its slot is the conflict's; a loaded row keeps its acknowledged position), so
   * the engine's write is refused here, as POSITION_BACKWARDS, never by a raw trigger
   * error: keep the two rules alike.
   * @throws PositionBackwardsError when refused; the caller's transaction, with the
   *   staging rows the position describes, must then be rolled back.
   */
  async write(target: pg.ClientBase, position: StoredPosition): Promise<void> {
    const { rowCount } = await query(
      target,
      `INSERT INTO ${this.table} AS p (slot_name, initial_load_done, last_commit_lsn, last_end_lsn,
                                       last_seq_prefix, last_seq_counter, acked_lsn, updated_at)
       VALUES ($1, $2, $3::text::pg_lsn, $4::text::pg_lsn, $5, $6::text::numeric, $4::text::pg_lsn, now())
       ON CONFLICT (slot_name) DO UPDATE SET
         initial_load_done = EXCLUDED.initial_load_done, last_commit_lsn = EXCLUDED.last_commit_lsn,
         last_end_lsn = EXCLUDED.last_end_lsn, last_seq_prefix = EXCLUDED.last_seq_prefix,
         last_seq_counter = EXCLUDED.last_seq_counter,
         acked_lsn = CASE WHEN p.initial_load_done THEN p.acked_lsn ELSE EXCLUDED.acked_lsn END,
         updated_at = now()
       WHERE NOT p.initial_load_done
          OR (EXCLUDED.initial_load_done AND EXCLUDED.last_commit_lsn >= p.last_commit_lsn
              AND (EXCLUDED.last_seq_prefix COLLATE "C", EXCLUDED.last_seq_counter)
                  >= (p.last_seq_prefix COLLATE "C", p.last_seq_counter))`,
      [
        this.slot,
        position.initialLoadDone,
        formatLsn(position.lastCommitLsn),
        formatLsn(position.lastEndLsn),
        position.lastSeqPrefix,
        position.lastSeqCounter.toString(),
      ],
    );
    if (rowCount === 1) return;
    // Only on a refusal: the stored position, for the error.
    const stored = await this.read(target);
    throw new PositionBackwardsError(this.slot, this.auditSchema, stored, position);
  }
}

/**
 * A write of the engine's position would have moved it backwards: below the commit LSN
 * or the change sequence the target holds for the slot, or a loaded position back to not
 * loaded (the attempted position then reads `..., not loaded`). Moved back, the engine would
 * apply again what the target has (as new versions, when the change sequence did not
 * move back with it) or issue change sequences at or below recorded ones. With the slot
 * lock, only a bug or a second engine with the lock bypassed can get here.
 */
export class PositionBackwardsError extends AuditTrailError {
  override readonly name = 'PositionBackwardsError';
  constructor(
    readonly slot: string,
    auditSchema: string,
    /** What the target holds (null: no row, which no write is refused against). */
    readonly stored: StoredPosition | null,
    readonly attempted: StoredPosition,
  ) {
    super(
      `refused to move the position of replication slot "${slot}" backwards: the target ` +
        `holds ${stored ? positionText(stored) : 'no position'}; this write has ${positionText(attempted)}`,
      {
        code: 'POSITION_BACKWARDS',
        kind: 'finding',
        hint:
          'nothing of this target transaction was committed. Another writer moved the ' +
          `position on (a second engine with this slot and audit schema, or an edit of ` +
          `${auditSchema}.${POSITION_TABLE}): stop every engine with this slot, run ` +
          '`audit-trail verify`, then start one engine; it resumes from the stored position',
      },
    );
  }
}

function positionText(position: StoredPosition): string {
  return (
    `commit ${formatLsn(position.lastCommitLsn)}, change sequence ` +
    formatChangeSeq(position.lastSeqPrefix, position.lastSeqCounter) +
    (position.initialLoadDone ? '' : ', not loaded')
  );
}

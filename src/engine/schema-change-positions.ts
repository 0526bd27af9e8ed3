import type pg from 'pg';
import { quoteQualified } from '../postgres/identifiers';
import { formatLsn, type Lsn } from './lsn';
import type { RelationBinding } from './relation-binding';

/** The table (in the audit schema) of the source positions of logged column changes. */
export const SCHEMA_CHANGE_POSITION_TABLE = 'schema_change_position';

/** A logged column change whose source position the engine has not seen yet. */
interface UnplacedChange {
  readonly id: string;
  readonly change: 'ADD' | 'DROP' | 'RENAME' | 'RETYPE';
  /** Name before the change (DROP, RENAME). */
  readonly beforeName: string | null;
  /** Name and type after it (ADD, RENAME, RETYPE). */
  readonly afterName: string | null;
  readonly afterType: string | null;
}

/** The source transaction a change was applied in. */
export interface SourceCommit {
  readonly commitLsn: Lsn;
  /** Commit time in UTC, `YYYY-MM-DD HH:MM:SS.ffffff` (`formatUtcTimestamp`). */
  readonly commitTimestamp: string;
}

/**
 * Dates the column changes `migrate` logged (`schema_change`) in the source's history.
 * DDL is not in the pgoutput stream; what is, is each change's relation: the columns the
 * table had when the change was written. A logged column change therefore committed
 * in, or before, the first source transaction whose change of the table carries its new
 * shape, and after every change in the old one. The engine applies that transaction
 * and records its commit LSN and commit time for the change, in the same target
 * transaction, so the position is stored exactly once (a rolled-back group records
 * nothing, and the retry records it again).
 *
 * This holds whichever comes first: the engine stops at the first change of a shape
 * staging lacks and resumes there after `migrate`; or `migrate` runs first and the
 * engine applies the older changes (old shape: not the position) before the first one
 * in the new shape. A table's logged changes are placed in log order, each at the first
 * change whose relation shows it (an added column present, a dropped one absent, a
 * renamed one under its new name only, a retyped one with its new type); a change
 * never seen (a column dropped and added back under the same name and type with no
 * write in between) stays unplaced, and so do the ones logged after it: the log then
 * keeps migrate's upper bound for them rather than a guess.
 */
export class SchemaChangePositions {
  /** Unplaced changes per source table (`schema\0table`), in log order. */
  private readonly unplaced: Map<string, UnplacedChange[]>;
  /** How many of each table's unplaced changes the open target transaction placed. */
  private tentative = new Map<string, number>();
  private readonly table: string;

  private constructor(
    auditSchema: string,
    private readonly slot: string,
    unplaced: Map<string, UnplacedChange[]>,
  ) {
    this.table = quoteQualified(auditSchema, SCHEMA_CHANGE_POSITION_TABLE);
    this.unplaced = unplaced;
  }

  /** Reads the logged changes of `tables` that have no position yet. */
  static async read(
    target: pg.ClientBase,
    auditSchema: string,
    slot: string,
    tables: readonly { readonly source: { readonly schema: string; readonly table: string } }[],
  ): Promise<SchemaChangePositions> {
    const { rows } = await target.query<{
      id: string;
      source_schema: string;
      source_table: string;
      change: UnplacedChange['change'];
      before_name: string | null;
      after_name: string | null;
      after_type: string | null;
    }>(
      `SELECT c.id::text AS id, c.source_schema, c.source_table, c.change,
              c.old_definition ->> 'name' AS before_name, c.new_definition ->> 'name' AS after_name,
              c.new_definition ->> 'type' AS after_type
         FROM ${quoteQualified(auditSchema, 'schema_change')} AS c
        WHERE (c.source_schema, c.source_table) IN
              (SELECT * FROM unnest($1::text[], $2::text[]))
          AND NOT EXISTS (SELECT FROM ${quoteQualified(auditSchema, SCHEMA_CHANGE_POSITION_TABLE)} AS p
                           WHERE p.schema_change_id = c.id)
        ORDER BY c.id`,
      [tables.map((t) => t.source.schema), tables.map((t) => t.source.table)],
    );
    const unplaced = new Map<string, UnplacedChange[]>();
    for (const row of rows) {
      const key = `${row.source_schema}\u0000${row.source_table}`;
      const list = unplaced.get(key) ?? [];
      list.push({
        id: row.id,
        change: row.change,
        beforeName: row.before_name,
        afterName: row.after_name,
        afterType: row.after_type,
      });
      unplaced.set(key, list);
    }
    return new SchemaChangePositions(auditSchema, slot, unplaced);
  }

  /**
   * Places the table's next logged changes that a change of `binding` shows, at
   * `commit`; call inside the open target transaction that applies the change.
   */
  async place(
    target: pg.ClientBase,
    binding: RelationBinding,
    commit: SourceCommit,
  ): Promise<void> {
    const key = `${binding.table.source.schema}\u0000${binding.table.source.table}`;
    const list = this.unplaced.get(key);
    if (list === undefined) return;
    const from = this.tentative.get(key) ?? 0;
    let to = from;
    while (to < list.length && shows(binding, list[to]!)) to++;
    if (to === from) return;
    await target.query(
      `INSERT INTO ${this.table} (schema_change_id, slot_name, commit_lsn, commit_timestamp)
       SELECT id, $2, $3::text::pg_lsn, $4::timestamp AT TIME ZONE 'UTC' FROM unnest($1::bigint[]) AS id`,
      [
        list.slice(from, to).map((change) => change.id),
        this.slot,
        formatLsn(commit.commitLsn),
        commit.commitTimestamp,
      ],
    );
    this.tentative.set(key, to);
  }

  /** The target transaction committed: what it placed is placed. */
  committed(): void {
    for (const [key, count] of this.tentative) {
      const rest = this.unplaced.get(key)!.slice(count);
      if (rest.length === 0) this.unplaced.delete(key);
      else this.unplaced.set(key, rest);
    }
    this.tentative = new Map();
  }

  /** The target transaction rolled back: nothing it placed is. */
  rolledBack(): void {
    this.tentative = new Map();
  }
}

/** Whether a change in the relation's shape is in the shape after `change`. */
function shows(binding: RelationBinding, change: UnplacedChange): boolean {
  const type = (name: string | null) => (name === null ? undefined : binding.columns.get(name));
  switch (change.change) {
    case 'ADD':
      return type(change.afterName) !== undefined;
    case 'DROP':
      return type(change.beforeName) === undefined;
    case 'RENAME':
      return type(change.afterName) !== undefined && type(change.beforeName) === undefined;
    case 'RETYPE':
      return type(change.afterName) === change.afterType;
  }
}

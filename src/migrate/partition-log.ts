/**
 * The schema-change log's partition entries on the AWS DMS path: DMS's stream says
 * nothing of an ATTACH or DETACH PARTITION (neither writes a row change), so `migrate`
 * compares each audited table's leaf partitions on the source with the ones it saw last
 * (`audited_partition_tree`) and logs what was attached or detached since in
 * `partition_change`, in the same shape as the local engine's entries
 * (src/engine/partition-changes.ts) and deduplicated with them: one event is logged
 * once, whoever sees it first.
 */
import { CompiledQuery, sql, type Transaction } from 'kysely';
import { partitionChangeInsert, type PartitionChangeEntry } from '../engine/partition-changes';
import { LEAVES_SQL, relationKey } from '../engine/partition-loading';
import type { QueryRunner } from './publishable';

/** migrate's record of each audited table's leaf partitions (migration 0022). */
export const AUDITED_PARTITION_TREE_TABLE = 'audited_partition_tree';

/** A leaf partition as migrate sees (and records) it. */
export interface SeenLeaf {
  readonly schema: string;
  readonly name: string;
  /** Which attachment: the leaf's oid and its `pg_inherits` row's xmin (`LeafPartition.attachment`). */
  readonly attachment: string;
  /** `FOR VALUES ...` or `DEFAULT`. */
  readonly bound: string;
}

/** An audited table, by name. */
interface Root {
  readonly schema: string;
  readonly table: string;
}

/**
 * Every leaf partition of each table on the source, keyed `schema\0table` (a table that
 * is not partitioned has none). Read before the source position the entries are
 * stamped with, so each change found committed at or before it.
 */
export async function readSourceLeaves(
  run: QueryRunner,
  tables: readonly Root[],
): Promise<Map<string, SeenLeaf[]>> {
  const rows = await run<{ root: number } & SeenLeaf>(LEAVES_SQL, [
    tables.map((table) => table.schema),
    tables.map((table) => table.table),
  ]);
  const leaves = new Map(
    tables.map((table) => [relationKey(table.schema, table.table), [] as SeenLeaf[]]),
  );
  for (const { root, schema, name, attachment, bound } of rows) {
    const table = tables[root]!;
    leaves.get(relationKey(table.schema, table.table))!.push({ schema, name, attachment, bound });
  }
  return leaves;
}

/**
 * What was attached to and detached from `root` between two looks at its leaves: a leaf
 * gone, or there under another attachment (detached and attached again), is a DETACH
 * with the bound it had; a leaf new, or under another attachment, an ATTACH with its
 * bound now. DETACHes first, as the engine logs them.
 */
export function partitionChangesBetween(
  root: Root,
  before: readonly SeenLeaf[],
  now: readonly SeenLeaf[],
): PartitionChangeEntry[] {
  const attachmentIn = (leaves: readonly SeenLeaf[]) =>
    new Map(leaves.map((leaf) => [relationKey(leaf.schema, leaf.name), leaf.attachment]));
  const [was, is] = [attachmentIn(before), attachmentIn(now)];
  const entry = (leaf: SeenLeaf, change: 'ATTACH' | 'DETACH'): PartitionChangeEntry => ({
    root,
    schema: leaf.schema,
    name: leaf.name,
    change,
    bound: leaf.bound,
    attachment: leaf.attachment,
  });
  return [
    ...before
      .filter((leaf) => is.get(relationKey(leaf.schema, leaf.name)) !== leaf.attachment)
      .map((leaf) => entry(leaf, 'DETACH')),
    ...now
      .filter((leaf) => was.get(relationKey(leaf.schema, leaf.name)) !== leaf.attachment)
      .map((leaf) => entry(leaf, 'ATTACH')),
  ];
}

/**
 * Logs the partitions attached to and detached from each table since migrate last
 * looked (a table it has not looked at before gets its baseline only), and records
 * what it found, in the migrate transaction (a rerun finds nothing new; an event the
 * engine logged already is not logged again).
 * @param sourceLsn the source position read after `leaves`: each change committed at or before it
 * @returns the entries logged
 */
export async function logPartitionChangesSince(
  trx: Transaction<unknown>,
  auditSchema: string,
  tables: readonly Root[],
  leaves: ReadonlyMap<string, readonly SeenLeaf[]>,
  sourceLsn: string | undefined,
): Promise<PartitionChangeEntry[]> {
  const record = sql.id(auditSchema, AUDITED_PARTITION_TREE_TABLE);
  const { rows } = await sql<Root & { leaves: SeenLeaf[] }>`
    SELECT source_schema AS schema, source_table AS table, leaves FROM ${record}`.execute(trx);
  const seen = new Map(rows.map((row) => [relationKey(row.schema, row.table), row.leaves]));
  const entries = tables.flatMap((table) => {
    const key = relationKey(table.schema, table.table);
    const before = seen.get(key);
    return before === undefined
      ? []
      : partitionChangesBetween(table, before, leaves.get(key) ?? []);
  });
  if (entries.length > 0) {
    const insert = partitionChangeInsert(auditSchema, entries, sourceLsn ?? null, {
      detectedBy: 'migrate',
    });
    await trx.executeQuery(CompiledQuery.raw(insert.text, [...insert.values]));
  }
  const now = tables.map((table) => ({
    schema: table.schema,
    table: table.table,
    leaves: leaves.get(relationKey(table.schema, table.table)) ?? [],
  }));
  await sql`
    INSERT INTO ${record} AS r (source_schema, source_table, leaves)
    SELECT n.schema, n.table, n.leaves
      FROM jsonb_to_recordset(${JSON.stringify(now)}::jsonb) AS n(schema text, "table" text, leaves jsonb)
    ON CONFLICT (source_schema, source_table) DO UPDATE
      SET leaves = excluded.leaves, seen_at = clock_timestamp()
      WHERE r.leaves <> excluded.leaves`.execute(trx);
  return entries;
}

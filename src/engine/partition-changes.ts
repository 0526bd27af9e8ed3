import { sql, type Kysely } from 'kysely';
import type pg from 'pg';
import { quoteQualified } from '../postgres/identifiers';
import { formatLsn, type Lsn } from './lsn';

/**
 * The schema-change log's partition entries, in the audit schema (migration 0020): a
 * leaf partition attached to or detached from an audited partitioned table.
 */
export const PARTITION_CHANGE_TABLE = 'partition_change';

/**
 * `schema_change`'s id sequence (quoted and qualified): `partition_change` takes its ids
 * from it too, so one id orders column and partition changes as they were seen.
 */
export async function schemaChangeIds(db: Kysely<unknown>, auditSchema: string): Promise<string> {
  const { rows } = await sql<{ sequence: string }>`SELECT pg_catalog.pg_get_serial_sequence(
    ${quoteQualified(auditSchema, 'schema_change')}, 'id') AS sequence`.execute(db);
  return rows[0]!.sequence;
}

/** A leaf partition attached or detached, as the engine logs it. */
export interface PartitionChangeEntry {
  /** The audited partitioned table. */
  readonly root: { readonly schema: string; readonly table: string };
  readonly schema: string;
  readonly name: string;
  readonly change: 'ATTACH' | 'DETACH';
  /** `FOR VALUES ...` or `DEFAULT` (`pg_get_expr` of `relpartbound`); null when not known. */
  readonly bound: string | null;
  /** The attachment attached or detached (`LeafPartition.attachment`); null when not known. */
  readonly attachment: string | null;
}

/** Who saw partition changes: the engine of a slot, or `migrate` (src/migrate/partition-log.ts). */
export type PartitionChangeWitness =
  { readonly detectedBy: 'engine'; readonly slot: string } | { readonly detectedBy: 'migrate' };

/**
 * The statement that logs `entries` in the schema-change log, for any client: each
 * committed at or before `seenBy` (a source WAL position, `X/Y`); an event already logged
 * (by another slot, by migrate, or seen again) is not logged twice.
 */
export function partitionChangeInsert(
  auditSchema: string,
  entries: readonly PartitionChangeEntry[],
  seenBy: string | null,
  witness: PartitionChangeWitness,
): { readonly text: string; readonly values: readonly unknown[] } {
  return {
    text: `INSERT INTO ${quoteQualified(auditSchema, PARTITION_CHANGE_TABLE)}
       (source_schema, source_table, partition_schema, partition_name, change, bound,
        attachment, source_lsn, detected_by, slot_name)
     SELECT s, t, ps, pn, c, b, a, $9::text::pg_lsn, $10::text, $8::text
       FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[])
              WITH ORDINALITY AS e(s, t, ps, pn, c, b, a, ord)
      ORDER BY ord
     ON CONFLICT DO NOTHING`,
    values: [
      entries.map((entry) => entry.root.schema),
      entries.map((entry) => entry.root.table),
      entries.map((entry) => entry.schema),
      entries.map((entry) => entry.name),
      entries.map((entry) => entry.change),
      entries.map((entry) => entry.bound),
      entries.map((entry) => entry.attachment),
      witness.detectedBy === 'engine' ? witness.slot : null,
      seenBy,
      witness.detectedBy,
    ],
  };
}

/**
 * Logs partitions attached or detached, seen by the engine of `slot`, inside the caller's
 * target transaction (with the load or the record that made the engine see them, so a
 * rolled-back load logs nothing). `seenBy` is a source WAL position read after the
 * catalog showed the change: it committed at or before it. An event already logged (by
 * another slot, by migrate, or seen again) is not logged twice.
 */
export async function logPartitionChanges(
  target: pg.ClientBase,
  auditSchema: string,
  slot: string,
  entries: readonly PartitionChangeEntry[],
  seenBy: Lsn,
): Promise<void> {
  if (entries.length === 0) return;
  const insert = partitionChangeInsert(auditSchema, entries, formatLsn(seenBy), {
    detectedBy: 'engine',
    slot,
  });
  await target.query(insert.text, [...insert.values]);
}

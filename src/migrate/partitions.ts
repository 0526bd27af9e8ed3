/**
 * Partitioned tables under AWS DMS: DMS captures a partition's changes under the
 * partition's own name (its test_decoding stream reports the leaf partition, never the
 * partitioned table), so the DMS mapping must select every leaf partition and rename it
 * to the partitioned table's staging table. CDK synthesis cannot read the source
 * catalog: the config lists the partitions (`tables[].partitions`), and this check,
 * run by `migrate` and `doctor`, compares that list with the catalog so a partition the
 * mapping misses is refused by name instead of silently never captured.
 */
import type { AuditedTableConfig } from '../config';
import { LOADS_ATTACHED_PARTITIONS_FROM } from '../engine/partition-loading';
import type { QueryRunner } from './publishable';
import { SERVER_VERSION_NUM_SQL } from '../postgres/server-version';

interface RelationRow {
  relkind: string;
}

interface PartitionRow {
  schema: string;
  name: string;
  is_leaf: boolean;
}

const RELATION_SQL = `
  SELECT c.relkind::text AS relkind FROM pg_catalog.pg_class c
    JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
   WHERE n.nspname = $1 AND c.relname = $2 AND c.relkind IN ('r', 'p')`;

/** Every partition below the table, at any level, with whether it is a leaf. */
const PARTITIONS_SQL = `
  SELECT n.nspname AS schema, c.relname AS name, t.isleaf AS is_leaf
    FROM pg_catalog.pg_partition_tree(pg_catalog.to_regclass(pg_catalog.format('%I.%I', $1::text, $2::text))) t
    JOIN pg_catalog.pg_class c ON c.oid OPERATOR(pg_catalog.=) t.relid
    JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
   WHERE t.relid OPERATOR(pg_catalog.<>) pg_catalog.to_regclass(pg_catalog.format('%I.%I', $1::text, $2::text))
   ORDER BY c.relname`;

const REDEPLOY =
  'then redeploy the DMS task mapping (cdk deploy, or audit-trail mappings for a task you manage)';

/**
 * Why the configured `partitions` of each table do not match the source catalog; empty
 * when every partitioned table lists exactly its leaf partitions and no other table
 * lists any. Missing tables are the callers' own check.
 *
 * @example
 * await partitionListProblems(run, [{ schema: 'public', table: 'measures', partitions: ['measures_eu'], ... }]);
 * // ['public.measures is partitioned and tables[].partitions misses: leaf partition(s) measures_us not listed. ...']
 */
export async function partitionListProblems(
  run: QueryRunner,
  tables: readonly Pick<AuditedTableConfig, 'schema' | 'table' | 'partitions'>[],
): Promise<string[]> {
  const problems: string[] = [];
  for (const table of tables) {
    const label = `${table.schema}.${table.table}`;
    const listedPartitions = table.partitions ?? [];
    const [relation] = await run<RelationRow>(RELATION_SQL, [table.schema, table.table]);
    if (relation === undefined) continue;
    if (relation.relkind !== 'p') {
      if (listedPartitions.length > 0) {
        problems.push(
          `${label} is not a partitioned table but tables[].partitions lists ${listedPartitions.join(', ')}: ` +
            'remove partitions from its entry',
        );
      }
      continue;
    }
    const partitions = await run<PartitionRow>(PARTITIONS_SQL, [table.schema, table.table]);
    const elsewhere = partitions.filter((p) => p.is_leaf && p.schema !== table.schema);
    if (elsewhere.length > 0) {
      problems.push(
        `${label} has leaf partition(s) in another schema (${elsewhere.map((p) => `${p.schema}.${p.name}`).join(', ')}): ` +
          `the DMS mapping selects partitions in ${table.schema} only; move them ` +
          `(ALTER TABLE ... SET SCHEMA ${table.schema})`,
      );
    }
    const leaves = partitions
      .filter((p) => p.is_leaf && p.schema === table.schema)
      .map((p) => p.name);
    const listed = new Set(listedPartitions);
    const missing = leaves.filter((name) => !listed.has(name));
    if (missing.length > 0) {
      problems.push(
        `${label} is partitioned and tables[].partitions ${listedPartitions.length === 0 ? 'is not set' : 'misses'}: ` +
          `leaf partition(s) ${missing.join(', ')} not listed. AWS DMS captures each partition's ` +
          "changes under the partition's own name, so the mapping must select every leaf partition " +
          `or their changes never reach the audit log; add ${missing.join(', ')} to partitions, ${REDEPLOY}. ` +
          'Rows a partition already held when it was attached, or that were written to it before the ' +
          'mapping selected it, are no change and are never captured: audit-trail verify lists them ' +
          '(missing-in-audit, with the partition), and audit-trail task reload SCHEMA.PARTITION copies them',
      );
    }
    const leafSet = new Set(leaves);
    const notLeaves = listedPartitions.filter((name) => !leafSet.has(name));
    if (notLeaves.length > 0) {
      const intermediate = new Set(partitions.filter((p) => !p.is_leaf).map((p) => p.name));
      const described = notLeaves.map((name) =>
        intermediate.has(name) ? `${name} (itself partitioned: list its leaves)` : name,
      );
      problems.push(
        `${label}: tables[].partitions names ${described.join(', ')}, which ${notLeaves.length === 1 ? 'is not a leaf partition' : 'are not leaf partitions'} ` +
          `of ${label} (DMS would capture ${notLeaves.length === 1 ? 'that table' : 'those tables'} into its history, ` +
          'or load rows twice); list only its leaf partitions, ' +
          REDEPLOY,
      );
    }
  }
  return problems;
}

/**
 * What to know before attaching a table with rows as a partition, on a source where the
 * local engine cannot load those rows (PostgreSQL 13 and 14, see
 * `LOADS_ATTACHED_PARTITIONS_FROM`): one warning per partitioned table; none on 15 and
 * later. No pipeline sees such rows as changes (the WAL has none for an ATTACH), so
 * they are reported by `verify`, never guessed; a reload records them. `migrate` logs
 * these and `doctor` shows them as a warning.
 *
 * @example
 * await attachedRowsWarnings(run, [{ schema: 'public', table: 'measures' }]);
 * // on PostgreSQL 14: ['public.measures is partitioned and the source is PostgreSQL 14: ...']
 */
export async function attachedRowsWarnings(
  run: QueryRunner,
  tables: readonly Pick<AuditedTableConfig, 'schema' | 'table'>[],
): Promise<string[]> {
  const [server] = await run<{ version: number }>(SERVER_VERSION_NUM_SQL, []);
  const version = Number(server?.version);
  if (version >= LOADS_ATTACHED_PARTITIONS_FROM) return [];
  const warnings: string[] = [];
  for (const table of tables) {
    const [relation] = await run<RelationRow>(RELATION_SQL, [table.schema, table.table]);
    if (relation?.relkind !== 'p') continue;
    const label = `${table.schema}.${table.table}`;
    warnings.push(
      `${label} is partitioned and the source is PostgreSQL ${Math.floor(version / 10000)}: ` +
        'the rows a table holds when it is attached as a partition (ATTACH PARTITION) are no ' +
        "change in the WAL, and this version's pgoutput does not let the local engine load them " +
        '(it does from PostgreSQL 15 on; AWS DMS never does). Create partitions empty (CREATE ' +
        'TABLE ... PARTITION OF). After attaching a table with rows, audit-trail verify lists ' +
        'them as missing-in-audit with the partition; to record them as SNAPSHOT versions ' +
        `with the local engine, remove ${label} from the config, run audit-trail migrate, add it ` +
        'back and run migrate again (the engine reloads it at its next start; its history ' +
        'continues); with DMS, audit-trail task reload SCHEMA.PARTITION',
    );
  }
  return warnings;
}

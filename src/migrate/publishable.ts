import { unsupportedKeyReasons } from './key-types';

/**
 * Which source tables logical replication can capture exactly, and which would break
 * the source: the one place `migrate` and the engine ask before creating anything.
 *
 * Once a table is in a publication that publishes UPDATE and DELETE, PostgreSQL makes
 * every UPDATE and DELETE on it fail unless it has a usable replica identity. A table
 * (or a partition of an audited partitioned table) without one is therefore refused
 * before the publication exists, never discovered by the application's errors.
 */

/** Runs a parameterised query and returns its rows (node-postgres or kysely). */
export type QueryRunner = <Row>(text: string, values: readonly unknown[]) => Promise<Row[]>;

/** An audited table name. */
export interface TableName {
  readonly schema: string;
  readonly table: string;
}

interface CoveredRelation {
  name: string;
  role: 'table' | 'partition';
  persistence: string;
  identity: string;
  pk_columns: string[] | null;
  pk_deferrable: boolean;
  identity_index: string | null;
  identity_columns: string[] | null;
}

/**
 * Every relation a publication `FOR TABLE <table>` covers (the table, and the leaf
 * partitions of a partitioned table), with what decides whether it can be published.
 */
const COVERED_RELATIONS_SQL = `
  WITH audited AS (
    SELECT c.oid FROM pg_catalog.pg_class c
      JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
     WHERE n.nspname = $1 AND c.relname = $2 AND c.relkind IN ('r', 'p')
  ), covered AS (
    SELECT a.oid, 'table' AS role FROM audited a
    UNION ALL
    SELECT t.relid, 'partition' FROM audited a, pg_catalog.pg_partition_tree(a.oid) t
     WHERE t.isleaf AND t.relid OPERATOR(pg_catalog.<>) a.oid
  )
  SELECT pg_catalog.format('%I.%I', n.nspname, c.relname) AS name, cv.role,
         c.relpersistence AS persistence, c.relreplident AS identity,
         (SELECT pg_catalog.array_agg(att.attname::text ORDER BY k.ord)
            FROM pg_catalog.pg_index i
            CROSS JOIN LATERAL pg_catalog.unnest(i.indkey::int2[]) WITH ORDINALITY AS k(attnum, ord)
            JOIN pg_catalog.pg_attribute att ON att.attrelid = i.indrelid AND att.attnum = k.attnum
           WHERE i.indrelid = c.oid AND i.indisprimary) AS pk_columns,
         EXISTS (SELECT 1 FROM pg_catalog.pg_index i
                  WHERE i.indrelid = c.oid AND i.indisprimary AND NOT i.indimmediate) AS pk_deferrable,
         (SELECT i.indexrelid::regclass::text FROM pg_catalog.pg_index i
           WHERE i.indrelid = c.oid AND i.indisreplident) AS identity_index,
         (SELECT pg_catalog.array_agg(att.attname::text ORDER BY k.ord)
            FROM pg_catalog.pg_index i
            CROSS JOIN LATERAL pg_catalog.unnest(i.indkey::int2[]) WITH ORDINALITY AS k(attnum, ord)
            JOIN pg_catalog.pg_attribute att ON att.attrelid = i.indrelid AND att.attnum = k.attnum
           WHERE i.indrelid = c.oid AND i.indisreplident) AS identity_columns
    FROM covered cv
    JOIN pg_catalog.pg_class c ON c.oid = cv.oid
    JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
   ORDER BY cv.role DESC, name`;

/** Inheritance children (not partitions) of the audited table. */
const INHERITANCE_CHILDREN_SQL = `
  SELECT pg_catalog.format('%I.%I', cn.nspname, child.relname) AS name
    FROM pg_catalog.pg_inherits i
    JOIN pg_catalog.pg_class parent ON parent.oid = i.inhparent
    JOIN pg_catalog.pg_namespace pn ON pn.oid = parent.relnamespace
    JOIN pg_catalog.pg_class child ON child.oid = i.inhrelid
    JOIN pg_catalog.pg_namespace cn ON cn.oid = child.relnamespace
   WHERE pn.nspname = $1 AND parent.relname = $2 AND parent.relkind = 'r'
   ORDER BY 1`;

/** Audited tables whose partition ancestors are audited too. */
const PARTITION_ANCESTORS_SQL = `
  SELECT n.nspname AS schema, c.relname AS table
    FROM pg_catalog.pg_partition_ancestors(pg_catalog.to_regclass(pg_catalog.format('%I.%I', $1::text, $2::text))) a(relid)
    JOIN pg_catalog.pg_class c ON c.oid OPERATOR(pg_catalog.=) a.relid
    JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
   WHERE a.relid OPERATOR(pg_catalog.<>) pg_catalog.to_regclass(pg_catalog.format('%I.%I', $1::text, $2::text))`;

/**
 * Why each audited table cannot be captured exactly, or could make the source's own
 * writes fail once published. Empty when every table is fine. Missing tables and
 * tables without a primary key are the callers' own checks; this adds:
 *
 * - UNLOGGED and TEMP tables: not written to WAL, so they cannot be published at all.
 * - Inheritance parents: a publication covers the children as separate tables, and
 *   reading the parent returns their rows too; history would mix them.
 * - Any covered relation with REPLICA IDENTITY NOTHING, a DEFERRABLE primary key under
 *   the default identity, or no key at all (a partition): its UPDATEs and DELETEs would
 *   fail on the source.
 * - A DEFERRABLE primary key under REPLICA IDENTITY FULL (or USING INDEX): a one-statement
 *   key swap is valid on the source but cannot be applied row by row to staging.
 * - REPLICA IDENTITY USING INDEX on columns other than the primary key: the source
 *   would send that index's columns as the old key, so a primary-key change could not
 *   be matched to its staging row.
 * - A partition audited together with its partitioned table: its changes are published
 *   once, under the root.
 * - A primary-key column of a type whose equal values can have different texts
 *   (interval, citext, a nondeterministic collation, arrays, ...): one row's history
 *   would be split (see src/migrate/key-types.ts).
 */
export async function unpublishableReasons(
  run: QueryRunner,
  tables: readonly TableName[],
): Promise<string[]> {
  const reasons: string[] = [];
  const audited = new Set(tables.map((table) => `${table.schema}\u0000${table.table}`));
  for (const table of tables) {
    const label = `${table.schema}.${table.table}`;
    const children = await run<{ name: string }>(INHERITANCE_CHILDREN_SQL, [
      table.schema,
      table.table,
    ]);
    if (children.length > 0) {
      reasons.push(
        `${label} has inheritance children (${children.map((c) => c.name).join(', ')}): logical ` +
          'replication publishes each child as a table of its own and reading the parent returns ' +
          "the children's rows, so its history would mix tables; audit each table of the " +
          'hierarchy that has no children of its own, or convert it to declarative partitioning',
      );
      continue;
    }
    const ancestors = await run<{ schema: string; table: string }>(PARTITION_ANCESTORS_SQL, [
      table.schema,
      table.table,
    ]);
    const auditedAncestor = ancestors.find((a) => audited.has(`${a.schema}\u0000${a.table}`));
    if (auditedAncestor) {
      reasons.push(
        `${label} is a partition of ${auditedAncestor.schema}.${auditedAncestor.table}, which is ` +
          'audited too: its changes are captured under the partitioned table; remove it from the config',
      );
      continue;
    }
    reasons.push(...(await unsupportedKeyReasons(run, [table])));
    const covered = await run<CoveredRelation>(COVERED_RELATIONS_SQL, [table.schema, table.table]);
    const rootKey = covered.find((relation) => relation.role === 'table')?.pk_columns ?? null;
    for (const relation of covered) {
      const reason = identityProblem(relation, rootKey);
      if (reason === null) continue;
      const subject = relation.role === 'table' ? label : `${label}: partition ${relation.name}`;
      reasons.push(`${subject} ${reason}`);
    }
  }
  return reasons;
}

/** What makes one published relation unusable, or null. */
function identityProblem(relation: CoveredRelation, rootKey: string[] | null): string | null {
  if (relation.persistence === 'u') {
    return (
      'is UNLOGGED: its changes are not written to WAL, so logical replication cannot ' +
      'publish it (ALTER TABLE ... SET LOGGED to audit it)'
    );
  }
  if (relation.persistence === 't') {
    return 'is a TEMP table: it cannot be published, and lives only as long as its session';
  }
  const failing = 'once published, UPDATE and DELETE on it would fail on the source';
  if (relation.pk_deferrable && (relation.identity === 'f' || relation.identity === 'i')) {
    return (
      'has a DEFERRABLE primary key: a statement that swaps keys (UPDATE ... SET id = 3 - id ' +
      'WHERE id IN (1, 2)) is valid on the source, which checks the key at the end of the ' +
      'statement, but arrives as one row change at a time, and the first would collide with ' +
      "the other row's key in staging: the engine (and DMS, which does not support deferred " +
      'constraints) would stop for good; make the key NOT DEFERRABLE'
    );
  }
  switch (relation.identity) {
    case 'n':
      return (
        `has REPLICA IDENTITY NOTHING: ${failing}; ` +
        'set REPLICA IDENTITY DEFAULT (with a primary key) or FULL'
      );
    case 'f':
      return null;
    case 'i': {
      const identity = relation.identity_columns ?? [];
      const key = rootKey ?? relation.pk_columns ?? [];
      if (identity.join('\u0000') === key.join('\u0000')) return null;
      return (
        `has REPLICA IDENTITY USING INDEX ${relation.identity_index} on (${identity.join(', ')}), ` +
        `not on the primary key (${key.join(', ')}): the source sends that index's columns as ` +
        'the old key, so a change of the primary key could not be matched to its history; ' +
        'set REPLICA IDENTITY DEFAULT or FULL'
      );
    }
    default:
      if (relation.pk_columns === null) {
        return `has no primary key and REPLICA IDENTITY DEFAULT: ${failing}; add a primary key or set REPLICA IDENTITY FULL`;
      }
      if (relation.pk_deferrable) {
        return (
          `has a DEFERRABLE primary key, which cannot serve as its replica identity: ${failing}; ` +
          'make the key NOT DEFERRABLE (REPLICA IDENTITY FULL would keep source writes working, ' +
          'but a statement that swaps keys would stop the pipeline)'
        );
      }
      return null;
  }
}

import type pg from 'pg';
import { AuditTrailError } from '../errors';
import { quoteIdent } from '../postgres/identifiers';
import { keyText, stagingKeyIdentity } from './key-identity';
import type { RelationBinding } from './relation-binding';
import type { StagingTable } from './staging-tables';

/** Leaf partitions the engine has loaded, per slot (in the audit schema). */
export const LOADED_PARTITION_TABLE = 'cdc_engine_loaded_partition';

/** A leaf partition of an audited partitioned table. */
export interface LeafPartition {
  /** The audited partitioned table it belongs to (at any depth). */
  readonly root: StagingTable;
  readonly schema: string;
  readonly name: string;
  /**
   * Which attachment this is: the leaf's oid and the xmin of its `pg_inherits` row.
   * DETACH deletes that row and ATTACH inserts another, so a partition detached and
   * attached again (or dropped and created anew) has another value.
   */
  readonly attachment: string;
  /** Its bound: `FOR VALUES ...` or `DEFAULT` (`pg_get_expr` of `relpartbound`). */
  readonly bound: string;
}

/**
 * The oldest source (`server_version_num`) whose pgoutput lets the engine load the rows
 * a table held when it was attached as a partition (see `announcesLeaves` in
 * table-loading.ts): on 13 and 14 those rows are only reported, by `verify`, and
 * `migrate` and `doctor` say so up front.
 */
export const LOADS_ATTACHED_PARTITIONS_FROM = 150000;

/** `schema\0name` of a relation. */
export const relationKey = (schema: string, name: string): string => `${schema}\u0000${name}`;

/**
 * A `pg_inherits` row (alias `i`) that is not in the pending phase of DETACH ...
 * CONCURRENTLY (PostgreSQL 14+), which updated it (another xmin) and hides the partition
 * from new queries: a detach, not another attachment. Read through to_jsonb so 13, which
 * lacks the column, reads it as absent.
 */
export const NOT_DETACHING = `NOT coalesce((pg_catalog.to_jsonb(i) ->> 'inhdetachpending')::boolean, false)`;

/**
 * Leaf partitions (plain tables) under each partitioned table, read from pg_inherits with
 * the transaction's snapshot (so, in an exported snapshot, the tree as of that
 * snapshot; pg_partition_tree would read the current catalog). Parameters: the roots'
 * schemas and names (text[] each); `root` is a root's index in them.
 */
export const LEAVES_SQL = `
  WITH RECURSIVE tree AS (
    SELECT c.oid, r.ord, NULL::text AS attachment
      FROM ROWS FROM (pg_catalog.unnest($1::text[]), pg_catalog.unnest($2::text[])) WITH ORDINALITY AS r(s, t, ord)
      JOIN pg_catalog.pg_namespace n ON n.nspname = r.s
      JOIN pg_catalog.pg_class c ON c.relnamespace = n.oid AND c.relname = r.t AND c.relkind = 'p'
    UNION ALL
    SELECT i.inhrelid, tree.ord, pg_catalog.format('%s/%s', i.inhrelid::int8, i.xmin)
      FROM tree JOIN pg_catalog.pg_inherits i ON i.inhparent = tree.oid
     WHERE ${NOT_DETACHING}
  )
  SELECT (tree.ord - 1)::int AS root, n.nspname AS schema, c.relname AS name, tree.attachment,
         pg_catalog.pg_get_expr(c.relpartbound, c.oid) AS bound
    FROM tree
    JOIN pg_catalog.pg_class c ON c.oid = tree.oid
    JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
   WHERE c.relkind = 'r'
   ORDER BY 1, 2, 3`;

/** Every leaf partition of the audited tables that are partitioned, as `client` sees them. */
export async function listLeaves(
  client: pg.ClientBase,
  tables: readonly StagingTable[],
): Promise<LeafPartition[]> {
  const { rows } = await client.query<{
    root: number;
    schema: string;
    name: string;
    attachment: string;
    bound: string;
  }>(LEAVES_SQL, [
    tables.map((table) => table.source.schema),
    tables.map((table) => table.source.table),
  ]);
  return rows.map((row) => ({
    root: tables[row.root]!,
    schema: row.schema,
    name: row.name,
    attachment: row.attachment,
    bound: row.bound,
  }));
}

/** {@link listLeaves} as of an exported snapshot (the one a load copies from). */
export async function listLeavesInSnapshot(
  client: pg.ClientBase,
  snapshotName: string,
  tables: readonly StagingTable[],
): Promise<LeafPartition[]> {
  if (!/^[0-9A-Fa-f-]+$/.test(snapshotName))
    throw new Error(`unexpected snapshot name ${snapshotName}`);
  await client.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
  try {
    await client.query(`SET TRANSACTION SNAPSHOT '${snapshotName}'`);
    return await listLeaves(client, tables);
  } finally {
    await client.query('COMMIT');
  }
}

/**
 * A leaf partition loaded as part of its partitioned table: the copy reads the leaf and
 * writes the partitioned table's staging table.
 */
export function leafAsLoadTable(leaf: LeafPartition): StagingTable {
  return { ...leaf.root, source: { schema: leaf.schema, table: leaf.name } };
}

/** Why rows attached with a partition cannot be loaded exactly. */
export class AttachedPartitionError extends AuditTrailError {
  override readonly name = 'AttachedPartitionError';
  constructor(
    message: string,
    hint = 'reload the partitioned table: remove it from the config, run audit-trail migrate ' +
      '--drop-staging, add it back and run migrate (its history continues)',
  ) {
    super(message, { code: 'ATTACHED_PARTITION', kind: 'finding', hint });
  }
}

/** A change of a partitioned table as the filter needs it. */
export interface PartitionedChange {
  readonly tag: 'insert' | 'update' | 'delete';
  /** The row's staging key after the change (insert, update) or before it (delete). */
  readonly key: readonly (string | null)[];
  /** The key before an update that changed it. */
  readonly oldKey: readonly (string | null)[] | null;
}

/**
 * Tells apart, during a load's catch-up, the changes of partitions being loaded. With
 * `publish_via_partition_root` every change arrives under the partitioned table, so a
 * change is a leaf's when its key satisfies the leaf's partition constraint
 * (`pg_get_partition_constraintdef`, which includes its ancestors' bounds: the test
 * PostgreSQL routes rows by; the key holds every partition key column). That holds
 * from the leaf's attach on; pgoutput announces the leaf (a Relation message after its
 * root's) before its first change in a session, so a leaf is only watched from that
 * announcement: an older change with a key in its range is another partition's (a
 * default partition's, before the attach) and is applied.
 *
 * A leaf's key first met as an INSERT is a row the leaf did not hold when attached: its
 * changes are applied as they come (a partition created empty keeps its INSERT
 * versions), and the copy leaves it out. A key first met as an UPDATE or DELETE is a
 * row the leaf held: the stream cannot say what it held (an update carries no old row),
 * so its changes up to the load's snapshot are left out and the copy records the row as
 * it is there, as for a table added to the config.
 *
 * The constraint is evaluated on the source, so it must run no code but PostgreSQL's
 * own: partition keys whose types or operator classes are outside pg_catalog are refused.
 */
export class AttachedPartitionFilter {
  private readonly active = new Set<string>();
  /**
   * Per leaf: each key met so far (by the staging key's equality, as the writer tells
   * keys apart: `12.00` held and `12` inserted again are one row), and whether the leaf
   * held it when attached.
   */
  private readonly met = new Map<string, Map<string, 'held' | 'new'>>();

  private constructor(
    /** Leaf key → the query that tests a key tuple against its constraint. */
    private readonly checks: ReadonlyMap<string, { root: string; sql: string }>,
  ) {}

  static async prepare(
    source: pg.ClientBase,
    leaves: readonly LeafPartition[],
  ): Promise<AttachedPartitionFilter> {
    const checks = new Map<string, { root: string; sql: string }>();
    for (const leaf of leaves) {
      checks.set(relationKey(leaf.schema, leaf.name), {
        root: leaf.root.qualifiedName,
        sql: await constraintCheck(source, leaf),
      });
    }
    return new AttachedPartitionFilter(checks);
  }

  /** A Relation message: a leaf being loaded has changes from here on. */
  announced(schema: string, name: string): void {
    const key = relationKey(schema, name);
    if (this.checks.has(key)) this.active.add(key);
  }

  /** Whether a change of `binding` is one of a row a leaf being loaded held (not applied). */
  async excludes(
    source: pg.ClientBase,
    binding: RelationBinding,
    change: PartitionedChange,
  ): Promise<boolean> {
    const leaf = await this.leafOf(source, binding, change.key);
    if (leaf === null) return false;
    const met = this.met.get(leaf) ?? new Map<string, 'held' | 'new'>();
    this.met.set(leaf, met);
    const identity = keyIdentityOf(binding.table);
    const key = identity(change.key);
    const before = change.oldKey === null ? key : identity(change.oldKey);
    const state =
      met.get(before) ?? (change.tag === 'insert' && change.oldKey === null ? 'new' : 'held');
    met.set(before, state);
    met.set(key, state);
    return state === 'held';
  }

  /** Whether the copy of a leaf writes this row (not one its applied changes wrote). */
  copies(table: StagingTable, values: readonly (string | null)[]): boolean {
    const met = this.met.get(relationKey(table.source.schema, table.source.table));
    if (met === undefined) return true;
    const key = table.primaryKey.map(
      (name) => values[table.columns.findIndex((column) => column.name === name)] ?? null,
    );
    return met.get(keyIdentityOf(table)(key)) !== 'new';
  }

  private async leafOf(
    source: pg.ClientBase,
    binding: RelationBinding,
    key: readonly (string | null)[],
  ): Promise<string | null> {
    for (const leaf of this.active) {
      const check = this.checks.get(leaf)!;
      if (check.root !== binding.table.qualifiedName) continue;
      const { rows } = await source.query<{ inside: boolean }>(check.sql, [...key]);
      if (rows[0]?.inside === true) return leaf;
    }
    return null;
  }
}

/**
 * `SELECT <leaf's partition constraint> FROM (SELECT $1::text::<type> AS <key column>,
 * ...)`: the constraint text is PostgreSQL's own deparse of the catalog, which names
 * the columns; the key columns are quoted and their types read from the catalog.
 */
async function constraintCheck(source: pg.ClientBase, leaf: LeafPartition): Promise<string> {
  const { rows } = await source.query<{
    constraint: string | null;
    foreign_code: string | null;
    columns: { name: string; type: string; builtin: boolean }[];
  }>(
    `WITH leaf AS (SELECT pg_catalog.to_regclass(pg_catalog.format('%I.%I', $1::text, $2::text)) AS oid)
     SELECT pg_catalog.pg_get_partition_constraintdef(leaf.oid) AS constraint,
            (SELECT pg_catalog.string_agg(DISTINCT pg_catalog.format('%s.%s', opc.opcnamespace::regnamespace, opc.opcname), ', ')
               FROM pg_catalog.pg_partition_ancestors(leaf.oid) a(relid)
               JOIN pg_catalog.pg_partitioned_table pt ON pt.partrelid OPERATOR(pg_catalog.=) a.relid
               CROSS JOIN LATERAL pg_catalog.unnest(pt.partclass::oid[]) AS k(opclass)
               JOIN pg_catalog.pg_opclass opc ON opc.oid = k.opclass
              WHERE opc.opcnamespace OPERATOR(pg_catalog.<>) 'pg_catalog'::pg_catalog.regnamespace) AS foreign_code,
            (SELECT pg_catalog.json_agg(pg_catalog.json_build_object(
                      'name', a.attname, 'type', pg_catalog.format_type(a.atttypid, a.atttypmod),
                      'builtin', t.typnamespace OPERATOR(pg_catalog.=) 'pg_catalog'::pg_catalog.regnamespace) ORDER BY k.ord)
               FROM pg_catalog.unnest($3::text[]) WITH ORDINALITY AS k(name, ord)
               JOIN pg_catalog.pg_attribute a ON a.attrelid OPERATOR(pg_catalog.=) leaf.oid AND a.attname = k.name
               JOIN pg_catalog.pg_type t ON t.oid = a.atttypid) AS columns
       FROM leaf`,
    [leaf.schema, leaf.name, leaf.root.primaryKey],
  );
  const row = rows[0];
  const label = `${leaf.schema}.${leaf.name}`;
  const columns = row?.columns ?? [];
  if (columns.length !== leaf.root.primaryKey.length)
    throw new AttachedPartitionError(
      `partition ${label} lacks a primary-key column of its partitioned table`,
    );
  const foreign = [
    ...(row?.foreign_code ? [`operator classes ${row.foreign_code}`] : []),
    ...columns.filter((c) => !c.builtin).map((c) => `column type ${c.type}`),
  ];
  if (foreign.length > 0)
    throw new AttachedPartitionError(
      `cannot load the rows partition ${label} held when it was attached: telling its changes ` +
        `from its partitioned table's would run code outside pg_catalog (${foreign.join('; ')})`,
    );
  const select = columns
    .map((column, index) => `$${index + 1}::text::${column.type} AS ${quoteIdent(column.name)}`)
    .join(', ');
  return `SELECT coalesce((${row?.constraint ?? 'true'}), false) AS inside FROM (SELECT ${select}) AS r`;
}

/**
 * The staging table's key identity ({@link stagingKeyIdentity}); the key's texts as they
 * are when its type is not a supported key type (its changes are then applied alone).
 */
function keyIdentityOf(table: StagingTable): (key: readonly (string | null)[]) => string {
  return stagingKeyIdentity(table) ?? keyText;
}

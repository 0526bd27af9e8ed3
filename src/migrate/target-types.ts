import { sql, type Kysely } from 'kysely';
import type { SourceColumn, SourceTable } from './introspect';

/**
 * The source catalog is input (a source superuser, or a spoofed source, chooses what it
 * says). Each column's type is accepted only as the target's own catalog renders it:
 * the source's text must name a pg_catalog type on the target (`to_regtype`, a parser,
 * never executed) and `format_type(that type, typmod)` on the target must give back the
 * same text. Anything else — a type the target lacks, or text that is not a type name —
 * becomes `text`, as the README documents for types that exist only on the source.
 */
export async function resolveTargetTypes(
  target: Kysely<unknown>,
  tables: readonly SourceTable[],
): Promise<SourceTable[]> {
  const cache = new Map<string, string>();
  const resolved: SourceTable[] = [];
  for (const table of tables) {
    const columns: SourceColumn[] = [];
    for (const column of table.columns) {
      const key = `${column.typmod}\u0000${column.type}`;
      let type = cache.get(key);
      if (type === undefined) {
        type = await targetRendering(target, column);
        cache.set(key, type);
      }
      columns.push({ ...column, type });
    }
    resolved.push({ ...table, columns });
  }
  return resolved;
}

async function targetRendering(target: Kysely<unknown>, column: SourceColumn): Promise<string> {
  if (!Number.isSafeInteger(column.typmod)) return 'text';
  try {
    const { rows } = await sql<{ rendered: string | null }>`
      SELECT pg_catalog.format_type(t.oid, ${column.typmod}::int4) AS rendered
      FROM pg_catalog.pg_type t
      WHERE t.oid = pg_catalog.to_regtype(${column.type})
        AND t.typnamespace = 'pg_catalog'::regnamespace`.execute(target);
    const rendered = rows[0]?.rendered;
    return rendered !== undefined && rendered !== null && rendered === column.type
      ? rendered
      : 'text';
  } catch {
    // Older servers raise on text to_regtype cannot parse; it is not a type name.
    return 'text';
  }
}

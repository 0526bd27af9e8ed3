import { sql, type Transaction } from 'kysely';
import { LOADED_PARTITION_TABLE } from '../engine/partition-loading';
import { LOADED_TABLE_TABLE } from '../engine/position-store';
import { SourceTableError, type SourceTable } from './introspect';

/**
 * Prepares the tables this run finds back in the config after a removal (#17 item 19),
 * before their registry entries lose the removal mark. The changes made while a table
 * was out were not captured, so the pipeline must reload it as a new baseline:
 *
 * - the local engine's loads of it are forgotten, so the engine reloads it at its next
 *   start, consistently with its stream, over the staging table it kept (a row that
 *   changed or came back becomes a SNAPSHOT, a row gone a DELETE); nothing else of its
 *   history changes. The reload and its record commit together: a crash mid-reload
 *   leaves it to do again.
 * - DMS cannot do that: its reload (TargetTablePrepMode DO_NOTHING) inserts into the kept
 *   staging table and fails on duplicate keys, and it never says which rows are gone.
 *   So a kept staging table with rows that no engine slot loaded is refused, naming the
 *   remedy (`--drop-staging`, in the same run that adds it back).
 *
 * Runs in migrate's transaction, after `--drop-staging` dropped what it drops.
 * @returns `schema.table` of the tables added back
 * @throws {@link SourceTableError} for a kept staging table the engine never loaded
 * @example
 * const readded = await prepareReaddedTables(trx, 'audit', tables);
 * // ['public.orders']: the engine reloads public.orders at its next start
 */
export async function prepareReaddedTables(
  trx: Transaction<unknown>,
  auditSchema: string,
  tables: readonly SourceTable[],
): Promise<string[]> {
  const { rows } = await sql<{
    source_schema: string;
    source_table: string;
    staging: string | null;
    engine_loaded: boolean;
  }>`
    SELECT t.source_schema, t.source_table,
           (SELECT format('%I.%I', n.nspname, k.relname) FROM pg_catalog.pg_class AS k
              JOIN pg_catalog.pg_namespace AS n ON n.oid = k.relnamespace
             WHERE k.oid = t.staging_table) AS staging,
           EXISTS (SELECT FROM ${sql.id(auditSchema, LOADED_TABLE_TABLE)} AS l
                    WHERE (l.source_schema, l.source_table) = (t.source_schema, t.source_table))
             AS engine_loaded
    FROM ${sql.id(auditSchema, 'audited_table')} AS t
    JOIN unnest(${tables.map((table) => table.schema)}::text[],
                ${tables.map((table) => table.table)}::text[]) AS c(source_schema, source_table)
      ON (c.source_schema, c.source_table) = (t.source_schema, t.source_table)
    WHERE t.removed_at IS NOT NULL
    ORDER BY t.source_schema, t.source_table`.execute(trx);
  for (const row of rows) {
    if (row.engine_loaded || row.staging === null) continue;
    // Quoted and qualified by format('%I.%I') above.
    const { rows: held } = await sql`SELECT 1 FROM ${sql.raw(row.staging)} LIMIT 1`.execute(trx);
    if (held.length === 0) continue;
    throw new SourceTableError(
      `tables: ${row.source_schema}.${row.source_table} is added back after its removal, and ` +
        `its kept staging table ${row.staging} holds rows: a DMS reload would fail on their ` +
        'keys, and the changes made while it was out could not be told apart; run migrate ' +
        '--drop-staging with it back in the config (its history is kept)',
      {
        hint:
          'the staging table is then created anew and DMS reloads the table into it; the ' +
          'local engine reloads a table it loaded before without this',
      },
    );
  }
  for (const row of rows) {
    const where = sql`source_schema = ${row.source_schema} AND source_table = ${row.source_table}`;
    await sql`DELETE FROM ${sql.id(auditSchema, LOADED_TABLE_TABLE)} WHERE ${where}`.execute(trx);
    await sql`DELETE FROM ${sql.id(auditSchema, LOADED_PARTITION_TABLE)} WHERE ${where}`.execute(
      trx,
    );
  }
  return rows.map((row) => `${row.source_schema}.${row.source_table}`);
}

import type { SourceTable } from '../migrate/introspect';

/**
 * Generated source columns in staging (#17 item 5). History, verify and the key leave
 * them out (the engine's pgoutput does not send them before PostgreSQL 18; their values
 * follow from the other columns). AWS DMS reads changes with test_decoding, which does
 * print stored generated columns, and its full load reads them too; the kit's mapping
 * selects every column, so DMS writes them into staging, and a staging table without
 * them would stop the task (`column "gen" of relation "t_staging" does not exist`).
 *
 * So staging keeps one plain, nullable **placeholder** column per generated column,
 * under its source name: migrate adds, renames and drops it as the source does (by
 * `attnum`, logging nothing: it is not history), and the capture functions leave it out
 * of every row document, as they leave out ignored columns (`audited_table
 * .generated_columns`, checked with the trigger's arguments). The other way, DMS
 * `remove-column` rules, needs each table's generated columns in the mapping, which the
 * CDK synthesises from the config without a database connection, and would need a task
 * mapping change for every generated column added later: the placeholder works whatever
 * DMS sends, with no catalog knowledge at synthesis time.
 *
 * A placeholder is `text`, whatever the source type: any value DMS sends converts to it
 * (an assignment cast to text exists from every type), its value is never read, and a
 * type change of the generated column needs nothing in staging. The local engine leaves
 * it as its initial load copied it (pgoutput sends no value for it).
 */
export const GENERATED_PLACEHOLDER_TYPE = 'text';

/** One staging column: its name and `format_type`. */
export interface StagingColumn {
  readonly name: string;
  readonly type: string;
}

/**
 * The columns a staging table holds for a source table, header columns aside: each
 * mirrored column with its staging type, then one placeholder per generated column.
 */
export function stagingColumnsOf(table: SourceTable): StagingColumn[] {
  return [
    ...table.columns.map((column) => ({ name: column.name, type: column.type })),
    ...generatedPlaceholderNames(table).map((name) => ({ name, type: GENERATED_PLACEHOLDER_TYPE })),
  ];
}

/** The names of a table's placeholder columns, in source column order. */
export function generatedPlaceholderNames(table: SourceTable): string[] {
  return table.generatedColumns.map((column) => column.name);
}

import { createHash } from 'node:crypto';
import { requireChangeHistory } from '../src/config/change-history';
import type { AuditedTableConfig, AuditTrailConfig } from '../src/config';
import { HEADER_COLUMNS, stagingTableName, type HeaderColumn } from '../src/staging/header-columns';

/** Names a source schema and table in a DMS rule (wildcards escaped). */
export interface ObjectLocator {
  readonly 'schema-name': string;
  readonly 'table-name'?: string;
}

/** `rule-type: selection`: which source tables the task captures. */
export interface SelectionRule {
  readonly 'rule-type': 'selection';
  readonly 'rule-id': string;
  readonly 'rule-name': string;
  readonly 'object-locator': Required<ObjectLocator>;
  readonly 'rule-action': 'include';
  readonly filters: readonly [];
}

/** `rule-type: transformation`: rename into the audit schema, add the header columns. */
export type TransformationRule =
  | {
      readonly 'rule-type': 'transformation';
      readonly 'rule-id': string;
      readonly 'rule-name': string;
      readonly 'rule-target': 'schema' | 'table';
      readonly 'object-locator': ObjectLocator;
      readonly 'rule-action': 'rename';
      readonly value: string;
    }
  | {
      readonly 'rule-type': 'transformation';
      readonly 'rule-id': string;
      readonly 'rule-name': string;
      readonly 'rule-target': 'column';
      readonly 'object-locator': Required<ObjectLocator>;
      readonly 'rule-action': 'add-column';
      readonly value: string;
      readonly expression: string;
      readonly 'data-type': HeaderColumn['dmsDataType'];
    };

/** A DMS table-mapping document (`TableMappings` of a task, `tableMappings` in CloudFormation). */
export interface TableMappings {
  readonly rules: readonly (SelectionRule | TransformationRule)[];
}

/**
 * Escapes a name for a DMS object-locator, where `%`, `_` and `[...]` are wildcards:
 * `order_items` would also match `orderXitems` unless written `order[_]items`.
 */
export function escapeLocatorName(name: string): string {
  return name.replace(/[[%_]/g, (character) => `[${character}]`);
}

function locator(schema: string, table: string): Required<ObjectLocator> {
  return { 'schema-name': escapeLocatorName(schema), 'table-name': escapeLocatorName(table) };
}

/**
 * The source tables DMS reads for one audited table: the table itself, or, for a
 * partitioned table, its leaf partitions and never the table. DMS captures a
 * partition's changes under the partition's name (test_decoding reports the leaf, not
 * the partitioned table), and selecting the partitioned table as well would load its
 * rows twice (AWS: "By selecting child tables alone in the table mapping selection
 * criteria, the parent table is automatically populated").
 */
export function capturedSourceTables(table: AuditedTableConfig): readonly string[] {
  return table.partitions ?? [table.table];
}

/**
 * Refuses two source tables that would land on the same staging table
 * (`a.orders` and `b.orders` both become `<auditSchema>.orders_staging`).
 */
function assertDistinctStagingTables(config: AuditTrailConfig): void {
  const owners = new Map<string, AuditedTableConfig>();
  config.tables.forEach((table, index) => {
    const staging = stagingTableName(table.table);
    const owner = owners.get(staging);
    if (owner !== undefined) {
      throw new Error(
        `tables[${index}]: "${table.schema}.${table.table}" and "${owner.schema}.${owner.table}" ` +
          `would both be staged as "${config.auditSchema}.${staging}"`,
      );
    }
    owners.set(staging, table);
  });
}

/**
 * Builds the DMS table mappings for a config: per audited table a selection rule, a
 * rename to `<table>_staging`, and one add-column rule per header column (names,
 * expressions and data types from `HEADER_COLUMNS`, the same list the target
 * migrations create the columns from); per source schema one rename to `auditSchema`.
 * A partitioned table gets those rules once per listed partition (`partitions`), each
 * renamed to the partitioned table's staging table, and no rule of its own.
 * Rule ids follow from rule names alone ({@link ruleIds}): a redeploy without changes is
 * a no-op, and adding a table or a partition leaves every existing rule's id as it was.
 *
 * @example
 * buildTableMappings(parseConfig({ tables: [{ table: 'items' }] })).rules[0];
 * // { 'rule-type': 'selection', 'rule-name': 'select:public.items', ... }
 */
export function buildTableMappings(config: AuditTrailConfig): TableMappings {
  requireChangeHistory(config, 'DMS table mappings');
  assertDistinctStagingTables(config);
  const rules: (SelectionRule | TransformationRule)[] = [];
  const nextId = ruleIds();

  for (const table of config.tables) {
    for (const source of capturedSourceTables(table)) {
      rules.push({
        'rule-type': 'selection',
        'rule-id': nextId(`select:${table.schema}.${source}`),
        'rule-name': `select:${table.schema}.${source}`,
        'object-locator': locator(table.schema, source),
        'rule-action': 'include',
        filters: [],
      });
    }
  }

  const sourceSchemas = [...new Set(config.tables.map((table) => table.schema))];
  for (const schema of sourceSchemas) {
    rules.push({
      'rule-type': 'transformation',
      'rule-id': nextId(`schema:${schema}`),
      'rule-name': `schema:${schema}`,
      'rule-target': 'schema',
      'object-locator': { 'schema-name': escapeLocatorName(schema) },
      'rule-action': 'rename',
      value: config.auditSchema,
    });
  }

  for (const table of config.tables) {
    for (const source of capturedSourceTables(table)) {
      rules.push({
        'rule-type': 'transformation',
        'rule-id': nextId(`stage:${table.schema}.${source}`),
        'rule-name': `stage:${table.schema}.${source}`,
        'rule-target': 'table',
        'object-locator': locator(table.schema, source),
        'rule-action': 'rename',
        value: stagingTableName(table.table),
      });
      for (const column of HEADER_COLUMNS) {
        rules.push({
          'rule-type': 'transformation',
          'rule-id': nextId(`header:${table.schema}.${source}.${column.name}`),
          'rule-name': `header:${table.schema}.${source}.${column.name}`,
          'rule-target': 'column',
          'object-locator': locator(table.schema, source),
          'rule-action': 'add-column',
          value: column.name,
          expression: column.expression,
          'data-type': column.dmsDataType,
        });
      }
    }
  }
  return { rules };
}

/** Rule ids are 1 to 999,999,999: numeric, and no longer than the DMS console's own. */
const RULE_ID_SPACE = 999_999_999n;

/**
 * Allocates rule ids from rule names: the first 64 bits of the name's SHA-256, modulo
 * {@link RULE_ID_SPACE}, plus one. So an id does not depend on the rules before it, and
 * adding a table or a partition renumbers nothing. Two names meeting on one id (about
 * n²/2·10⁹ likely for n rules: 0.05 % for 1,000) are kept apart by taking the next free
 * id for the one built later; only then can an added rule move an existing one.
 */
function ruleIds(): (ruleName: string) => string {
  const taken = new Set<bigint>();
  return (ruleName) => {
    const digest = createHash('sha256').update(ruleName, 'utf8').digest();
    let id = (digest.readBigUInt64BE(0) % RULE_ID_SPACE) + 1n;
    while (taken.has(id)) id = (id % RULE_ID_SPACE) + 1n;
    taken.add(id);
    return id.toString();
  };
}

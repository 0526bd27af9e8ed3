import type pg from 'pg';
import { escapeLocatorName, type TableMappings, type TransformationRule } from '../../mappings';
import { quoteIdent, quoteQualified } from '../../src/postgres/identifiers';

/**
 * AWS DMS's side of a real test_decoding stream (DMS's default plugin for a PostgreSQL
 * source): decode a slot's changes, find where the kit's table mapping sends each, and
 * apply it to staging as DMS does on a PostgreSQL target.
 */

type Rule = TableMappings['rules'][number];
export type AddColumnRule = Extract<TransformationRule, { 'rule-action': 'add-column' }>;

/** Whether a mapping rule's object locator names exactly `schema.table`. */
export const sameLocator = (rule: Rule, schema: string, table: string) =>
  JSON.stringify(rule['object-locator']) ===
  JSON.stringify({
    'schema-name': escapeLocatorName(schema),
    'table-name': escapeLocatorName(table),
  });

/** One change as test_decoding prints it. */
export interface DecodedChange {
  readonly lsn: string;
  readonly xid: string;
  readonly schema: string;
  readonly table: string;
  readonly operation: 'INSERT' | 'UPDATE' | 'DELETE';
  readonly values: Record<string, string | null>;
}

/** Parses `name[type]:value` pairs (values quoted with '' escapes, or bare, or null). */
export function parseColumns(text: string): Record<string, string | null> {
  const values: Record<string, string | null> = {};
  for (const match of text.matchAll(/(\w+)\[[^\]]+\]:('(?:[^']|'')*'|\S+)/g)) {
    const raw = match[2]!;
    values[match[1]!] =
      raw === 'null' ? null : raw.startsWith("'") ? raw.slice(1, -1).replace(/''/g, "'") : raw;
  }
  return values;
}

/** Reads (and consumes) the slot's changes with their transaction's commit time. */
export async function decode(
  source: pg.Client,
  slot: string,
): Promise<{ changes: DecodedChange[]; commitTimes: Map<string, string> }> {
  await source.query(`SET TimeZone = 'UTC'`);
  const { rows } = await source.query<{ lsn: string; xid: string; data: string }>(
    `SELECT lsn::text, xid::text, data FROM pg_logical_slot_get_changes($1, NULL, NULL,
       'include-xids', '1', 'include-timestamp', '1', 'skip-empty-xacts', '1')`,
    [slot],
  );
  const changes: DecodedChange[] = [];
  const commitTimes = new Map<string, string>();
  for (const row of rows) {
    const commit = /^COMMIT (\d+) \(at (.+)\+00\)$/.exec(row.data);
    if (commit) commitTimes.set(commit[1]!, commit[2]!);
    const change = /^table ([^.]+)\.([^:]+): (INSERT|UPDATE|DELETE): (.*)$/.exec(row.data);
    if (!change) continue;
    changes.push({
      lsn: row.lsn,
      xid: row.xid,
      schema: change[1]!,
      table: change[2]!,
      operation: change[3] as DecodedChange['operation'],
      values: parseColumns(change[4]!),
    });
  }
  return { changes, commitTimes };
}

/** Where the mapping JSON sends a source table, or undefined when no rule selects it. */
export function mappedStaging(mappings: TableMappings, schema: string, table: string) {
  const selected = mappings.rules.some(
    (rule) => rule['rule-type'] === 'selection' && sameLocator(rule, schema, table),
  );
  if (!selected) return undefined;
  const transformations = mappings.rules.filter(
    (rule): rule is TransformationRule => rule['rule-type'] === 'transformation',
  );
  const schemaRename = transformations.find(
    (rule) =>
      rule['rule-target'] === 'schema' &&
      rule['object-locator']['schema-name'] === escapeLocatorName(schema),
  );
  const tableRename = transformations.find(
    (rule) => rule['rule-target'] === 'table' && sameLocator(rule, schema, table),
  );
  const headers = transformations.filter(
    (rule): rule is AddColumnRule =>
      rule['rule-action'] === 'add-column' && sameLocator(rule, schema, table),
  );
  return {
    staging: quoteQualified(schemaRename?.value ?? schema, tableRename?.value ?? table),
    headers,
  };
}

export function headerValues(
  headers: readonly AddColumnRule[],
  change: {
    operation: string;
    commitTimestamp: string;
    changeSeq: string;
    xid: string;
    lsn: string;
  },
): Record<string, string> {
  const value = (rule: AddColumnRule): string => {
    switch (rule.expression) {
      case '$AR_H_OPERATION':
        return change.operation;
      case '$AR_H_COMMIT_TIMESTAMP':
        return change.commitTimestamp;
      case '$AR_H_CHANGE_SEQ':
        return change.changeSeq;
      case '$AR_H_TRANSACTION_ID':
        return change.xid;
      case '$AR_H_STREAM_POSITION':
        return change.lsn;
      case "operation_indicator('D', 'U', 'I')":
        return ({ INSERT: 'I', UPDATE: 'U', DELETE: 'D' } as Record<string, string>)[
          change.operation
        ]!;
      default:
        throw new Error(`the test does not know DMS expression ${rule.expression}`);
    }
  };
  return Object.fromEntries(headers.map((rule) => [rule.value, value(rule)]));
}

/**
 * Applies a row to staging as DMS does on a PostgreSQL target: INSERT (a key kept as
 * deleted is updated instead, ApplyErrorInsertPolicy INSERT_RECORD), UPDATE by key,
 * DELETE as the operation_indicator flag (an UPDATE of the headers).
 */
export async function applyLikeDms(
  target: pg.Client,
  staging: string,
  keyColumns: readonly string[],
  operation: DecodedChange['operation'],
  row: Record<string, string | null>,
  headers: Record<string, string>,
): Promise<void> {
  if (operation === 'INSERT') {
    const values = { ...row, ...headers };
    const columns = Object.keys(values);
    await target.query(
      `INSERT INTO ${staging} (${columns.map(quoteIdent).join(', ')})
       VALUES (${columns.map((_, i) => `$${i + 1}`).join(', ')})
       ON CONFLICT (${keyColumns.map(quoteIdent).join(', ')})
       DO UPDATE SET ${columns.map((c) => `${quoteIdent(c)} = EXCLUDED.${quoteIdent(c)}`).join(', ')}`,
      Object.values(values),
    );
    return;
  }
  const set = operation === 'UPDATE' ? { ...row, ...headers } : headers;
  const names = Object.keys(set);
  const result = await target.query(
    `UPDATE ${staging} SET ${names.map((c, i) => `${quoteIdent(c)} = $${i + 1}`).join(', ')}
     WHERE ${keyColumns.map((c, i) => `${quoteIdent(c)} = $${names.length + i + 1}`).join(' AND ')}`,
    [...Object.values(set), ...keyColumns.map((c) => row[c] ?? null)],
  );
  // DMS's STOP_TASK apply-conflict policy: an UPDATE or DELETE that finds no row stops.
  expect(result.rowCount, `${operation} found its staging row`).toBe(1);
}

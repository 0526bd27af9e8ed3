import type pg from 'pg';
import {
  buildTableMappings,
  escapeLocatorName,
  type TableMappings,
  type TransformationRule,
} from '../../mappings';
import { parseConfig, type AuditTrailConfig } from '../../src/config';
import { migrateTarget } from '../../src/migrate/migrate-target';
import { quoteQualified } from '../../src/postgres/identifiers';
import { createTestDatabase, withClient } from '../support/databases';
import { applyLikeDms, headerValues } from '../support/test-decoding';

/**
 * Proves the DMS table mappings and the target migrations agree: everything DMS would
 * write is derived from the mapping JSON alone (target schema and table from the rename
 * rules, header columns and their values from the add-column rules), applied to a target
 * prepared by migrateTarget, and the audit log must record it.
 */

type AddColumnRule = Extract<TransformationRule, { 'rule-action': 'add-column' }>;

/** Where DMS writes a source table, read from the mapping JSON. */
interface MappedTable {
  readonly schema: string;
  readonly table: string;
  readonly headers: readonly AddColumnRule[];
}

function mappedTable(mappings: TableMappings, schema: string, table: string): MappedTable {
  const locator = {
    'schema-name': escapeLocatorName(schema),
    'table-name': escapeLocatorName(table),
  };
  const transformations = mappings.rules.filter(
    (rule): rule is TransformationRule => rule['rule-type'] === 'transformation',
  );
  const selected = mappings.rules.some(
    (rule) =>
      rule['rule-type'] === 'selection' &&
      JSON.stringify(rule['object-locator']) === JSON.stringify(locator),
  );
  expect(selected, `${schema}.${table} is selected`).toBe(true);
  const schemaRename = transformations.find(
    (rule) =>
      rule['rule-target'] === 'schema' &&
      rule['object-locator']['schema-name'] === locator['schema-name'],
  );
  const tableRename = transformations.find(
    (rule) =>
      rule['rule-target'] === 'table' &&
      rule['rule-action'] === 'rename' &&
      JSON.stringify(rule['object-locator']) === JSON.stringify(locator),
  );
  const headers = transformations.filter(
    (rule): rule is AddColumnRule =>
      rule['rule-action'] === 'add-column' &&
      JSON.stringify(rule['object-locator']) === JSON.stringify(locator),
  );
  return { schema: schemaRename?.value ?? schema, table: tableRename?.value ?? table, headers };
}

/** One change as DMS sees it, with the header values DMS substitutes. */
interface Change {
  readonly operation: 'INSERT' | 'UPDATE' | 'DELETE';
  readonly commitTimestamp: string;
  readonly changeSeq: string;
  readonly transactionId: string;
  readonly streamPosition: string;
  /** Full load: DMS sends INSERT with empty change sequence and stream position. */
  readonly fullLoad?: boolean;
}

/** Applies one change to staging the way DMS does (the shared DMS-shaped applier). */
async function applyChange(
  client: pg.Client,
  target: MappedTable,
  keyColumns: readonly string[],
  change: Change,
  row: Record<string, string | null>,
): Promise<void> {
  // Full load: DMS leaves the change sequence and stream position empty.
  const headers = headerValues(target.headers, {
    operation: change.operation,
    commitTimestamp: change.commitTimestamp,
    changeSeq: change.fullLoad ? '' : change.changeSeq,
    xid: change.transactionId,
    lsn: change.fullLoad ? '' : change.streamPosition,
  });
  const table = quoteQualified(target.schema, target.table);
  await applyLikeDms(client, table, keyColumns, change.operation, row, headers);
}

/** The PostgreSQL type DMS creates for an add-column data type on a PostgreSQL target. */
function postgresTypeOf(rule: AddColumnRule): string {
  const type = rule['data-type'];
  return type.type === 'string'
    ? `character varying(${type.length})`
    : `timestamp(${type.precision}) without time zone`;
}

let config: AuditTrailConfig;
let targetUrl: string;
let mappings: TableMappings;

beforeAll(async () => {
  const sourceUrl = await createTestDatabase('dms_source');
  targetUrl = await createTestDatabase('dms_target');
  await withClient(sourceUrl, async (client) => {
    await client.query(`
      CREATE TABLE public.orders (id bigint PRIMARY KEY, status text NOT NULL, total numeric(12,2), doc jsonb, note text);
      CREATE SCHEMA sales;
      CREATE TABLE sales.order_items (order_id bigint, line_no int, sku text, qty int, PRIMARY KEY (order_id, line_no));
    `);
  });
  config = parseConfig({
    auditSchema: 'audit',
    tables: [{ table: 'orders' }, { schema: 'sales', table: 'order_items' }],
  });
  mappings = buildTableMappings(config);
  await migrateTarget({ config, sourceUrl, targetUrl });
});

describe('DMS mappings agree with the target migrations', () => {
  it('every added column exists on staging with the type DMS would create for its data type', async () => {
    for (const [schema, table] of [
      ['public', 'orders'],
      ['sales', 'order_items'],
    ] as const) {
      const target = mappedTable(mappings, schema, table);
      const { rows } = await withClient(targetUrl, (client) =>
        client.query<{ column_name: string; type: string }>(
          `SELECT a.attname AS column_name, format_type(a.atttypid, a.atttypmod) AS type
           FROM pg_attribute a WHERE a.attrelid = to_regclass($1) AND a.attnum > 0 AND NOT a.attisdropped`,
          [quoteQualified(target.schema, target.table)],
        ),
      );
      const types = Object.fromEntries(rows.map((row) => [row.column_name, row.type]));
      expect(target.headers.length).toBeGreaterThan(0);
      for (const rule of target.headers)
        expect(types[rule.value], rule.value).toBe(postgresTypeOf(rule));
    }
  });

  it('full load, insert, update, delete-as-flag and re-insert produce the audit rows', async () => {
    const orders = mappedTable(mappings, 'public', 'orders');
    const items = mappedTable(mappings, 'sales', 'order_items');
    const seq = (n: number) => `2026112210000000${String(n).padStart(19, '0')}`;
    const change = (operation: Change['operation'], n: number, fullLoad = false): Change => ({
      operation,
      commitTimestamp: `2026-11-22 10:00:0${n}.12345${n}`,
      changeSeq: seq(n),
      transactionId: String(700 + n),
      streamPosition: `0/16B${n}F00`,
      fullLoad,
    });
    await withClient(targetUrl, async (client) => {
      await applyChange(client, orders, ['id'], change('INSERT', 0, true), {
        id: '1',
        status: 'new',
        total: '10.10',
        doc: '{"a": 1}',
        note: null,
      });
      await applyChange(client, items, ['order_id', 'line_no'], change('INSERT', 1), {
        order_id: '1',
        line_no: '1',
        sku: 'X-1',
        qty: '2',
      });
      await applyChange(client, orders, ['id'], change('UPDATE', 2), {
        id: '1',
        status: 'paid',
        total: '12345678.99',
      });
      await applyChange(client, items, ['order_id', 'line_no'], change('DELETE', 3), {
        order_id: '1',
        line_no: '1',
      });
      await applyChange(client, items, ['order_id', 'line_no'], change('INSERT', 4), {
        order_id: '1',
        line_no: '1',
        sku: 'X-2',
        qty: '5',
      });
      // DMS re-applies a change after a task restart: no second audit row.
      await applyChange(client, orders, ['id'], change('UPDATE', 2), {
        id: '1',
        status: 'paid',
        total: '12345678.99',
      });
    });

    const { rows } = await withClient(targetUrl, (client) =>
      client.query<Record<string, unknown>>(
        `SELECT source_schema || '.' || source_table AS "table", operation, row_key, change_seq,
                to_char(commit_timestamp AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS.US') AS committed,
                old_row, new_row, changed_columns
         FROM audit.audit_log ORDER BY id`,
      ),
    );
    expect(
      rows.map((row) => [row.table, row.operation, row.row_key, row.change_seq, row.committed]),
    ).toEqual([
      ['public.orders', 'SNAPSHOT', { id: 1 }, null, '2026-11-22 10:00:00.123450'],
      [
        'sales.order_items',
        'INSERT',
        { order_id: 1, line_no: 1 },
        seq(1),
        '2026-11-22 10:00:01.123451',
      ],
      ['public.orders', 'UPDATE', { id: 1 }, seq(2), '2026-11-22 10:00:02.123452'],
      [
        'sales.order_items',
        'DELETE',
        { order_id: 1, line_no: 1 },
        seq(3),
        '2026-11-22 10:00:03.123453',
      ],
      [
        'sales.order_items',
        'INSERT',
        { order_id: 1, line_no: 1 },
        seq(4),
        '2026-11-22 10:00:04.123454',
      ],
    ]);
    expect(rows[0]?.new_row).toEqual({
      id: 1,
      status: 'new',
      total: 10.1,
      doc: { a: 1 },
      note: null,
    });
    expect(rows[2]?.changed_columns).toEqual(['status', 'total']);
    expect((rows[2]?.new_row as Record<string, unknown>).total).toBe(12345678.99);
    expect(rows[3]?.old_row).toEqual({ order_id: 1, line_no: 1, sku: 'X-1', qty: 2 });
    expect(rows[3]?.new_row).toBeNull();
    expect(rows[4]?.new_row).toEqual({ order_id: 1, line_no: 1, sku: 'X-2', qty: 5 });
  });
});

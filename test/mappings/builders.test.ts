import { buildTableMappings, buildTaskSettings, escapeLocatorName } from '../../mappings';
import { parseConfig } from '../../src/config';
import { HEADER_COLUMNS } from '../../src/staging/header-columns';

const config = parseConfig({
  auditSchema: 'audit',
  tables: [
    { table: 'orders' },
    { schema: 'sales', table: 'order_items', primaryKey: ['order_id', 'line_no'] },
    { schema: 'sales', table: 'Weird "100%"' },
  ],
});

type Rule = ReturnType<typeof buildTableMappings>['rules'][number];
const rules = buildTableMappings(config).rules;
const ofType = (predicate: (rule: Rule) => boolean): Rule[] => rules.filter(predicate);

describe('buildTableMappings', () => {
  it('selects every configured table, escaping DMS wildcards in names', () => {
    const selected = ofType((rule) => rule['rule-type'] === 'selection').map(
      (rule) => rule['object-locator'],
    );
    expect(selected).toEqual([
      { 'schema-name': 'public', 'table-name': 'orders' },
      { 'schema-name': 'sales', 'table-name': 'order[_]items' },
      { 'schema-name': 'sales', 'table-name': 'Weird "100[%]"' },
    ]);
  });

  it('renames each source schema once to the audit schema and each table to <table>_staging', () => {
    const renames = ofType((rule) => rule['rule-action'] === 'rename').map((rule) => [
      rule['rule-type'] === 'transformation' ? rule['rule-target'] : '',
      rule['object-locator'],
      'value' in rule ? rule.value : '',
    ]);
    expect(renames).toEqual([
      ['schema', { 'schema-name': 'public' }, 'audit'],
      ['schema', { 'schema-name': 'sales' }, 'audit'],
      ['table', { 'schema-name': 'public', 'table-name': 'orders' }, 'orders_staging'],
      ['table', { 'schema-name': 'sales', 'table-name': 'order[_]items' }, 'order_items_staging'],
      ['table', { 'schema-name': 'sales', 'table-name': 'Weird "100[%]"' }, 'Weird "100%"_staging'],
    ]);
  });

  it('adds every header column to every table with the shared expressions and data types', () => {
    const added = ofType((rule) => rule['rule-action'] === 'add-column');
    expect(added).toHaveLength(HEADER_COLUMNS.length * config.tables.length);
    const forOrders = added.filter((rule) => rule['object-locator']['table-name'] === 'orders');
    expect(
      forOrders.map((rule) =>
        'expression' in rule ? [rule.value, rule.expression, rule['data-type']] : [],
      ),
    ).toEqual(HEADER_COLUMNS.map((column) => [column.name, column.expression, column.dmsDataType]));
  });

  it('uses datetime precision 6 for the commit timestamp and operation_indicator for deletes', () => {
    const json = JSON.stringify(buildTableMappings(config));
    expect(json).toContain(
      '"value":"ar_h_commit_timestamp","expression":"$AR_H_COMMIT_TIMESTAMP","data-type":{"type":"datetime","precision":6}',
    );
    expect(json).toContain(`"expression":"operation_indicator('D', 'U', 'I')"`);
    expect(json).not.toMatch(/"precision":[7-9]/);
  });

  it('gives every rule a unique numeric id and a unique name', () => {
    expect(new Set(rules.map((rule) => rule['rule-id'])).size).toBe(rules.length);
    expect(new Set(rules.map((rule) => rule['rule-name'])).size).toBe(rules.length);
    expect(rules.every((rule) => /^\d+$/.test(rule['rule-id']))).toBe(true);
  });

  it('refuses two source tables that would share a staging table, even in an unvalidated config', () => {
    const clash = {
      ...config,
      tables: [
        { schema: 'a', table: 'orders', ignoreColumns: [] },
        { schema: 'b', table: 'orders', ignoreColumns: [] },
      ],
    };
    expect(() => buildTableMappings(clash)).toThrow(
      /"b.orders" and "a.orders" would both be staged as "audit.orders_staging"/,
    );
  });

  it('escapes %, _ and [ so a locator matches one name only', () => {
    expect(escapeLocatorName('a_b%c[d]')).toBe('a[_]b[%]c[[]d]');
  });
});

describe('buildTaskSettings', () => {
  it('keeps staging tables, never batches, re-inserts deleted keys and logs to CloudWatch', () => {
    const settings = buildTaskSettings(config);
    expect(settings.FullLoadSettings.TargetTablePrepMode).toBe('DO_NOTHING');
    expect(settings.TargetMetadata.BatchApplyEnabled).toBe(false);
    expect(settings.ErrorBehavior.ApplyErrorInsertPolicy).toBe('INSERT_RECORD');
    expect(settings.Logging.EnableLogging).toBe(true);
    expect(settings.ValidationSettings.EnableValidation).toBe(false);
  });

  it('stops the task on any data, truncation, table or apply error instead of leaving a gap', () => {
    const { ErrorBehavior } = buildTaskSettings(config);
    const policies = Object.entries(ErrorBehavior).filter(([name]) => name.endsWith('Policy'));
    expect(Object.fromEntries(policies)).toEqual({
      DataErrorPolicy: 'STOP_TASK',
      DataTruncationErrorPolicy: 'STOP_TASK',
      TableErrorPolicy: 'STOP_TASK',
      // The one exception: a re-inserted key whose staging row is kept as deleted.
      ApplyErrorInsertPolicy: 'INSERT_RECORD',
      ApplyErrorUpdatePolicy: 'STOP_TASK',
      ApplyErrorDeletePolicy: 'STOP_TASK',
      ApplyErrorEscalationPolicy: 'STOP_TASK',
    });
  });

  it('uses full LOB mode by default so json, jsonb and text are never truncated', () => {
    const { TargetMetadata } = buildTaskSettings(config);
    expect(TargetMetadata).toMatchObject({
      SupportLobs: true,
      FullLobMode: true,
      LimitedSizeLobMode: false,
      InlineLobMaxSize: 64,
    });
  });

  it('follows the deployment section: limited LOBs and validation when asked', () => {
    const limited = parseConfig({
      tables: [{ table: 'orders' }],
      deployment: { dms: { lobMode: 'limited', lobMaxSizeKb: 2048, validation: true } },
    });
    const settings = buildTaskSettings(limited);
    expect(settings.TargetMetadata).toMatchObject({
      FullLobMode: false,
      LimitedSizeLobMode: true,
      LobMaxSize: 2048,
    });
    expect(settings.ValidationSettings.EnableValidation).toBe(true);
  });
});

import { readFileSync } from 'node:fs';
import path from 'node:path';
import { Template } from 'aws-cdk-lib/assertions';
import { buildApp } from '../../infra/build-app';
import { buildTableMappings } from '../../mappings';
import { createEngine } from '../../src/engine';
import { migrateTarget } from '../../src/migrate/migrate-target';
import { verifyAuditTrail } from '../../src/verify/verify';
import { ConfigError, parseConfig } from '../../src/config';
import { connectionArgs, runCli, writeConfig } from '../support/cli';
import { createTestDatabase, withClient } from '../support/databases';
import { cdc, DmsApplier } from '../support/dms-apply';

/** Skips NodejsFunction bundling (the bundle is tested by `npx cdk synth` elsewhere). */
const FAST = { context: { 'aws:cdk:bundling-stacks': [] } };

const example = JSON.parse(
  readFileSync(path.join(__dirname, '../../examples/aws.config.json'), 'utf8'),
) as { deployment: Record<string, unknown> };

/** Nothing listens here: a command that tried to connect would fail differently (exit 2, "cannot connect"). */
const NOWHERE = 'postgres://nobody@127.0.0.1:9/none';

describe('an access-audit-only config (no tables)', () => {
  it('is valid: tables defaults to []', () => {
    const config = parseConfig({ accessAudit: { auditedRoles: ['alice'] } });
    expect(config.tables).toEqual([]);
    expect(config.accessAudit?.auditedRoles).toEqual(['alice']);
  });

  it('is refused when there is neither a table nor an access audit, naming the field', () => {
    expect(() => parseConfig({})).toThrow(
      /tables: must list at least one table \(or configure accessAudit/,
    );
    expect(() => parseConfig({ tables: [] })).toThrow(/^config is invalid:\ntables: /);
    // The source context table alone is a change history (of who did what).
    expect(parseConfig({ sourceContext: {} }).tables).toHaveLength(1);
  });

  it('is refused by the change-history entry points with a clear error, before connecting', async () => {
    const config = parseConfig({ accessAudit: {} });
    const urls = { sourceUrl: NOWHERE, targetUrl: NOWHERE };
    const noHistory = /no tables \(an access-audit-only config\)/;
    expect(() => buildTableMappings(config)).toThrow(noHistory);
    expect(() => createEngine({ config, ...urls })).toThrow(ConfigError);
    await expect(migrateTarget({ config, ...urls })).rejects.toThrow(noHistory);
    await expect(verifyAuditTrail({ config, ...urls })).rejects.toThrow(noHistory);
  });

  it('makes migrate, replicate, verify, mappings and doctor exit 2 naming the config', async () => {
    const file = await writeConfig({ accessAudit: { auditedRoles: ['alice'] } });
    const urls = connectionArgs({ sourceUrl: NOWHERE, targetUrl: NOWHERE });
    const runs = await Promise.all([
      runCli(['migrate', '-c', file, ...urls]),
      runCli(['replicate', '-c', file, ...urls]),
      runCli(['verify', '-c', file, ...urls]),
      runCli(['mappings', '-c', file]),
      runCli(['doctor', '-c', file, '--source-url', NOWHERE]),
    ]);
    for (const run of runs) {
      expect(run.stderr).toMatch(/no tables \(an access-audit-only config\)/);
      expect(run.stderr).not.toMatch(/cannot connect/);
      expect(run.code).toBe(2);
    }
  });

  describe('history on a target that still holds the history of tables once listed', () => {
    // A team that audited public.items, then kept only the access audit: the history the
    // target holds is still evidence. history reads the target's registry, not the config.
    let targetUrl: string;
    let accessOnly: string;
    beforeAll(async () => {
      const sourceUrl = await createTestDatabase('src');
      targetUrl = await createTestDatabase('tgt');
      await withClient(sourceUrl, (client) =>
        client.query('CREATE TABLE items (id int PRIMARY KEY, name text)'),
      );
      await migrateTarget({
        config: parseConfig({ tables: [{ table: 'items' }] }),
        sourceUrl,
        targetUrl,
      });
      await withClient(targetUrl, async (client) => {
        const dms = new DmsApplier(client, 'audit', 'items', ['id']);
        await dms.insert(
          { id: '7', name: 'lamp' },
          cdc('INSERT', '2026-11-22 10:00:00.123456', 501),
        );
        await dms.update(
          { id: '7' },
          { name: 'desk' },
          cdc('UPDATE', '2026-11-22 11:00:00.5', 502),
        );
      });
      accessOnly = await writeConfig({ accessAudit: { auditedRoles: ['alice'] } });
    });

    it('history, history schema and history changes answer from the target', async () => {
      const [rows, schema, changes] = await Promise.all([
        runCli([
          'history',
          'public.items',
          '7',
          '-c',
          accessOnly,
          '--target-url',
          targetUrl,
          '--json',
        ]),
        runCli(['history', 'schema', 'public.items', '-c', accessOnly, '--target-url', targetUrl]),
        runCli([
          'history',
          'changes',
          'public.items',
          '--from',
          '2026-11-22T00:00:00Z',
          '--to',
          '2026-11-23T00:00:00Z',
          '-c',
          accessOnly,
          '--target-url',
          targetUrl,
        ]),
      ]);
      expect(rows.stderr).toBe('');
      expect(rows.code).toBe(0);
      expect(
        (JSON.parse(rows.stdout) as { operation: string; newRow: unknown }[]).map((version) => [
          version.operation,
          version.newRow,
        ]),
      ).toEqual([
        ['INSERT', { id: 7, name: 'lamp' }],
        ['UPDATE', { id: 7, name: 'desk' }],
      ]);
      expect(schema.code).toBe(0);
      expect(changes.code).toBe(0);
      expect(changes.stdout).toContain('2026-11-22T11:00:00.500000Z');
    });

    it('a target without history is refused (exit 2) naming the config and the target, not a raw SQL error', async () => {
      const empty = await createTestDatabase('empty');
      const run = await runCli([
        'history',
        'public.items',
        '7',
        '-c',
        accessOnly,
        '--target-url',
        empty,
      ]);
      expect(run.code).toBe(2);
      expect(run.stderr).toMatch(/no tables \(an access-audit-only config\)/);
      expect(run.stderr).toMatch(
        /the target holds no change history \(audit\.audited_table does not exist\)/,
      );
      expect(run.stderr).not.toMatch(/relation .* does not exist/);
    });

    it('a table the target never audited is a finding (exit 1), as with tables', async () => {
      const run = await runCli([
        'history',
        'public.other',
        '1',
        '-c',
        accessOnly,
        '--target-url',
        targetUrl,
      ]);
      expect(run.code).toBe(1);
      expect(run.stderr).toMatch(/public\.other is not audited/);
    });
  });

  it('synthesises the access audit with no DMS, target or migration resources', () => {
    const config = parseConfig({
      deployment: example.deployment,
      accessAudit: { auditedRoles: ['alice'], serviceAccounts: ['app_svc'] },
    });
    const built = buildApp(config, FAST);
    const template = Template.fromStack(built.stack);
    const types = Object.values(
      template.toJSON().Resources as Record<string, { Type: string }>,
    ).map((resource) => resource.Type);
    expect(types.filter((type) => type.startsWith('AWS::DMS::'))).toEqual([]);
    expect(built.stack.replication).toBeUndefined();
    expect(built.stack.target).toBeUndefined();
    expect(built.stack.migrations).toBeUndefined();
    // One subscription: the source's PostgreSQL log (no kit target to watch).
    template.resourceCountIs('AWS::Logs::SubscriptionFilter', 1);
    // The source cluster only: pgAudit preloaded, no logical replication asked for.
    template.resourceCountIs('AWS::RDS::DBCluster', 1);
    const groups = Object.values(template.findResources('AWS::RDS::DBClusterParameterGroup')) as {
      Properties: { Parameters: Record<string, string> };
    }[];
    expect(groups).toHaveLength(1);
    expect(groups[0]?.Properties.Parameters.shared_preload_libraries).toContain('pgaudit');
    expect(groups[0]?.Properties.Parameters['rds.logical_replication']).toBeUndefined();
    expect(Object.keys(template.findOutputs('*'))).not.toContain('TaskArn');
  });
});

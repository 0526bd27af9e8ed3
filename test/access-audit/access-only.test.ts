import { readFileSync } from 'node:fs';
import path from 'node:path';
import { Template } from 'aws-cdk-lib/assertions';
import { buildApp } from '../../infra/build-app';
import { buildTableMappings } from '../../mappings';
import { createEngine } from '../../src/engine';
import { migrateTarget } from '../../src/migrate/migrate-target';
import { verifyAuditTrail } from '../../src/verify/verify';
import { ConfigError, parseConfig } from '../../src/config';
import { runCli } from '../support/cli';
import { writeConfig } from '../engine/cli';

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

  it('makes migrate, replicate, verify, history, mappings and doctor exit 2 naming the config', async () => {
    const file = await writeConfig({ accessAudit: { auditedRoles: ['alice'] } });
    const urls = ['--source-url', NOWHERE, '--target-url', NOWHERE];
    const runs = await Promise.all([
      runCli(['migrate', '-c', file, ...urls]),
      runCli(['replicate', '-c', file, ...urls]),
      runCli(['verify', '-c', file, ...urls]),
      runCli(['history', 'public.items', '1', '-c', file, '--target-url', NOWHERE]),
      runCli(['mappings', '-c', file]),
      runCli(['doctor', '-c', file, '--source-url', NOWHERE]),
    ]);
    for (const run of runs) {
      expect(run.stderr).toMatch(/no tables \(an access-audit-only config\)/);
      expect(run.stderr).not.toMatch(/cannot connect/);
      expect(run.code).toBe(2);
    }
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

import { readFileSync } from 'node:fs';
import path from 'node:path';
import { Validations } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import { buildApp } from '../../infra/build-app';
import { REPLICATION_TAG } from '../../infra/constructs/replication-starter';
import { parseConfig } from '../../src/config';

/** Skips NodejsFunction bundling; `npx cdk synth` bundles for real. */
const FAST = { context: { 'aws:cdk:bundling-stacks': [] } };

const example = JSON.parse(
  readFileSync(path.join(__dirname, '../../examples/aws.config.json'), 'utf8'),
) as { deployment: Record<string, unknown> };

/** Synthesizes (cdk-nag runs and fails on any unacknowledged finding). */
function synth(deployment: Record<string, unknown> = {}, extra: Record<string, unknown> = {}) {
  const config = parseConfig({
    ...example,
    ...extra,
    deployment: { ...example.deployment, ...deployment },
  });
  const built = buildApp(config, FAST);
  const template = Template.fromStack(built.stack);
  type Resource = { Type: string; Properties: Record<string, unknown>; DependsOn?: string[] };
  const resources = template.toJSON().Resources as Record<string, Resource>;
  return { ...built, template, resources };
}

const { stack, template, resources } = synth();
const entries = Object.entries(resources);

/** Logical id of the login secret for `username` (its template names it). */
function loginSecret(username: string): string {
  const found = entries.filter(
    ([, r]) =>
      r.Type === 'AWS::SecretsManager::Secret' &&
      JSON.stringify(r.Properties.GenerateSecretString).includes(
        `\\"username\\":\\"${username}\\"`,
      ),
  );
  expect(found, username).toHaveLength(1);
  return found[0]![0];
}

/** Logical ids of the master secrets (RDS attachments: what services must not read). */
const masters = entries
  .filter(([, r]) => r.Type === 'AWS::SecretsManager::SecretTargetAttachment')
  .map(([id]) => id);

/** Secrets (logical ids) each IAM role may read, by role logical id. */
function secretsReadBy(): Map<string, string[]> {
  const map = new Map<string, string[]>();
  for (const [, r] of entries) {
    if (r.Type !== 'AWS::IAM::Policy') continue;
    const roles = (r.Properties.Roles as { Ref: string }[]).map((ref) => ref.Ref);
    const statements = (r.Properties.PolicyDocument as { Statement: Record<string, unknown>[] })
      .Statement;
    const read = statements
      .filter((s) => JSON.stringify(s.Action).includes('secretsmanager:GetSecretValue'))
      .flatMap((s) => [s.Resource].flat() as { Ref?: string }[])
      .map((ref) => ref.Ref)
      .filter((ref): ref is string => ref !== undefined);
    for (const role of roles) map.set(role, [...(map.get(role) ?? []), ...read]);
  }
  return map;
}

function roleOfFunction(description: RegExp): string {
  const found = entries.filter(
    ([, r]) =>
      r.Type === 'AWS::Lambda::Function' && description.test(String(r.Properties.Description)),
  );
  expect(found, String(description)).toHaveLength(1);
  return (found[0]![1].Properties.Role as { 'Fn::GetAtt': [string] })['Fn::GetAtt'][0];
}

describe('least privilege: no service logs in as a master user', () => {
  const dms = loginSecret('audit_dms');
  const migrator = loginSecret('audit_migrator');
  const replication = loginSecret('audit_replication');
  const anchor = loginSecret('audit_anchor');
  const auditor = loginSecret('audit_auditor');

  it('DMS writes the target as its writer login and reads the source as its replication login', () => {
    const endpoints = entries.filter(([, r]) => r.Type === 'AWS::DMS::Endpoint');
    const secretOf = (type: string) =>
      (
        endpoints.find(([, r]) => r.Properties.EndpointType === type)![1].Properties
          .PostgreSqlSettings as { SecretsManagerSecretId: { Ref: string } }
      ).SecretsManagerSecretId.Ref;
    expect(secretOf('target')).toBe(dms);
    expect(secretOf('source')).toBe(replication);
    // DMS's control tables go to the DMS login's own schema, not the audit schema.
    const task = entries.find(([, r]) => r.Type === 'AWS::DMS::ReplicationTask')![1];
    const settings = JSON.parse(task.Properties.ReplicationTaskSettings as string) as {
      ControlTablesSettings: { ControlSchema: string };
    };
    expect(settings.ControlTablesSettings.ControlSchema).toBe('audit_dms');
  });

  it('only the logins function reads a master secret; DMS and the migrations read their own logins', () => {
    const read = secretsReadBy();
    const dmsRole = entries.find(
      ([, r]) =>
        r.Type === 'AWS::IAM::Role' &&
        String(r.Properties.Description).includes('DMS endpoints read'),
    )![0];
    expect(read.get(dmsRole)?.sort()).toEqual([dms, replication].sort());
    expect(read.get(roleOfFunction(/target migrations/))?.sort()).toEqual(
      [migrator, replication].sort(),
    );
    expect(read.get(roleOfFunction(/creates the DMS and migrations logins/))?.sort()).toEqual(
      [...masters, dms, migrator, replication, anchor, auditor].sort(),
    );
    expect(read.get(roleOfFunction(/chain head/))).toEqual([anchor]);
    // Auditors read theirs through the Data API with their own role, never a function's.
    const readersOfAuditor = [...read.entries()]
      .filter(([, secrets]) => secrets.includes(auditor))
      .map(([role]) => role);
    expect(readersOfAuditor).toEqual([roleOfFunction(/creates the DMS and migrations logins/)]);
    const readersOfMasters = [...read.entries()]
      .filter(([, secrets]) => secrets.some((secret) => masters.includes(secret)))
      .map(([role]) => role);
    expect(readersOfMasters).toEqual([roleOfFunction(/creates the DMS and migrations logins/)]);
  });

  it('creates the logins before the migrations run, from the config’s tables', () => {
    const [loginsId, logins] = entries.find(([, r]) => r.Type === 'Custom::AuditTrailLogins')!;
    expect(JSON.parse(logins.Properties.Config as string)).toMatchObject({
      auditSchema: 'audit',
      tables: parseConfig(example).tables,
    });
    expect(logins.Properties).toMatchObject({
      DmsSecretArn: { Ref: dms },
      MigratorSecretArn: { Ref: migrator },
      ReplicationSecretArn: { Ref: replication },
    });
    // The kit's roles: a kit that adds one (the engine role) runs the set-up again on
    // upgrade, which creates it before the migrations (the migrator may not create roles).
    expect(JSON.parse(logins.Properties.KitRoles as string)).toEqual({
      owner: 'audit_owner',
      capture: 'audit_capture',
      writer: 'audit_writer',
      engine: 'audit_engine',
      reader: 'audit_reader',
    });
    const migrations = entries.find(([, r]) => r.Type === 'Custom::AuditTrailMigrations')![1];
    expect(migrations.DependsOn).toContain(loginsId);
  });

  it('rotates every secret the kit owns with the hosted single-user rotation, after deploy-time use', () => {
    const schedules = entries.filter(([, r]) => r.Type === 'AWS::SecretsManager::RotationSchedule');
    const rotated = schedules.map(([, r]) => (r.Properties.SecretId as { Ref: string }).Ref);
    expect(rotated.sort()).toEqual(
      [...masters, dms, migrator, replication, anchor, auditor].sort(),
    );
    for (const [, schedule] of schedules) {
      expect(schedule.Properties).toMatchObject({
        HostedRotationLambda: {
          RotationType: 'PostgreSQLSingleUser',
          ExcludeCharacters: expect.stringContaining(';.:+'),
          VpcSecurityGroupIds: expect.anything(),
          VpcSubnetIds: expect.anything(),
        },
        RotationRules: { ScheduleExpression: 'rate(30 days)' },
      });
      const after = schedule.DependsOn ?? [];
      expect(after.some((id) => resources[id]?.Type === 'Custom::AuditTrailLogins')).toBe(true);
      expect(after.some((id) => resources[id]?.Type === 'Custom::AuditTrailMigrations')).toBe(true);
    }
    expect(template.toJSON().Transform).toContain('AWS::SecretsManager-2024-09-16');
  });

  it('takes the rotation schedule from the config', () => {
    const { resources: other } = synth({ secretRotationDays: 7 });
    const expressions = Object.values(other)
      .filter((r) => r.Type === 'AWS::SecretsManager::RotationSchedule')
      .map(
        (r) => (r.Properties.RotationRules as { ScheduleExpression: string }).ScheduleExpression,
      );
    expect(new Set(expressions)).toEqual(new Set(['rate(7 days)']));
  });

  it('acknowledges no SMG4 (rotation) finding anywhere any more', () => {
    const acknowledged = stack.node
      .findAll()
      .flatMap((construct) => construct.node.metadata)
      .filter((entry) => entry.type === Validations.ACKNOWLEDGED_RULES_METADATA_KEY)
      .map((entry) => JSON.stringify(entry.data));
    expect(acknowledged.length).toBeGreaterThan(0);
    expect(acknowledged.filter((text) => text.includes('SMG4'))).toEqual([]);
  });

  it('the starter may start and stop only the task tagged with this stack’s id', () => {
    const task = entries.find(([, r]) => r.Type === 'AWS::DMS::ReplicationTask')![1];
    expect(task.Properties.Tags).toContainEqual({
      Key: REPLICATION_TAG,
      Value: { Ref: 'AWS::StackId' },
    });
    const statements = entries
      .filter(([, r]) => r.Type === 'AWS::IAM::Policy')
      .flatMap(
        ([, r]) =>
          (r.Properties.PolicyDocument as { Statement: Record<string, unknown>[] }).Statement,
      )
      .filter((s) => JSON.stringify(s.Action).includes('dms:StopReplicationTask'));
    expect(statements).toHaveLength(1);
    expect(statements[0]).toMatchObject({
      Action: ['dms:StartReplicationTask', 'dms:StopReplicationTask'],
      Condition: {
        StringEquals: { [`aws:ResourceTag/${REPLICATION_TAG}`]: { Ref: 'AWS::StackId' } },
      },
    });
  });
});

describe('pgAudit on the target (audit the auditors)', () => {
  it('preloads pgaudit on the target with ddl,role,write and has the logins step create the extension', () => {
    const cluster = entries.find(
      ([, r]) => r.Type === 'AWS::RDS::DBCluster' && r.Properties.DatabaseName === 'audit',
    )![1];
    const group =
      resources[(cluster.Properties.DBClusterParameterGroupName as { Ref: string }).Ref]!;
    expect(group.Properties.Parameters).toMatchObject({
      'rds.force_ssl': '1',
      shared_preload_libraries: 'pg_stat_statements,pgaudit',
      'pgaudit.role': 'rds_pgaudit',
      'pgaudit.log': 'ddl,role,write',
      'pgaudit.log_parameter': '0',
    });
    const logins = entries.find(([, r]) => r.Type === 'Custom::AuditTrailLogins')![1];
    expect(logins.Properties.TargetPgaudit).toBe('true');
  });

  it('the access-audit monitor watches the target’s PostgreSQL log as well as the source’s', () => {
    const { resources: other } = synth({}, { accessAudit: { auditedRoles: ['alice'] } });
    const filters = Object.values(other).filter((r) => r.Type === 'AWS::Logs::SubscriptionFilter');
    const groups = filters.map((r) => JSON.stringify(r.Properties.LogGroupName));
    expect(groups).toHaveLength(2);
    const clusterOf = (database: string) =>
      Object.entries(other).find(
        ([, r]) => r.Type === 'AWS::RDS::DBCluster' && r.Properties.DatabaseName === database,
      )![0];
    for (const database of ['app', 'audit']) {
      expect(groups.some((group) => group.includes(clusterOf(database)))).toBe(true);
    }
  });
});

describe('least privilege with an existing source', () => {
  it('DMS and the migrations use the source’s own (replication) secret; only the target’s logins are created and rotated', () => {
    const { resources: other } = synth({
      source: {
        mode: 'existing',
        clusterIdentifier: 'app-db',
        endpoint: 'app-db.cluster-abc.eu-west-1.rds.amazonaws.com',
        databaseName: 'app',
        secretArn: 'arn:aws:secretsmanager:eu-west-1:123456789012:secret:app-dms-AbCdEf',
        securityGroupId: 'sg-0123456789abcdef0',
      },
    });
    const all = Object.values(other);
    const source = all.find(
      (r) => r.Type === 'AWS::DMS::Endpoint' && r.Properties.EndpointType === 'source',
    )!;
    expect(
      (source.Properties.PostgreSqlSettings as { SecretsManagerSecretId: unknown })
        .SecretsManagerSecretId,
    ).toBe('arn:aws:secretsmanager:eu-west-1:123456789012:secret:app-dms-AbCdEf');
    const logins = all.find((r) => r.Type === 'Custom::AuditTrailLogins')!;
    expect(logins.Properties.SourceAdmin).toBeUndefined();
    // Target master + the four target logins (DMS, migrator, chain anchor, auditor); the
    // existing source's secret is its owner's.
    expect(all.filter((r) => r.Type === 'AWS::SecretsManager::RotationSchedule')).toHaveLength(5);
  });
});

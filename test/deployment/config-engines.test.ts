import { readFileSync } from 'node:fs';
import path from 'node:path';
import { ConfigError, parseConfig } from '../../src/config';
import { activityStreamRefusal } from '../../src/config/schema';

const tables = [{ table: 'orders' }];

function deployment(section: Record<string, unknown>) {
  return parseConfig({ tables, deployment: section }).deployment!;
}

function refusal(section: Record<string, unknown>): string {
  try {
    parseConfig({ tables, deployment: section });
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigError);
    return (error as Error).message;
  }
  throw new Error('the config was accepted');
}

const existingInstance = {
  mode: 'existing',
  engine: 'postgres',
  instanceIdentifier: 'shop-db',
  endpoint: 'shop-db.abc.eu-west-1.rds.amazonaws.com',
  databaseName: 'shop',
  secretArn: 'arn:aws:secretsmanager:eu-west-1:123456789012:secret:shop-AbCdEf',
  securityGroupId: 'sg-0123abcd',
};

describe('deployment engines: Aurora cluster or RDS for PostgreSQL instance', () => {
  it('defaults source and target to new Aurora clusters, as before', () => {
    const { source, target } = deployment({});
    expect(source).toMatchObject({ mode: 'new', engine: 'aurora-postgresql', minCapacity: 0.5 });
    expect(target).toMatchObject({ mode: 'new', engine: 'aurora-postgresql', maxCapacity: 4 });
    // A config written before engines existed still parses to Aurora.
    expect(
      deployment({ source: { mode: 'new', databaseName: 'x' }, target: { minCapacity: 1 } }),
    ).toMatchObject({
      source: { engine: 'aurora-postgresql' },
      target: { mode: 'new', engine: 'aurora-postgresql', minCapacity: 1 },
    });
  });

  it('fills an instance’s defaults: db.t4g.small, 20 GiB, Multi-AZ left to the production flag', () => {
    const { source, target } = deployment({
      source: { mode: 'new', engine: 'postgres' },
      target: { engine: 'postgres', instanceClass: 'db.r7g.large' },
    });
    expect(source).toEqual({
      mode: 'new',
      engine: 'postgres',
      engineVersion: '16.6',
      databaseName: 'app',
      walSenderTimeoutMs: 60_000,
      maxSlotWalKeepSizeMb: 20_480,
      instanceClass: 'db.t4g.small',
      allocatedStorage: 20,
      parameters: {},
    });
    expect(target).toMatchObject({ engine: 'postgres', instanceClass: 'db.r7g.large' });
    expect((target as { multiAz?: boolean }).multiAz).toBeUndefined();
  });

  it('accepts an existing instance as source or target', () => {
    const parsed = deployment({
      source: { ...existingInstance, parameterGroupName: 'shop-pg16' },
      target: { ...existingInstance, instanceIdentifier: 'audit-db', databaseName: 'audit' },
    });
    expect(parsed.source).toMatchObject({ port: 5432, parameterGroupName: 'shop-pg16' });
    expect(parsed.target).toMatchObject({ mode: 'existing', instanceIdentifier: 'audit-db' });
  });

  it('refuses an instance-only field on a cluster config, naming it and saying why', () => {
    const message = refusal({ source: { mode: 'new', instanceClass: 'db.t4g.small' } });
    expect(message).toMatch(
      /deployment\.source: "instanceClass" is only for an RDS for PostgreSQL instance \(engine "postgres"\)/,
    );
    expect(refusal({ target: { engine: 'aurora-postgresql', multiAz: true } })).toMatch(
      /deployment\.target: "multiAz" is only for an RDS/,
    );
    expect(
      refusal({
        source: { ...existingInstance, engine: 'aurora-postgresql', clusterIdentifier: 'c' },
      }),
    ).toMatch(/"instanceIdentifier" is only for an RDS/);
  });

  it('refuses a cluster-only field on an instance config', () => {
    expect(refusal({ source: { mode: 'new', engine: 'postgres', maxCapacity: 8 } })).toMatch(
      /deployment\.source: "maxCapacity" is only for an Aurora cluster/,
    );
    expect(refusal({ source: { mode: 'new', engine: 'postgres', clusterParameters: {} } })).toMatch(
      /"clusterParameters" is only for an Aurora cluster/,
    );
  });

  it('names a missing or malformed field of an instance form', () => {
    const { instanceIdentifier: _omitted, ...withoutId } = existingInstance;
    expect(refusal({ source: withoutId })).toMatch(/deployment\.source\.instanceIdentifier:/);
    expect(
      refusal({ source: { mode: 'new', engine: 'postgres', instanceClass: 't4g.small' } }),
    ).toMatch(/deployment\.source\.instanceClass: must be a DB instance class/);
    expect(refusal({ target: { engine: 'postgres', allocatedStorage: 5 } })).toMatch(
      /deployment\.target\.allocatedStorage:/,
    );
    expect(refusal({ source: { mode: 'new', engine: 'mysql' } })).toMatch(
      /deployment\.source\.engine:/,
    );
  });

  it('parses the RDS instance example', () => {
    const file = path.join(__dirname, '../../examples/rds-instance.config.json');
    const config = parseConfig(JSON.parse(readFileSync(file, 'utf8')) as unknown, file);
    expect(config.deployment?.source.engine).toBe('postgres');
    expect(config.deployment?.target.engine).toBe('postgres');
  });
});

describe('Database Activity Streams with an RDS instance source', () => {
  const instanceSource = { source: { engine: 'postgres', mode: 'new' } };

  it('refuses an activityStream setting, with the reason, wherever the section puts it', () => {
    expect(
      activityStreamRefusal({ accessAudit: { activityStream: {} }, deployment: instanceSource }),
    ).toEqual({
      path: ['accessAudit', 'activityStream'],
      message: expect.stringMatching(/not available for RDS for PostgreSQL DB instances/),
    });
    expect(
      activityStreamRefusal({
        deployment: { source: { ...instanceSource.source, activityStream: { mode: 'async' } } },
      })?.path,
    ).toEqual(['deployment', 'source', 'activityStream']);
  });

  it('leaves an Aurora source, and an instance source without activity streams, alone', () => {
    expect(
      activityStreamRefusal({
        accessAudit: { activityStream: {} },
        deployment: { source: { engine: 'aurora-postgresql' } },
      }),
    ).toBeUndefined();
    expect(activityStreamRefusal({ accessAudit: {}, deployment: instanceSource })).toBeUndefined();
  });
});

import { randomBytes } from 'node:crypto';
import { quoteIdent } from '../../src/postgres/identifiers';
import { connectionArgs, runCli, writeConfig } from '../support/cli';
import { createTestDatabase, withClient } from '../support/databases';

interface Check {
  side: string;
  check: string;
  status: string;
  detail: string;
  remedy?: string;
}

/** An existing source with DMS: the operator must have run the README's DDL-capture SQL. */
describe('doctor: DMS DDL capture objects on an existing source', () => {
  const auditSchema = `d_${randomBytes(3).toString('hex')}`;
  const schema = `${auditSchema}_dms_ddl`;
  const login = `${auditSchema}_replication`;
  const config = {
    auditSchema,
    tables: [{ table: 'kv' }],
    deployment: {
      source: {
        mode: 'existing' as const,
        clusterIdentifier: 'shop',
        endpoint: 'shop.cluster-abc.eu-west-1.rds.amazonaws.com',
        databaseName: 'shop',
        secretArn: 'arn:aws:secretsmanager:eu-west-1:123456789012:secret:shop-dms-AbCdEf',
        securityGroupId: 'sg-0123abcd',
      },
    },
  };
  let sourceUrl: string;
  let configFile: string;

  beforeAll(async () => {
    sourceUrl = await createTestDatabase('ddlsrc');
    configFile = await writeConfig(config);
    await withClient(sourceUrl, (client) =>
      client.query(`CREATE TABLE kv (k int PRIMARY KEY, v text);
        CREATE ROLE ${quoteIdent(login)} LOGIN`),
    );
  });

  const ddlCheck = async (): Promise<{ code: number | null; check: Check }> => {
    const result = await runCli(['doctor', ...connectionArgs({ configFile, sourceUrl }), '--json']);
    const checks = JSON.parse(result.stdout) as Check[];
    const check = checks.find((c) => c.check === 'dms ddl capture');
    expect(check, result.stdout).toBeDefined();
    return { code: result.code, check: check! };
  };

  it('names each missing object, gives the SQL, and passes once it has been run', async () => {
    const missing = await ddlCheck();
    expect(missing.code).toBe(1);
    expect(missing.check.status).toBe('fail');
    for (const name of [
      `schema "${schema}" is missing`,
      `table "${schema}"."awsdms_ddl_audit" is missing`,
      `function "${schema}"."awsdms_intercept_ddl"() is missing`,
      'event trigger awsdms_intercept_ddl is missing',
    ])
      expect(missing.check.detail).toContain(name);
    const script = missing.check.remedy!.slice(missing.check.remedy!.indexOf('\n') + 1);
    expect(script).toContain(`OWNER TO "${login}"`);
    expect(script).toContain(
      `CREATE EVENT TRIGGER "awsdms_intercept_ddl" ON ddl_command_end EXECUTE FUNCTION "${schema}"."awsdms_intercept_ddl"()`,
    );

    // The operator runs exactly what doctor printed, as the master user.
    await withClient(sourceUrl, (client) => client.query(script));
    const fixed = await ddlCheck();
    expect(fixed.check).toMatchObject({ status: 'ok' });
    expect(fixed.code).toBe(0);
    // And it works: a DDL statement passes through the capture function.
    await withClient(sourceUrl, (client) => client.query('ALTER TABLE kv ADD COLUMN w text'));
  });

  it('names a set that exists but would not work, and offers no CREATE that would fail', async () => {
    await withClient(sourceUrl, (client) =>
      client.query(`ALTER FUNCTION ${schema}.awsdms_intercept_ddl() SECURITY INVOKER;
        GRANT EXECUTE ON FUNCTION ${schema}.awsdms_intercept_ddl() TO PUBLIC;
        ALTER EVENT TRIGGER awsdms_intercept_ddl DISABLE`),
    );
    const broken = await ddlCheck();
    expect(broken.code).toBe(1);
    expect(broken.check.detail).toContain('is not SECURITY DEFINER');
    expect(broken.check.detail).toContain('PUBLIC may EXECUTE');
    expect(broken.check.detail).toContain('event trigger awsdms_intercept_ddl is disabled');
    expect(broken.check.remedy).not.toContain('CREATE EVENT TRIGGER');
  });
});

import { randomBytes } from 'node:crypto';
import { parseConfig } from '../../src/config';
import { migrateTarget } from '../../src/migrate/migrate-target';
import { quoteIdent } from '../../src/postgres/identifiers';
import { connectionArgs, runCli, writeConfig } from '../support/cli';
import { createTestDatabase, withClient } from '../support/databases';
import { plantedCalls, plantLookalikes } from '../support/planted-lookalikes';

interface Check {
  side: string;
  check: string;
  status: string;
  detail: string;
}

/**
 * `doctor` reads both sides' catalogs on its logins' search_path, often as the master
 * user. A lookalike any role may create in `public` (PostgreSQL 13 and 14) that matches a
 * call or an operator more exactly than pg_catalog's would run with those rights and
 * could turn a FAIL into an OK: pg_catalog has no oid = regprocedure (it compares
 * oid = oid after a cast), which the DMS DDL-capture check uses to tell whether the event
 * trigger calls the kit's function.
 */
const PLANT = plantLookalikes([
  { operator: '=', left: 'oid', right: 'regprocedure' },
  { operator: '=', left: 'oid', right: 'regclass' },
  { operator: '=', left: 'oid', right: 'integer' },
  {
    function: 'format',
    args: 'text, text, text',
    returns: 'text',
    answer: 'SELECT pg_catalog.format($1, $2, $3)',
  },
]);

describe('doctor with lookalikes planted in public on both sides', () => {
  it('calls none of them and still reports the DDL-capture check right', async () => {
    const auditSchema = `p_${randomBytes(3).toString('hex')}`;
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
    const sourceUrl = await createTestDatabase('dplant_src');
    const targetUrl = await createTestDatabase('dplant_tgt');
    const configFile = await writeConfig(config);
    await withClient(sourceUrl, (client) =>
      client.query(`CREATE TABLE kv (k int PRIMARY KEY, v text);
        CREATE ROLE ${quoteIdent(login)} LOGIN`),
    );
    await migrateTarget({ config: parseConfig(config), sourceUrl, targetUrl });
    const doctor = async () => {
      const result = await runCli([
        'doctor',
        ...connectionArgs({ configFile, sourceUrl, targetUrl }),
        '--json',
      ]);
      return JSON.parse(result.stdout) as Check[];
    };
    const ddlCheck = (checks: Check[]) => checks.find((c) => c.check === 'dms ddl capture')!;

    // The operator runs the SQL doctor prints; then the event trigger is pointed at
    // another function, which the check must report.
    const first = ddlCheck(await doctor());
    const remedy = (first as Check & { remedy: string }).remedy;
    await withClient(sourceUrl, (client) => client.query(remedy.slice(remedy.indexOf('\n') + 1)));
    await withClient(sourceUrl, (client) =>
      client.query(`CREATE FUNCTION public.other_ddl() RETURNS event_trigger
          LANGUAGE plpgsql AS $$ BEGIN END $$;
        DROP EVENT TRIGGER awsdms_intercept_ddl;
        CREATE EVENT TRIGGER awsdms_intercept_ddl ON ddl_command_end
          EXECUTE FUNCTION public.other_ddl();
        ${PLANT}`),
    );
    await withClient(targetUrl, (client) => client.query(PLANT));

    const checks = await doctor();
    expect(ddlCheck(checks)).toMatchObject({ side: 'source', status: 'fail' });
    expect(ddlCheck(checks).detail).toContain('calls other_ddl(), not');
    for (const url of [sourceUrl, targetUrl]) expect(await plantedCalls(url)).toEqual([]);
  });
});

import { mkdtemp, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { connectionArgs, runCli } from '../support/cli';
import { withClient } from '../support/databases';
import { describeWithPgaudit } from './support/live-suite';
import type { PgauditServer } from './support/pgaudit-server';

/**
 * What `pgaudit setup` changes, read from the catalogs: extensions of the database,
 * roles, and every role's settings. Equal before and after a dry run.
 */
function catalogState(url: string): Promise<unknown> {
  return withClient(url, async (client) => {
    const { rows } = await client.query(
      `SELECT (SELECT json_agg(extname ORDER BY extname) FROM pg_extension) AS extensions,
              (SELECT json_agg(json_build_object('role', rolname, 'login', rolcanlogin,
                        'limit', rolconnlimit) ORDER BY rolname) FROM pg_roles) AS roles,
              (SELECT json_agg(json_build_object('role', setrole::regrole::text,
                        'db', setdatabase, 'settings', setconfig) ORDER BY setrole::regrole::text, setdatabase)
                 FROM pg_db_role_setting) AS settings`,
    );
    return rows[0];
  });
}

// `pgaudit setup --dry-run` on a real pgAudit server, through the built binary: the
// plan names every statement, running it changes nothing, and the printed script run
// as it is does exactly what setup does (check passes afterwards).
describeWithPgaudit('pgaudit setup --dry-run', (start) => {
  let server: PgauditServer;
  let configFile: string;
  let url: string;

  beforeAll(async () => {
    server = await start();
    url = server.adminUrl('postgres');
    await withClient(url, (client) =>
      client.query(`CREATE ROLE dry_alice LOGIN; CREATE ROLE dry_svc LOGIN`),
    );
    const dir = await mkdtemp(path.join(os.tmpdir(), 'pgaudit-dry-'));
    configFile = path.join(dir, 'audit-trail.config.json');
    await writeFile(
      configFile,
      JSON.stringify({
        accessAudit: { auditedRoles: ['dry_alice'], serviceAccounts: ['dry_svc'] },
      }),
    );
  });

  afterAll(async () => {
    await server?.stop();
  });

  const args = () => ['pgaudit', 'setup', ...connectionArgs({ configFile, sourceUrl: url })];

  it('prints the statements, changes nothing, and the script does what setup does', async () => {
    const before = await catalogState(url);
    const dry = await runCli([...args(), '--dry-run']);
    expect(dry.stderr).toBe('');
    expect(dry.code).toBe(0);
    expect(dry.stdout).toContain(
      '-- extension pgaudit present\nCREATE EXTENSION IF NOT EXISTS pgaudit;\n',
    );
    expect(dry.stdout).toContain(
      `-- role dry_svc: pgaudit.log=ddl,role (service account)\nALTER ROLE "dry_svc" SET pgaudit.log = 'ddl,role';\n`,
    );
    expect(dry.stdout).toMatch(/^CREATE ROLE "audit_trail_canary" LOGIN NOSUPERUSER/m);
    expect(await catalogState(url)).toEqual(before);
    const check = await runCli([
      'pgaudit',
      'check',
      ...connectionArgs({ configFile, sourceUrl: url }),
    ]);
    expect(check.code).toBe(1);

    const plan = await runCli([...args(), '--dry-run', '--json']);
    expect(plan.code).toBe(0);
    const { dryRun, steps } = JSON.parse(plan.stdout) as {
      dryRun: boolean;
      steps: { statements: string[]; done: string }[];
    };
    expect(dryRun).toBe(true);
    expect(steps.map((step) => step.done)).toContain(
      'role dry_svc: pgaudit.log=ddl,role (service account)',
    );
    expect(await catalogState(url)).toEqual(before);

    // The printed script, run as it is, is the setup: afterwards every check passes and
    // setup itself has nothing left to create.
    await withClient(url, (client) => client.query(dry.stdout));
    const after = await runCli([
      'pgaudit',
      'check',
      ...connectionArgs({ configFile, sourceUrl: url }),
    ]);
    expect(after.stdout).not.toContain('FAIL');
    expect(after.code).toBe(0);
    const changed = await catalogState(url);
    const setup = await runCli(args());
    expect(setup.code).toBe(0);
    expect(setup.stdout).not.toContain('created');
    expect(await catalogState(url)).toEqual(changed);
  });

  it('a dry run refuses what setup refuses (a configured role missing), exit 1', async () => {
    const file = path.join(path.dirname(configFile), 'missing.json');
    await writeFile(file, JSON.stringify({ accessAudit: { auditedRoles: ['nobody_here'] } }));
    const run = await runCli([
      'pgaudit',
      'setup',
      ...connectionArgs({ configFile: file, sourceUrl: url }),
      '--dry-run',
    ]);
    expect(run.stdout).toBe('');
    expect(run.stderr).toMatch(
      /^audit-trail: error \[PGAUDIT_SETUP\]: roles named in accessAudit do not exist: nobody_here/,
    );
    expect(run.code).toBe(1);
  });
});

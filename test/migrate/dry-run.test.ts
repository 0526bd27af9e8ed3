import { mkdtemp, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { connectionArgs, runCli } from '../support/cli';
import { createTestDatabase, withClient } from '../support/databases';

/**
 * The audit schema of this file's config. Roles are cluster-wide and other test files
 * create theirs on the same server meanwhile, so the roles compared are this schema's
 * (the real run below shows they are the ones migrate creates).
 */
const AUDIT_SCHEMA = 'dry_run_audit';
const OWN_ROLES = `${AUDIT_SCHEMA}_`;

/**
 * Everything migrate can change on a target, read from the catalogs: relations and
 * their columns, functions, triggers, this config's roles and their memberships,
 * grants, and the migrations recorded. Equal before and after a dry run.
 */
function targetState(url: string): Promise<unknown> {
  return withClient(url, async (client) => {
    const { rows } = await client.query(
      `SELECT
         (SELECT json_agg(n.nspname ORDER BY n.nspname) FROM pg_namespace n) AS schemas,
         (SELECT json_agg(format('%s.%s %s %s', n.nspname, c.relname, c.relkind, c.relacl))
            FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
           WHERE n.nspname NOT IN ('pg_catalog', 'information_schema', 'pg_toast')) AS relations,
         (SELECT json_agg(format('%s.%s %s %s', a.attrelid::regclass, a.attname, a.atttypid::regtype, a.attnotnull))
            FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace
           WHERE n.nspname NOT IN ('pg_catalog', 'information_schema', 'pg_toast') AND a.attnum > 0) AS columns,
         (SELECT json_agg(format('%s %s', p.oid::regprocedure, md5(p.prosrc)))
            FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
           WHERE n.nspname NOT IN ('pg_catalog', 'information_schema')) AS functions,
         (SELECT json_agg(format('%s %s', t.tgrelid::regclass, t.tgname))
            FROM pg_trigger t WHERE NOT t.tgisinternal) AS triggers,
         (SELECT json_agg(format('%s %s', r.rolname, r.rolcanlogin)) FROM pg_roles r
           WHERE starts_with(r.rolname, $1)) AS roles,
         (SELECT json_agg(format('%s %s', m.roleid::regrole, m.member::regrole))
            FROM pg_auth_members m
           WHERE starts_with(m.roleid::regrole::text, $1) OR starts_with(m.member::regrole::text, $1)) AS memberships`,
      [OWN_ROLES],
    );
    // Sorted here: an aggregate's ORDER BY 1 sorts by the constant 1, so the order was
    // whatever the plan gave, and differed between two reads on PostgreSQL 18.
    return Object.fromEntries(
      Object.entries(rows[0] as Record<string, string[] | null>).map(([name, items]) => [
        name,
        [...(items ?? [])].sort(),
      ]),
    );
  });
}

// migrate --dry-run through the built binary against a real server: it says what a
// real run would do and the SQL it would send, and the target's catalogs are the same
// afterwards (fresh target, up-to-date target, a column added on the source).
describe('migrate --dry-run', () => {
  let configFile: string;
  let sourceUrl: string;
  let targetUrl: string;

  beforeAll(async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'audit-trail-dry-'));
    configFile = path.join(dir, 'audit-trail.config.json');
    await writeFile(
      configFile,
      JSON.stringify({ auditSchema: AUDIT_SCHEMA, tables: [{ schema: 'public', table: 'items' }] }),
    );
    [sourceUrl, targetUrl] = await Promise.all([
      createTestDatabase('dsrc'),
      createTestDatabase('dtgt'),
    ]);
    await withClient(sourceUrl, (client) =>
      client.query('CREATE TABLE items (id int PRIMARY KEY, name text)'),
    );
  });

  const args = () => ['migrate', ...connectionArgs({ configFile, sourceUrl, targetUrl })];

  it('on a fresh target: the plan, the SQL, and nothing installed', async () => {
    const before = await targetState(targetUrl);
    const dry = await runCli([...args(), '--dry-run']);
    expect(dry.stderr).toBe('');
    expect(dry.code).toBe(0);
    expect(dry.stdout).toMatch(/^-- audit-trail migrate --dry-run: .* nothing changed\.$/m);
    expect(dry.stdout).toMatch(/^CREATE TABLE .*"items_staging"/m);
    expect(dry.stdout).toMatch(/^-- would: created the staging table of public\.items$/m);
    expect(dry.stdout).toMatch(/^-- would: applied migration 0001/m);
    expect(dry.stdout).toMatch(/^-- a real run would migrate the target \(public\.items\)$/m);
    expect(await targetState(targetUrl)).toEqual(before);

    const json = await runCli([...args(), '--dry-run', '--json']);
    expect(json.code).toBe(0);
    const plan = JSON.parse(json.stdout) as Record<string, unknown>;
    expect(plan).toMatchObject({
      dryRun: true,
      upToDate: false,
      createdStagingTables: ['public.items'],
    });
    expect((plan.statements as string[]).length).toBeGreaterThan(10);
    expect(await targetState(targetUrl)).toEqual(before);
  });

  it('after a real run: up to date, and a dry run still changes nothing', async () => {
    const real = await runCli([...args(), '--json']);
    expect(real.code, real.stderr).toBe(0);
    const installed = await targetState(targetUrl);
    expect((installed as { roles: string[] }).roles).toEqual(
      ['capture', 'engine', 'owner', 'reader', 'writer'].map((kind) => `${AUDIT_SCHEMA}_${kind} f`),
    );
    const dry = await runCli([...args(), '--dry-run', '--json']);
    expect(dry.code).toBe(0);
    expect(JSON.parse(dry.stdout)).toMatchObject({ dryRun: true, upToDate: true, applied: [] });
    expect(await targetState(targetUrl)).toEqual(installed);
  });

  it('a column added on the source: the dry run names it, staging stays as it was', async () => {
    await withClient(sourceUrl, (client) =>
      client.query('ALTER TABLE items ADD COLUMN price numeric'),
    );
    const installed = await targetState(targetUrl);
    expect((installed as { roles: string[] }).roles).toEqual(
      ['capture', 'engine', 'owner', 'reader', 'writer'].map((kind) => `${AUDIT_SCHEMA}_${kind} f`),
    );
    const dry = await runCli([...args(), '--dry-run']);
    expect(dry.code, dry.stderr).toBe(0);
    expect(dry.stdout).toMatch(/^ALTER TABLE .*"items_staging".* ADD COLUMN .*"price"/im);
    expect(await targetState(targetUrl)).toEqual(installed);
    const real = await runCli([...args(), '--json']);
    expect(JSON.parse(real.stdout)).toMatchObject({ upToDate: false });
    expect(await targetState(targetUrl)).not.toEqual(installed);
  });

  it('refuses --source-context (a write on the source), exit 2', async () => {
    const run = await runCli([...args(), '--dry-run', '--source-context']);
    expect(run.stdout).toBe('');
    expect(run.stderr).toMatch(
      /^audit-trail: error \[USAGE\]: --dry-run does not cover --source-context/,
    );
    expect(run.code).toBe(2);
  });
});

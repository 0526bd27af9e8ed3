import { mkdtemp, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { parseConfig } from '../../src/config';
import { migrateTarget } from '../../src/migrate/migrate-target';
import { quoteIdent } from '../../src/postgres/identifiers';
import { kitRoles } from '../../src/trust/roles';
import { connectionArgs, runCli } from '../support/cli';
import { createTestDatabase, withClient } from '../support/databases';
import { asLogin, createLogin, installWithHistory } from './support';

/** A config whose five kit roles are named `<prefix>_owner`, `<prefix>_capture`, ... */
function configWithRoles(prefix: string) {
  return parseConfig({
    auditRoles: {
      owner: `${prefix}_owner`,
      capture: `${prefix}_capture`,
      writer: `${prefix}_writer`,
      engine: `${prefix}_engine`,
      reader: `${prefix}_reader`,
    },
    tables: [{ table: 'items' }],
  });
}

describe('kit roles', () => {
  it('derives role names from the audit schema, overridable, and names the field of a bad one', () => {
    expect(kitRoles(parseConfig({ auditSchema: 'hist', tables: [{ table: 'items' }] }))).toEqual({
      owner: 'hist_owner',
      capture: 'hist_capture',
      writer: 'hist_writer',
      engine: 'hist_engine',
      reader: 'hist_reader',
    });
    expect(() =>
      parseConfig({ auditRoles: { writer: 'dms', reader: 'dms' }, tables: [{ table: 'items' }] }),
    ).toThrow(/auditRoles\.reader: "dms" is also the writer role/);
    expect(() =>
      parseConfig({ auditRoles: { writer: 'dms', engine: 'dms' }, tables: [{ table: 'items' }] }),
    ).toThrow(/auditRoles\.engine: "dms" is also the writer role/);
    // A name set for one kind that another kind derives: one role would hold both.
    const derived = (auditRoles: Record<string, string>) => () =>
      kitRoles(parseConfig({ auditRoles, tables: [{ table: 'items' }] }));
    expect(derived({ engine: 'audit_writer' })).toThrow(
      'auditRoles.engine: "audit_writer" is also the writer role; each kit role needs its own name',
    );
    expect(derived({ writer: 'audit_engine' })).toThrow(
      'auditRoles.writer: "audit_engine" is also the engine role; each kit role needs its own name',
    );
  });

  it('a login without CREATEROLE gets the exact SQL to run instead of a half install', async () => {
    const sourceUrl = await createTestDatabase('src');
    const targetUrl = await createTestDatabase('tgt');
    await withClient(sourceUrl, (client) =>
      client.query('CREATE TABLE items (id int PRIMARY KEY, name text)'),
    );
    const login = await createLogin(targetUrl, 'migrator');
    const prefix = `r${randomBytes(3).toString('hex')}`;
    const config = configWithRoles(prefix);
    await expect(migrateTarget({ config, sourceUrl, targetUrl: login.url })).rejects.toThrow(
      [
        `the login ${login.name} cannot create roles (no CREATEROLE); run this as an administrator, then migrate again:`,
        `CREATE ROLE ${quoteIdent(`${prefix}_owner`)} NOLOGIN;`,
        `CREATE ROLE ${quoteIdent(`${prefix}_capture`)} NOLOGIN;`,
        `CREATE ROLE ${quoteIdent(`${prefix}_writer`)} NOLOGIN;`,
        `CREATE ROLE ${quoteIdent(`${prefix}_engine`)} NOLOGIN;`,
        `CREATE ROLE ${quoteIdent(`${prefix}_reader`)} NOLOGIN;`,
        `GRANT ${quoteIdent(`${prefix}_owner`)}, ${quoteIdent(`${prefix}_capture`)} TO ${quoteIdent(login.name)};`,
      ].join('\n'),
    );
    const schemas = await withClient(targetUrl, (client) =>
      client.query(`SELECT 1 FROM pg_namespace WHERE nspname = 'audit'`),
    );
    expect(schemas.rowCount).toBe(0);
  });

  it.each([
    ['a login', 'LOGIN'],
    ['a superuser', 'SUPERUSER NOLOGIN'],
  ])(
    'refuses an engine role that already exists as %s: it would hold the engine position',
    async (_, attributes) => {
      const sourceUrl = await createTestDatabase('src');
      const targetUrl = await createTestDatabase('tgt');
      await withClient(sourceUrl, (client) =>
        client.query('CREATE TABLE items (id int PRIMARY KEY, name text)'),
      );
      const prefix = `r${randomBytes(3).toString('hex')}`;
      const config = configWithRoles(prefix);
      // A role by that name from before the upgrade (an engine login, say): the kit would
      // grant it the engine's position and loaded-table records without anyone granting it.
      await withClient(targetUrl, (client) =>
        client.query(`CREATE ROLE ${quoteIdent(`${prefix}_engine`)} ${attributes}`),
      );
      await expect(migrateTarget({ config, sourceUrl, targetUrl })).rejects.toThrow(
        `the engine role ${prefix}_engine exists but can log in or is a superuser; the kit's engine role must be NOLOGIN and not a superuser (ALTER ROLE ${quoteIdent(`${prefix}_engine`)} NOLOGIN NOSUPERUSER, or choose another name in auditRoles.engine)`,
      );
      const schemas = await withClient(targetUrl, (client) =>
        client.query(`SELECT 1 FROM pg_namespace WHERE nspname = 'audit'`),
      );
      expect(schemas.rowCount).toBe(0);
    },
  );

  it('grant reader|writer|engine prints what it does, --dry-run changes nothing, and the reader reads history', async () => {
    const install = await installWithHistory();
    const login = await createLogin(install.targetUrl, 'analyst');
    const dir = await mkdtemp(path.join(os.tmpdir(), 'grant-'));
    const config = path.join(dir, 'audit-trail.config.json');
    await writeFile(config, JSON.stringify({ tables: [{ table: 'items' }] }));
    const base = connectionArgs({ configFile: config, targetUrl: install.targetUrl });
    const statement = `GRANT "audit_reader" TO ${quoteIdent(login.name)};`;
    const dry = await runCli(['grant', 'reader', login.name, '--dry-run', ...base]);
    expect(dry).toMatchObject({ code: 0, stdout: `${statement}\n` });
    await expect(
      asLogin(login.url, (client) => client.query('SELECT count(*) FROM audit.audit_log')),
    ).rejects.toThrow(/permission denied/);
    const done = await runCli(['grant', 'reader', login.name, ...base]);
    expect(done).toMatchObject({ code: 0, stdout: `${statement}\n` });
    const { rows } = await asLogin(login.url, (client) =>
      client.query('SELECT count(*)::int AS n FROM audit.audit_log'),
    );
    expect(rows[0].n).toBe(3);
    // The local engine's login: writer and engine in one statement.
    const engine = await createLogin(install.targetUrl, 'engine');
    const both = `GRANT "audit_writer", "audit_engine" TO ${quoteIdent(engine.name)};`;
    expect(await runCli(['grant', 'engine', engine.name, ...base])).toMatchObject({
      code: 0,
      stdout: `${both}\n`,
    });
    const held = await withClient(install.targetUrl, (client) =>
      client.query<{ role: string }>(
        `SELECT r.rolname AS role FROM pg_auth_members m JOIN pg_roles r ON r.oid = m.roleid
          WHERE m.member = $1::regrole ORDER BY 1`,
        [quoteIdent(engine.name)],
      ),
    );
    expect(held.rows.map((row) => row.role)).toEqual(['audit_engine', 'audit_writer']);
    const bad = await runCli(['grant', 'owner', login.name, ...base]);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('kind must be reader, writer or engine');
  });
});

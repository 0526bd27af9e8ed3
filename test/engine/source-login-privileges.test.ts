import { AuditTrailError } from '../../src/errors';
import { createLogin } from '../trust/support';
import { createPipeline, type Pipeline } from './helpers';
import { errorOf } from '../support/settled';

/**
 * The engine's source login creates its publication and resets it at every start, which
 * PostgreSQL allows only with CREATE on the database and ownership of every table in it.
 * A login without either stopped on the raw 42501 (`permission denied for database ...`,
 * `must be owner of table items`), no hint. It now says what the login needs, exit 2.
 */
describe('engine: a source login that may not create or reset its publication', () => {
  let p: Pipeline;
  let login: { name: string; url: string };

  beforeAll(async () => {
    p = await createPipeline(
      `CREATE TABLE items (id int PRIMARY KEY, name text); INSERT INTO items VALUES (1, 'pen');`,
      { tables: [{ table: 'items' }] },
    );
    login = await createLogin(p.sourceUrl, 'source_login');
    await p.source(`ALTER ROLE "${login.name}" REPLICATION`);
  });
  afterAll(async () => p?.dispose());

  const refusal = async () =>
    (await errorOf(p.replicate({ sourceUrl: login.url }))) as AuditTrailError;

  const database = () => new URL(p.sourceUrl).pathname.slice(1);

  it.each([
    ['without CREATE on the database', () => Promise.resolve(), 'permission denied for database'],
    [
      'not owning the audited tables',
      async () => p.source(`GRANT CREATE ON DATABASE "${database()}" TO "${login.name}"`),
      'must be owner of table items',
    ],
  ] as const)(
    '%s: SOURCE_PRIVILEGE_MISSING, exit 2, naming what it needs',
    async (_what, before, words) => {
      await before();
      const error = await refusal();
      expect(error).toBeInstanceOf(AuditTrailError);
      expect(error.code).toBe('SOURCE_PRIVILEGE_MISSING');
      expect(error.exitCode).toBe(2);
      expect(error.message).toContain(`the engine's source login ${login.name} may not `);
      expect(error.message).toContain(words);
      expect(error.message).toContain(
        'it needs CREATE on the source database and ownership of every audited table',
      );
      // CREATE is named only while the login lacks it.
      expect(
        (error.hint ?? '').includes(`GRANT CREATE ON DATABASE "${database()}" TO "${login.name}"`),
      ).toBe(words.startsWith('permission denied for database'));
      const owner = (await p.source('SELECT current_user AS u')).rows[0].u as string;
      expect(error.hint).toContain(
        `make each audited table owned by a role ${login.name} is a member of (now "public"."items" by ${owner})`,
      );
      expect((await p.target('SELECT count(*)::int AS n FROM audit.audit_log')).rows[0]).toEqual({
        n: 0,
      });
    },
  );
});

describe('engine: a source login without REPLICATION', () => {
  it('stops with SOURCE_PRIVILEGE_MISSING naming the attribute, exit 2, not the raw 42501', async () => {
    const p = await createPipeline(
      `CREATE TABLE items (id int PRIMARY KEY, name text); INSERT INTO items VALUES (1, 'pen');`,
      { tables: [{ table: 'items' }] },
    );
    try {
      const login = await createLogin(p.sourceUrl, 'source_login');
      const database = new URL(p.sourceUrl).pathname.slice(1);
      await p.source(
        `GRANT CREATE ON DATABASE "${database}" TO "${login.name}";
         ALTER TABLE items OWNER TO "${login.name}"`,
      );
      const error = (await errorOf(p.replicate({ sourceUrl: login.url }))) as AuditTrailError;
      expect(error).toBeInstanceOf(AuditTrailError);
      expect(error.code).toBe('SOURCE_PRIVILEGE_MISSING');
      expect(error.exitCode).toBe(2);
      // The server's own words, quoted: PostgreSQL 16 and later say "permission denied to
      // start WAL sender", 13 to 15 "must be superuser or replication role to start walsender".
      const serverWords =
        /^permission denied to start WAL sender$|^must be superuser or replication role to start walsender$/;
      const prefix = `the engine's source login ${login.name} may not open a replication connection (`;
      const suffix =
        '): it needs the REPLICATION attribute ' +
        '(on RDS and Aurora, membership in rds_replication); nothing was applied';
      expect(
        error.message.startsWith(prefix) && error.message.endsWith(suffix),
        error.message,
      ).toBe(true);
      expect(error.message.slice(prefix.length, -suffix.length)).toMatch(serverWords);
      expect(error.hint).toBe(
        `as the source's administrator run ALTER ROLE "${login.name}" REPLICATION ` +
          `(RDS and Aurora: GRANT rds_replication TO "${login.name}")`,
      );
      await p.source(`ALTER ROLE "${login.name}" REPLICATION`);
      expect((await p.replicate({ sourceUrl: login.url })).initialLoadRows).toEqual({
        'public.items': 1,
      });
    } finally {
      await p.dispose();
    }
  });
});

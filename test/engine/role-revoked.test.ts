import { parseConfig } from '../../src/config';
import { createEngine, silentLogger } from '../../src/engine';
import { migrateTarget } from '../../src/migrate/migrate-target';
import { AuditTrailError } from '../../src/errors';
import { quoteIdent } from '../../src/postgres/identifiers';
import { grantSql } from '../../src/trust/grant';
import { kitRoles, type KitRoles } from '../../src/trust/roles';
import { createLogin } from '../trust/support';
import { createPipeline, type Pipeline } from './helpers';
import { errorOf } from '../support/settled';

async function waitFor(check: () => boolean, what: string): Promise<void> {
  for (let i = 0; i < 600; i++) {
    if (check()) return;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new Error(`timed out waiting for ${what}`);
}

/**
 * A kit role taken from the engine's login while it runs (a DBA's REVOKE, a login
 * set-up re-run) made the next target statement fail with the raw 42501 `permission
 * denied for table ...`, no hint. The engine now names the role and the GRANT, as its
 * start check does, and exits 2; the target transaction is rolled back whole.
 */
describe('engine: its target login loses a kit role while it runs', () => {
  let p: Pipeline;
  let login: { name: string; url: string };
  let roles: KitRoles;

  beforeAll(async () => {
    p = await createPipeline(
      `CREATE TABLE items (id int PRIMARY KEY, name text);
       INSERT INTO items VALUES (1, 'pen');`,
      { tables: [{ table: 'items' }] },
    );
    roles = kitRoles(p.config);
    login = await createLogin(p.targetUrl, 'engine_login');
    await p.target(grantSql(roles, 'engine', login.name));
    await p.replicate({ targetUrl: login.url });
  });
  afterAll(async () => p?.dispose());

  const recorded = async () =>
    (
      await p.target(
        `SELECT (SELECT count(*)::int FROM audit.audit_log) AS audit,
                (SELECT string_agg(name, ',' ORDER BY id) FROM audit.items_staging) AS staging`,
      )
    ).rows[0] as { audit: number; staging: string };

  it.each([
    ['engine', 'its position'],
    ['writer', 'staging'],
  ] as const)(
    'stops with ENGINE_ROLE_MISSING naming the %s role when a change meets it (%s), exit 2, nothing of the transaction applied; after the GRANT the change is applied once',
    async (kind, _what) => {
      const role = roles[kind];
      const engine = createEngine({
        config: p.config,
        sourceUrl: p.sourceUrl,
        targetUrl: login.url,
        slotName: p.slotName,
        logger: silentLogger,
        lagIntervalMs: 0,
      });
      const running = errorOf(engine.run());
      await waitFor(() => engine.status().phase === 'streaming', 'the engine to stream');
      const before = await recorded();
      await p.target(`REVOKE ${quoteIdent(role)} FROM ${quoteIdent(login.name)}`);
      await p.source(`UPDATE items SET name = name || ' ${kind}' WHERE id = 1`);
      const stopped = await running;
      // Given back before any assertion, so a failure here leaves the next case its login.
      await p.target(grantSql(roles, 'engine', login.name));
      expect(stopped).toBeInstanceOf(AuditTrailError);
      const error = stopped as AuditTrailError;
      expect(error.code).toBe('ENGINE_ROLE_MISSING');
      expect(error.exitCode).toBe(2);
      expect(error.message).toMatch(
        new RegExp(
          `^the engine's target login ${login.name} is no longer a member of ${role} ` +
            `\\(permission denied for [^)]+\\): the engine needs the writer role \\(audit_writer: ` +
            `staging DML\\) and the engine role \\(audit_engine: its position and its record of ` +
            `what it loaded\\); the target transaction it was applying was rolled back: nothing ` +
            `of it was applied$`,
        ),
      );
      expect(error.hint).toBe(
        `as the target's administrator run GRANT ${quoteIdent(role)} TO ${quoteIdent(login.name)}, ` +
          `or "audit-trail grant engine ${login.name}" (the writer role alone is for DMS)`,
      );
      expect(await recorded()).toEqual(before);

      const resumed = await p.replicate({ targetUrl: login.url });
      expect(resumed.transactions).toBe(1);
      const { rows } = await p.target(
        `SELECT operation, new_row ->> 'name' AS name FROM audit.audit_log ORDER BY id`,
      );
      expect(rows.at(-1)).toEqual({
        operation: 'UPDATE',
        name: expect.stringMatching(` ${kind}$`),
      });
      expect((await recorded()).audit).toBe(before.audit + 1);
    },
  );
});

/**
 * A login that holds the writer and engine roles could still stop on a raw 42501 with no
 * hint: a privilege the kit grants those roles revoked from the role (a DBA's REVOKE on
 * the audit schema, a staging table or the engine's position). The engine now names the
 * privilege, the object and the role, with the GRANT that puts it back, and exits 2.
 */
describe('engine: a kit privilege revoked from a role its login holds', () => {
  let p: Pipeline;
  let login: { name: string; url: string };
  let value = 0;

  beforeAll(async () => {
    p = await createPipeline(
      `CREATE TABLE items (id int PRIMARY KEY, name text);
       INSERT INTO items VALUES (1, 'pen');`,
      { tables: [{ table: 'items' }] },
    );
    login = await createLogin(p.targetUrl, 'engine_login');
    await p.target(grantSql(kitRoles(p.config), 'engine', login.name));
    await p.replicate({ targetUrl: login.url });
  });
  afterAll(async () => p?.dispose());

  it.each([
    ['USAGE', 'SCHEMA audit', 'schema audit', 'audit_writer', 'SCHEMA "audit"'],
    [
      'UPDATE',
      'audit.items_staging',
      'table audit.items_staging',
      'audit_writer',
      'TABLE "audit"."items_staging"',
    ],
    [
      'SELECT',
      'audit.items_staging',
      'table audit.items_staging',
      'audit_writer',
      'TABLE "audit"."items_staging"',
    ],
    [
      'UPDATE',
      'audit.cdc_engine_position',
      'table audit.cdc_engine_position',
      'audit_engine',
      'TABLE "audit"."cdc_engine_position"',
    ],
  ] as const)(
    'REVOKE %s ON %s: ENGINE_ROLE_MISSING naming the privilege and the GRANT, exit 2; after the GRANT the change is applied once',
    async (privilege, on, named, role, grantOn) => {
      const before = (await p.target('SELECT count(*)::int AS n FROM audit.audit_log')).rows[0];
      await p.target(`REVOKE ${privilege} ON ${on} FROM ${role}`);
      await p.source(`UPDATE items SET name = 'v${++value}' WHERE id = 1`);
      const stopped = await errorOf(p.replicate({ targetUrl: login.url }));
      await p.target(`GRANT ${privilege} ON ${on} TO ${role}`);
      expect(stopped).toBeInstanceOf(AuditTrailError);
      const error = stopped as AuditTrailError;
      expect(error.code).toBe('ENGINE_ROLE_MISSING');
      expect(error.exitCode).toBe(2);
      expect(error.message).toContain(
        `the engine's target login ${login.name} holds ${role} but lacks ${privilege} on ${named} (`,
      );
      expect(error.hint).toBe(
        `as the target's administrator run GRANT ${privilege} ON ${grantOn} TO "${role}", ` +
          `or "audit-trail migrate" (which grants the kit's roles their privileges again)`,
      );
      expect((await p.target('SELECT count(*)::int AS n FROM audit.audit_log')).rows[0]).toEqual(
        before,
      );
      const resumed = await p.replicate({ targetUrl: login.url });
      expect(resumed.transactions).toBe(1);
    },
  );
});

/**
 * A member of the kit's roles that does not inherit their privileges (a grant made
 * `WITH INHERIT FALSE`, PostgreSQL 16+; a `NOINHERIT` login before 16) was told it "is
 * not a member", and the hint's GRANT changed nothing. The refusal now says what is
 * wrong and how to fix it.
 */
describe('engine: a login that is a member of the kit roles without inheriting them', () => {
  it('refuses at start naming the roles it does not inherit, with the GRANT ... WITH INHERIT TRUE', async (context) => {
    const p = await createPipeline(
      `CREATE TABLE items (id int PRIMARY KEY, name text);
       INSERT INTO items VALUES (1, 'pen');`,
      { tables: [{ table: 'items' }] },
    );
    try {
      const version = (await p.target(`SELECT current_setting('server_version_num')::int AS v`))
        .rows[0].v as number;
      if (version < 160000) context.skip();
      const login = await createLogin(p.targetUrl, 'engine_login');
      await p.target(
        `GRANT audit_writer TO ${quoteIdent(login.name)};
         GRANT audit_engine TO ${quoteIdent(login.name)} WITH INHERIT FALSE`,
      );
      const refused = await errorOf(p.replicate({ targetUrl: login.url }));
      expect(refused).toBeInstanceOf(AuditTrailError);
      const error = refused as AuditTrailError;
      expect(error.code).toBe('ENGINE_ROLE_MISSING');
      expect(error.exitCode).toBe(2);
      expect(error.message).toBe(
        `the engine's target login ${login.name} is a member of audit_engine but does not ` +
          `inherit its privileges: the engine needs the writer role (audit_writer: staging ` +
          `DML) and the engine role (audit_engine: its position and its record of what it ` +
          `loaded); nothing was applied`,
      );
      expect(error.hint).toBe(
        `as the target's administrator run GRANT "audit_engine" TO ${quoteIdent(login.name)} ` +
          `WITH INHERIT TRUE`,
      );
      await p.target(`GRANT audit_engine TO ${quoteIdent(login.name)} WITH INHERIT TRUE`);
      expect((await p.replicate({ targetUrl: login.url })).initialLoadRows).toEqual({
        'public.items': 1,
      });
    } finally {
      await p.dispose();
    }
  });
});

/**
 * Two privileges the engine uses were granted outside the list its permission diagnosis
 * reads: EXECUTE on `finish_reload` (writer: a table's load ends its reload with it) and
 * USAGE on `schema_change`'s id sequence (engine: a partition seen attached or detached
 * takes its id from it). A REVOKE of either stopped the engine with the server's words
 * alone. Now it names the privilege, the object and the role, with the GRANT.
 */
describe('engine: its reload function or id sequence revoked from the role its login holds', () => {
  const FINISH_RELOAD = 'audit.finish_reload(text, text, timestamp without time zone)';
  const SEQUENCE = 'audit.schema_change_id_seq';
  const MIGRATE = `, or "audit-trail migrate" (which grants the kit's roles their privileges again)`;

  async function engineLogin(p: Pipeline): Promise<{ name: string; url: string }> {
    const login = await createLogin(p.targetUrl, 'engine_login');
    await p.target(grantSql(kitRoles(p.config), 'engine', login.name));
    return login;
  }

  function refusal(stopped: unknown): AuditTrailError {
    expect(stopped).toBeInstanceOf(AuditTrailError);
    const error = stopped as AuditTrailError;
    expect(error.code).toBe('ENGINE_ROLE_MISSING');
    expect(error.exitCode).toBe(2);
    return error;
  }

  it(`REVOKE EXECUTE ON FUNCTION ${FINISH_RELOAD} FROM audit_writer: a table added to the config stops its load naming it and the GRANT; after the GRANT it is loaded once`, async () => {
    const p = await createPipeline(
      `CREATE TABLE a (id int PRIMARY KEY, v text);
       CREATE TABLE b (id int PRIMARY KEY, v text);
       INSERT INTO a VALUES (1, 'a1');
       INSERT INTO b VALUES (1, 'b1'), (2, 'b2');`,
      { tables: [{ table: 'a' }] },
    );
    try {
      const login = await engineLogin(p);
      await p.replicate({ targetUrl: login.url });
      const both = parseConfig({ tables: [{ table: 'a' }, { table: 'b' }] });
      // migrate grants the kit's roles their privileges: the REVOKE comes after it.
      await migrateTarget({ config: both, sourceUrl: p.sourceUrl, targetUrl: p.targetUrl });
      await p.target(`REVOKE EXECUTE ON FUNCTION ${FINISH_RELOAD} FROM audit_writer`);
      const stopped = await errorOf(p.replicate({ config: both, targetUrl: login.url }));
      await p.target(`GRANT EXECUTE ON FUNCTION ${FINISH_RELOAD} TO audit_writer`);
      const error = refusal(stopped);
      expect(error.message).toContain(
        `the engine's target login ${login.name} holds audit_writer but lacks EXECUTE on ` +
          `function ${FINISH_RELOAD} (permission denied for function finish_reload): `,
      );
      expect(error.hint).toBe(
        `as the target's administrator run GRANT EXECUTE ON FUNCTION "audit".` +
          `"finish_reload"(text, text, timestamp without time zone) TO "audit_writer"${MIGRATE}`,
      );
      const recordedOfB = async () =>
        (await p.target(`SELECT count(*)::int AS n FROM audit.audit_log WHERE source_table = 'b'`))
          .rows[0];
      // The load was rolled back with it: nothing of b recorded.
      expect(await recordedOfB()).toEqual({ n: 0 });
      const resumed = await p.replicate({ config: both, targetUrl: login.url });
      expect(resumed.initialLoadRows).toEqual({ 'public.b': 2 });
      expect(await recordedOfB()).toEqual({ n: 2 });
    } finally {
      await p.dispose();
    }
  });

  it(`REVOKE USAGE ON SEQUENCE ${SEQUENCE} FROM audit_engine: a partition detached stops it naming the sequence and the GRANT; after the GRANT it is logged once`, async () => {
    const p = await createPipeline(
      `CREATE TABLE d (region text, id int, PRIMARY KEY (region, id)) PARTITION BY LIST (region);
       CREATE TABLE d_eu PARTITION OF d FOR VALUES IN ('EU');
       CREATE TABLE d_us PARTITION OF d FOR VALUES IN ('US');
       INSERT INTO d VALUES ('EU', 1), ('US', 1);`,
      { tables: [{ table: 'd', partitions: ['d_eu', 'd_us'] }] },
    );
    try {
      const login = await engineLogin(p);
      await p.replicate({ targetUrl: login.url });
      await p.target(`REVOKE USAGE ON SEQUENCE ${SEQUENCE} FROM audit_engine`);
      await p.source(`ALTER TABLE d DETACH PARTITION d_us`);
      const stopped = await errorOf(p.replicate({ targetUrl: login.url }));
      await p.target(`GRANT USAGE ON SEQUENCE ${SEQUENCE} TO audit_engine`);
      const error = refusal(stopped);
      expect(error.message).toContain(
        `the engine's target login ${login.name} holds audit_engine but lacks USAGE on ` +
          `sequence ${SEQUENCE} (permission denied for sequence schema_change_id_seq): `,
      );
      expect(error.hint).toBe(
        `as the target's administrator run GRANT USAGE ON SEQUENCE "audit"."schema_change_id_seq" TO "audit_engine"${MIGRATE}`,
      );
      const logged = () =>
        p.target(`SELECT change, partition_name FROM audit.partition_change ORDER BY id`);
      expect((await logged()).rows).toEqual([]);
      await p.replicate({ targetUrl: login.url });
      await p.replicate({ targetUrl: login.url });
      expect((await logged()).rows).toEqual([{ change: 'DETACH', partition_name: 'd_us' }]);
    } finally {
      await p.dispose();
    }
  });
});

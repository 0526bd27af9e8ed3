import { formatSchemaChanges } from '../../src/cli/commands/history-format';
import { SchemaChangeError } from '../../src/engine';
import { createHistory, type ColumnSchemaChange } from '../../src/history';
import { createKysely } from '../../src/postgres/connect';
import { migrateTarget } from '../../src/migrate/migrate-target';
import { schemaChangePositionMigration } from '../../migrations/target/0012-schema-change-position';
import { verifyAuditTrail } from '../../src/verify';
import { withClient } from '../support/databases';
import { auditRows, createPipeline, type Pipeline } from './helpers';

const verify = (p: Pipeline) =>
  verifyAuditTrail({ config: p.config, sourceUrl: p.sourceUrl, targetUrl: p.targetUrl });
const migrate = (p: Pipeline) =>
  migrateTarget({ config: p.config, sourceUrl: p.sourceUrl, targetUrl: p.targetUrl });
const keysAndOperations = async (p: Pipeline) =>
  (await auditRows(p, 't')).map((r) => [r.operation, (r.row_key as { id: number }).id]);

describe('engine: a column type widened on the source', () => {
  let p: Pipeline;
  beforeAll(async () => {
    p = await createPipeline(
      `CREATE TABLE t (id int PRIMARY KEY, amount numeric(10,2), code varchar(5), n int)`,
      { tables: [{ table: 't' }] },
    );
    await p.replicate();
  });
  afterAll(async () => p?.dispose());

  it('stops before the first change of the new type (never rounds, truncates or fails on it), having applied everything before', async () => {
    await p.source(`INSERT INTO t VALUES (1, 1.23, 'abc', 1)`);
    await p.source(`ALTER TABLE t ALTER amount TYPE numeric(12,4), ALTER code TYPE varchar(20),
                      ALTER n TYPE bigint`);
    await p.source(`INSERT INTO t VALUES (2, 1.2345, 'abcdefghij', 9000000000)`);
    await p.source(`UPDATE t SET amount = 9.8765 WHERE id = 1`);
    const failure = p.replicate();
    await expect(failure).rejects.toBeInstanceOf(SchemaChangeError);
    await expect(failure).rejects.toThrow(
      /source table public\.t changed shape: column "amount" is numeric\(12,4\) on the source but numeric\(10,2\) in staging; column "code" is character varying\(20\) on the source but character varying\(5\) in staging; column "n" is bigint on the source but integer in staging.*run "audit-trail migrate"/,
    );
    // The change before the ALTER, grouped into the same target transaction, is kept.
    expect(await keysAndOperations(p)).toEqual([['INSERT', 1]]);
    // Stopping again changes nothing.
    await expect(p.replicate()).rejects.toBeInstanceOf(SchemaChangeError);
    expect(await keysAndOperations(p)).toEqual([['INSERT', 1]]);
  });

  it('resumes exactly there once staging has the new types (what migrate does), with exact values', async () => {
    await p.target(`ALTER TABLE audit.t_staging ALTER amount TYPE numeric(12,4),
                      ALTER code TYPE varchar(20), ALTER n TYPE bigint`);
    await p.replicate();
    expect(await keysAndOperations(p)).toEqual([
      ['INSERT', 1],
      ['INSERT', 2],
      ['UPDATE', 1],
    ]);
    const { rows } = await p.target(
      `SELECT id, amount::text, code, n::text FROM audit.t_staging ORDER BY id`,
    );
    expect(rows).toEqual([
      { id: 1, amount: '9.8765', code: 'abc', n: '1' },
      { id: 2, amount: '1.2345', code: 'abcdefghij', n: '9000000000' },
    ]);
    expect((await verify(p)).ok).toBe(true);
  });
});

describe('engine: columns added, renamed and dropped while it runs', () => {
  let p: Pipeline;
  beforeAll(async () => {
    p = await createPipeline(`CREATE TABLE t (id int PRIMARY KEY, v text)`, {
      tables: [{ table: 't' }],
    });
    await p.source(`INSERT INTO t VALUES (1, 'a')`);
    await p.replicate();
  });
  afterAll(async () => p?.dispose());

  it('ADD COLUMN: stops at the first change that carries it; after migrate, the change is applied once', async () => {
    await p.source(`ALTER TABLE t ADD COLUMN note text`);
    await p.source(`UPDATE t SET note = 'only the new column' WHERE id = 1`);
    await p.source(`INSERT INTO t VALUES (2, 'b', 'n2')`);
    await expect(p.replicate()).rejects.toThrow(/column "note" is not in staging/);
    expect(await keysAndOperations(p)).toEqual([['SNAPSHOT', 1]]);
    await migrate(p);
    await p.replicate();
    const rows = await auditRows(p, 't');
    expect(rows.map((r) => [r.operation, r.new_row])).toEqual([
      ['SNAPSHOT', { id: 1, v: 'a' }],
      ['UPDATE', { id: 1, v: 'a', note: 'only the new column' }],
      ['INSERT', { id: 2, v: 'b', note: 'n2' }],
    ]);
    expect(rows[1]!.changed_columns).toEqual(['note']);
    expect((await verify(p)).ok).toBe(true);
  });

  it('a change made before ADD COLUMN and replayed after migrate added it leaves the new column alone', async () => {
    await p.source(`INSERT INTO t VALUES (3, 'c', NULL)`);
    await p.source(`ALTER TABLE t ADD COLUMN extra int`);
    await p.source(`INSERT INTO t VALUES (4, 'd', NULL, 44)`);
    await migrate(p); // before the engine saw the ALTER
    await p.replicate();
    const { rows } = await p.target(
      `SELECT id, extra FROM audit.t_staging WHERE id >= 3 ORDER BY id`,
    );
    expect(rows).toEqual([
      { id: 3, extra: null },
      { id: 4, extra: 44 },
    ]);
    const versions = (await auditRows(p, 't')).filter((r) => (r.row_key as { id: number }).id >= 3);
    expect(versions.map((r) => [r.operation, r.new_row])).toEqual([
      // Inserted before the column existed: NULL, as the source shows it now.
      ['INSERT', { id: 3, v: 'c', note: null, extra: null }],
      ['INSERT', { id: 4, v: 'd', note: null, extra: 44 }],
    ]);
  });

  it('a column named like a header column is not silently dropped: the engine stops and names it', async () => {
    await p.source(`ALTER TABLE t ADD COLUMN ar_h_change_seq text`);
    await p.source(`UPDATE t SET ar_h_change_seq = 'mine' WHERE id = 1`);
    await expect(p.replicate()).rejects.toThrow(
      /column "ar_h_change_seq" has the name of a staging header column/,
    );
    await p.source(`ALTER TABLE t DROP COLUMN ar_h_change_seq`);
  });

  it('RENAME and DROP COLUMN stop the engine instead of leaving stale values behind', async () => {
    const p2 = await createPipeline(`CREATE TABLE t (id int PRIMARY KEY, v text, w text)`, {
      tables: [{ table: 't' }],
    });
    try {
      await p2.source(`INSERT INTO t VALUES (1, 'a', 'w')`);
      await p2.replicate();
      await p2.source(`ALTER TABLE t RENAME COLUMN v TO v2`);
      await p2.source(`UPDATE t SET v2 = 'renamed' WHERE id = 1`);
      await expect(p2.replicate()).rejects.toThrow(
        /column "v2" is not in staging; staging column "v" is no longer on the source \(dropped or renamed\)/,
      );
      expect((await auditRows(p2, 't')).map((r) => r.operation)).toEqual(['SNAPSHOT']);
      // What a migrate that mirrors renames does; the engine then resumes at the UPDATE.
      await p2.target(`ALTER TABLE audit.t_staging RENAME COLUMN v TO v2`);
      await p2.replicate();
      await p2.source(`ALTER TABLE t DROP COLUMN w`);
      await p2.source(`UPDATE t SET v2 = 'b' WHERE id = 1`);
      await expect(p2.replicate()).rejects.toThrow(/staging column "w" is no longer on the source/);
      expect((await auditRows(p2, 't')).map((r) => [r.operation, r.new_row])).toEqual([
        ['SNAPSHOT', { id: 1, v: 'a', w: 'w' }],
        ['UPDATE', { id: 1, v2: 'renamed', w: 'w' }],
      ]);
    } finally {
      await p2.dispose();
    }
  });
});

describe('engine: schema changes read exactly in history and verify (#17 item 4)', () => {
  let p: Pipeline;
  beforeEach(async () => {
    p = await createPipeline(`CREATE TABLE t (id int PRIMARY KEY, v text)`, {
      tables: [{ table: 't' }],
    });
    await p.source(`INSERT INTO t VALUES (1, 'a'), (2, 'b')`);
    await p.replicate();
  });
  afterEach(async () => p?.dispose());

  const schemaLog = async () =>
    (
      await p.target(
        `SELECT change, column_name, new_definition -> 'existingRows' AS existing
           FROM audit.schema_change ORDER BY id`,
      )
    ).rows;

  it('ADD COLUMN ... DEFAULT: existing rows get the default in staging without a version, the log says so, verify is clean', async () => {
    await p.source(`ALTER TABLE t ADD COLUMN n numeric DEFAULT 1.50, ADD COLUMN plain text`);
    await migrate(p);
    await p.source(`UPDATE t SET v = 'a2' WHERE id = 1`);
    await p.replicate();
    expect(await schemaLog()).toEqual([
      { change: 'ADD', column_name: 'n', existing: 1.5 },
      { change: 'ADD', column_name: 'plain', existing: null },
    ]);
    const rows = await auditRows(p, 't');
    // No invented version for row 2; row 1's update changed v only (n was 1.50 before).
    expect(rows.map((r) => [r.operation, r.changed_columns])).toEqual([
      ['SNAPSHOT', null],
      ['SNAPSHOT', null],
      ['UPDATE', ['v']],
    ]);
    const { rows: raw } = await p.target(
      `SELECT old_row::text AS old_row FROM audit.audit_log WHERE operation = 'UPDATE'`,
    );
    expect(raw[0]!.old_row).toBe('{"n": 1.50, "v": "a", "id": 1, "plain": null}');
    const report = await verify(p);
    expect(report.mismatches).toEqual([]);
  });

  it('ADD COLUMN ... DEFAULT of json text row_to_json reads otherwise: the log holds the exact text', async () => {
    await p.source(
      `ALTER TABLE t ADD COLUMN j json DEFAULT 'null', ADD COLUMN k json DEFAULT E' [1]\\n'`,
    );
    await migrate(p);
    await p.source(`UPDATE t SET v = 'a2' WHERE id = 1`);
    await p.replicate();
    expect(await schemaLog()).toEqual([
      { change: 'ADD', column_name: 'j', existing: 'null' },
      { change: 'ADD', column_name: 'k', existing: ' [1]\n' },
    ]);
    const rows = await auditRows(p, 't');
    expect(rows.map((r) => [r.operation, r.changed_columns])).toEqual([
      ['SNAPSHOT', null],
      ['SNAPSHOT', null],
      ['UPDATE', ['v']],
    ]);
    expect(rows[2]!.old_row).toEqual({ id: 1, v: 'a', j: 'null', k: ' [1]\n' });
    expect((await verify(p)).mismatches).toEqual([]);
  });

  // jsonb's JSON null literal is null in the logged value, as SQL NULL is: the log says
  // which, and verify reads the versions from before the ADD as holding the literal.
  it('ADD COLUMN jsonb DEFAULT the JSON null literal: verify is clean for rows unchanged since', async () => {
    await p.source(`ALTER TABLE t ADD COLUMN jb jsonb DEFAULT 'null', ADD COLUMN js jsonb`);
    await migrate(p);
    await p.source(`UPDATE t SET v = 'a2' WHERE id = 1`);
    await p.replicate();
    const { rows: log } = await p.target(
      `SELECT column_name, new_definition -> 'existingRows' AS existing,
              new_definition -> 'existingRowsJsonNull' AS literal
         FROM audit.schema_change ORDER BY id`,
    );
    expect(log).toEqual([
      { column_name: 'jb', existing: null, literal: true },
      { column_name: 'js', existing: null, literal: null },
    ]);
    const rows = await auditRows(p, 't');
    expect(rows.map((r) => [r.operation, r.changed_columns])).toEqual([
      ['SNAPSHOT', null],
      ['SNAPSHOT', null],
      ['UPDATE', ['v']],
    ]);
    expect((await verify(p)).mismatches).toEqual([]);
  });

  it('ADD COLUMN ... DEFAULT of a json[] or jsonb[] JSON cannot keep: the log holds its text', async () => {
    await p.source(
      `ALTER TABLE t ADD COLUMN a jsonb[] DEFAULT '{"null",NULL}', ADD COLUMN b json[] DEFAULT '{"[1,2]"}',
                     ADD COLUMN c jsonb[] DEFAULT '{1,NULL}'`,
    );
    await migrate(p);
    await p.source(`UPDATE t SET v = 'a2' WHERE id = 1`);
    await p.replicate();
    expect(await schemaLog()).toEqual([
      { change: 'ADD', column_name: 'a', existing: '{"null",NULL}' },
      { change: 'ADD', column_name: 'b', existing: '{"[1,2]"}' },
      { change: 'ADD', column_name: 'c', existing: [1, null] },
    ]);
    const rows = await auditRows(p, 't');
    expect(rows.map((r) => [r.operation, r.changed_columns])).toEqual([
      ['SNAPSHOT', null],
      ['SNAPSHOT', null],
      ['UPDATE', ['v']],
    ]);
    expect(rows[2]!.old_row).toMatchObject({ a: '{"null",NULL}', b: '{"[1,2]"}', c: [1, null] });
    expect((await verify(p)).mismatches).toEqual([]);
  });

  it('ADD COLUMN after ten and more versions: the boundary between shapes is numeric, not text', async () => {
    await p.source(`INSERT INTO t SELECT g, 'x' FROM generate_series(3, 12) AS g`);
    await p.replicate(); // audit ids 1..12
    await p.source(`ALTER TABLE t ADD COLUMN n int DEFAULT 7`);
    await migrate(p);
    const { rows } = await p.target(`SELECT last_audit_id::text AS id FROM audit.schema_change`);
    expect(rows).toEqual([{ id: '12' }]);
    expect((await verify(p)).mismatches).toEqual([]);
  });

  it('ADD COLUMN with a per-row (volatile) default is refused with the remedy, not filled with NULLs', async () => {
    await p.source(`ALTER TABLE t ADD COLUMN r float8 DEFAULT random()`);
    await expect(migrate(p)).rejects.toThrow(
      /public\.t\.r was added with a default that PostgreSQL computed row by row.*migrate --drop-staging/,
    );
  });

  it('renaming a primary-key column keeps one history per row (history API and verify)', async () => {
    await p.source(`ALTER TABLE t RENAME COLUMN id TO ident`);
    await migrate(p);
    await p.source(`UPDATE t SET v = 'a2' WHERE ident = 1`);
    await p.replicate();
    const db = createKysely<unknown>(p.targetUrl, { max: 1, label: 'target' });
    try {
      const history = createHistory(db, { auditSchema: 'audit' });
      const versions = await history.history('public.t', { ident: 1 });
      expect(versions.map((v) => [v.operation, v.key])).toEqual([
        ['SNAPSHOT', { id: 1 }],
        ['UPDATE', { ident: 1 }],
      ]);
      const latest = await history.latest('public.t');
      expect(latest.map((v) => [v.operation, v.key])).toEqual([
        ['UPDATE', { ident: 1 }],
        ['SNAPSHOT', { id: 2 }],
      ]);
    } finally {
      await db.destroy();
    }
    expect((await verify(p)).mismatches).toEqual([]);
  });
});

/**
 * Where a column change sits in the source's history (#17 item 21): the engine records
 * the commit LSN and commit time of the first source transaction written in the new
 * shape, and the schema-change log shows them, whichever of the engine and migrate
 * sees the change first. Oracle: the source's own clock and WAL, read around the commit
 * (pg_current_wal_insert_lsn before and after COMMIT, pg_xact_commit_timestamp).
 */
describe('engine: the exact source position of a schema change (#17 item 21)', () => {
  let p: Pipeline;
  beforeEach(async () => {
    p = await createPipeline(
      `CREATE TABLE t (id int PRIMARY KEY, v text); CREATE TABLE other (n int)`,
      { tables: [{ table: 't' }] },
    );
    await p.source(`INSERT INTO t VALUES (1, 'a')`);
    await p.replicate();
  });
  afterEach(async () => p?.dispose());

  /** Runs `statement` in its own transaction; returns its commit's WAL bracket and time. */
  const committed = (statement: string) =>
    withClient(p.sourceUrl, async (client) => {
      await client.query('BEGIN');
      await client.query(statement);
      const { rows } = await client.query<{ xid: string; before: string }>(
        `SELECT txid_current()::text AS xid, pg_current_wal_insert_lsn()::text AS before`,
      );
      await client.query('COMMIT');
      const { rows: after } = await client.query<{ after: string; at: string }>(
        `SELECT pg_current_wal_insert_lsn()::text AS after,
                to_char(pg_xact_commit_timestamp($1::text::xid) AT TIME ZONE 'UTC',
                        'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') AS at`,
        [rows[0]!.xid],
      );
      return { before: rows[0]!.before, after: after[0]!.after, at: after[0]!.at };
    });

  /** Later WAL (an unaudited table), so migrate's upper bound lies past the commit. */
  const moreWal = () => p.source(`INSERT INTO other SELECT generate_series(1, 100)`);

  const schemaChanges = async () => {
    const db = createKysely<unknown>(p.targetUrl, { max: 1, label: 'target' });
    try {
      // t is not partitioned: only column changes.
      return (await createHistory(db, { auditSchema: 'audit' }).schemaChanges(
        'public.t',
      )) as ColumnSchemaChange[];
    } finally {
      await db.destroy();
    }
  };

  const lsnBetween = async (lsn: string | null, from: string, to: string) => {
    const { rows } = await p.source(
      `SELECT $1::pg_lsn >= $2::pg_lsn AND $1::pg_lsn < $3::pg_lsn AS inside`,
      [lsn, from, to],
    );
    return rows[0]!.inside as boolean;
  };

  it('the engine stops at ADD COLUMN mid-stream: the entry carries that change’s commit time and LSN', async () => {
    await p.source(`INSERT INTO t VALUES (2, 'b')`);
    await p.source(`ALTER TABLE t ADD COLUMN note text`);
    const first = await committed(`UPDATE t SET note = 'n' WHERE id = 1`);
    await p.source(`INSERT INTO t VALUES (3, 'c', 'n3')`);
    await moreWal();
    await expect(p.replicate()).rejects.toThrow(/column "note" is not in staging/);
    await migrate(p);
    await p.replicate();
    const [entry, ...rest] = await schemaChanges();
    expect(rest).toEqual([]);
    expect(entry).toMatchObject({ change: 'ADD', column: 'note', commitTimestamp: first.at });
    expect(await lsnBetween(entry!.sourceLsn, first.before, first.after)).toBe(true);
    // audit-trail history schema public.t
    expect(formatSchemaChanges([entry!])).toContain(
      `(seen by migrate; first source change in the new shape: LSN ${entry!.sourceLsn}, committed ${first.at})`,
    );
    expect((await verify(p)).ok).toBe(true);
  });

  it('migrate first: the entries get the position when the engine applies the first change in the new shape', async () => {
    await p.source(`INSERT INTO t VALUES (2, 'old shape')`);
    await p.source(`ALTER TABLE t ADD COLUMN note text`);
    const first = await committed(`INSERT INTO t VALUES (3, 'c', 'n3')`);
    await p.source(`UPDATE t SET note = 'later' WHERE id = 3`);
    await moreWal();
    await migrate(p);
    const logged = await schemaChanges();
    expect(logged.map((c) => [c.change, c.column, c.commitTimestamp])).toEqual([
      ['ADD', 'note', null],
    ]);
    expect(await lsnBetween(logged[0]!.sourceLsn, first.after, 'FFFFFFFF/FFFFFFFF')).toBe(true);
    await p.replicate();
    const [entry] = await schemaChanges();
    expect(entry).toMatchObject({ change: 'ADD', column: 'note', commitTimestamp: first.at });
    expect(await lsnBetween(entry!.sourceLsn, first.before, first.after)).toBe(true);
    // Applied again after a restart: the position stays the first change's.
    await p.source(`UPDATE t SET note = 'again' WHERE id = 3`);
    await p.replicate();
    expect(await schemaChanges()).toEqual([entry]);
    expect((await verify(p)).ok).toBe(true);
  });

  it('a change logged before the position table existed (an upgraded install) is not dated by a later change', async () => {
    await p.source(`ALTER TABLE t ADD COLUMN note text`);
    await migrate(p);
    const [logged] = await schemaChanges();
    // The install as migration 0012 finds it on an upgrade: the log has the entry, the
    // engine may have applied its new shape long ago.
    await p.target(`DROP TABLE audit.schema_change_position`);
    const db = createKysely<unknown>(p.targetUrl, { max: 1, label: 'target' });
    try {
      await schemaChangePositionMigration('audit').up(db);
    } finally {
      await db.destroy();
    }
    await migrate(p); // grants and guards, as every migrate
    await p.source(`UPDATE t SET note = 'n' WHERE id = 1`);
    await p.replicate();
    expect(await schemaChanges()).toEqual([logged]);
    expect(logged).toMatchObject({ change: 'ADD', column: 'note', commitTimestamp: null });
  });

  it('two changes seen by two runs of migrate get the first change of each new shape, in order', async () => {
    await p.source(`ALTER TABLE t ADD COLUMN a int`);
    await migrate(p);
    const first = await committed(`INSERT INTO t VALUES (2, 'b', 1)`);
    await p.source(`ALTER TABLE t ADD COLUMN b text`);
    await migrate(p);
    const second = await committed(`UPDATE t SET b = 'new' WHERE id = 1`);
    await moreWal();
    await p.replicate();
    const changes = await schemaChanges();
    expect(changes.map((c) => [c.change, c.column, c.commitTimestamp])).toEqual([
      ['ADD', 'a', first.at],
      ['ADD', 'b', second.at],
    ]);
    expect(await lsnBetween(changes[0]!.sourceLsn, first.before, first.after)).toBe(true);
    expect(await lsnBetween(changes[1]!.sourceLsn, second.before, second.after)).toBe(true);
  });
});

import { CompiledQuery, sql, type Kysely } from 'kysely';
import { parseConfig, type AuditTrailConfig } from '../../src/config';
import { createHistory } from '../../src/history';
import { introspectSourceTables } from '../../src/migrate/introspect';
import { migrateTarget, migrateTargetWith } from '../../src/migrate/migrate-target';
import { readSourceLeaves } from '../../src/migrate/partition-log';
import { createKysely } from '../../src/postgres/connect';
import { createTestDatabase, withClient } from '../support/databases';
import { errorOf } from '../support/settled';

/**
 * Two migrate runs at once (two deploy pipelines, a retry beside a slow run) must
 * give what one run after the other gives. Each run compares what it read on the source
 * with what the last run recorded on the target; a run that read the source before
 * another run recorded a newer view would log the difference backwards: a column
 * "dropped" (and dropped from staging, where DMS still writes it), a partition
 * "detached", none of which happened.
 */

interface Urls {
  readonly sourceUrl: string;
  readonly targetUrl: string;
}

const configOf = (partitions: string[]) => parseConfig({ tables: [{ table: 'd', partitions }] });
const BEFORE = configOf(['d_eu', 'd_us']);

const onSource = async (urls: Urls, statements: string) =>
  withClient(urls.sourceUrl, (client) => client.query(statements));

const MIGRATE_LOCK = sql`hashtext('audit-trail:migrate')`;

/** Polls until a session in `target`'s database waits for an advisory lock. */
async function untilAdvisoryLockAwaited(target: Kysely<unknown>): Promise<void> {
  for (let tries = 0; tries < 600; tries++) {
    const { rows } = await sql<{ waiting: boolean }>`
      SELECT EXISTS (
        SELECT FROM pg_catalog.pg_locks
         WHERE locktype = 'advisory' AND NOT granted
           AND database = (SELECT oid FROM pg_catalog.pg_database WHERE datname = current_database())
      ) AS waiting`.execute(target);
    if (rows[0]!.waiting) return;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new Error('no session waited for the migrate lock within 30 s');
}

/**
 * A whole migrate run (source read, then target work) on `session`, which holds the
 * migrate lock: what a second `migrate` that got the lock first does.
 */
async function migrateHoldingTheLock(
  urls: Urls,
  session: Kysely<unknown>,
  config: AuditTrailConfig,
): Promise<void> {
  const source = createKysely<unknown>(urls.sourceUrl, { max: 1, label: 'source' });
  try {
    const tables = await introspectSourceTables(source, config);
    const leaves = await readSourceLeaves(
      async <Row>(text: string, values: readonly unknown[]) =>
        (await source.executeQuery(CompiledQuery.raw(text, [...values]))).rows as Row[],
      config.tables,
    );
    const { rows } = await sql<{ lsn: string }>`
      SELECT pg_current_wal_insert_lsn()::text AS lsn`.execute(source);
    await migrateTargetWith(session, config, tables, { sourceLsn: rows[0]!.lsn, leaves });
  } finally {
    await source.destroy();
  }
}

interface Race {
  /** What the run that waited ended with: null, or its error. */
  readonly waited: unknown;
  /** The schema-change log of `public.d`, as `[change, column or partition]`. */
  readonly logged: string[][];
  /** Whether staging has the column `note`. */
  readonly stagingHasNote: boolean;
}

/**
 * Migrate A (`waiting`) starts, and waits for the migrate lock that another run B holds;
 * meanwhile `change` runs on the source and B migrates with `holderConfig`; then B lets go.
 */
async function race(
  waiting: AuditTrailConfig,
  change: string,
  holderConfig: AuditTrailConfig,
): Promise<Race> {
  const urls = {
    sourceUrl: await createTestDatabase('cmsrc'),
    targetUrl: await createTestDatabase('cmtgt'),
  };
  await onSource(
    urls,
    `CREATE TABLE d (region text, id int, PRIMARY KEY (region, id)) PARTITION BY LIST (region);
     CREATE TABLE d_eu PARTITION OF d FOR VALUES IN ('EU');
     CREATE TABLE d_us PARTITION OF d FOR VALUES IN ('US')`,
  );
  await migrateTarget({ config: BEFORE, ...urls });
  const holder = createKysely<unknown>(urls.targetUrl, { max: 1, label: 'target' });
  const observer = createKysely<unknown>(urls.targetUrl, { max: 1, label: 'target' });
  try {
    const waited = await holder.connection().execute(async (session) => {
      await sql`SELECT pg_advisory_lock(${MIGRATE_LOCK})`.execute(session);
      const settled = errorOf(migrateTarget({ config: waiting, ...urls, lockTimeout: '60s' }));
      await untilAdvisoryLockAwaited(observer);
      await onSource(urls, change);
      await migrateHoldingTheLock(urls, session, holderConfig);
      await sql`SELECT pg_advisory_unlock(${MIGRATE_LOCK})`.execute(session);
      return settled;
    });
    const changes = await createHistory(observer, { auditSchema: 'audit' }).schemaChanges(
      'public.d',
    );
    const { rows } = await sql<{ has: boolean }>`
      SELECT EXISTS (SELECT FROM pg_catalog.pg_attribute
                      WHERE attrelid = 'audit.d_staging'::regclass AND attname = 'note'
                        AND NOT attisdropped) AS has`.execute(observer);
    return {
      waited,
      logged: changes.map((c) => [c.change, 'partition' in c ? c.partition.name : c.column]),
      stagingHasNote: rows[0]!.has,
    };
  } finally {
    await Promise.all([holder.destroy(), observer.destroy()]);
  }
}

describe('migrate: two runs at once', () => {
  it('a column added while a run waits for another: added once, never "dropped" from staging', async () => {
    const result = await race(BEFORE, `ALTER TABLE d ADD COLUMN note text`, BEFORE);
    expect(result.waited).toBeNull();
    expect(result.logged).toEqual([['ADD', 'note']]);
    expect(result.stagingHasNote).toBe(true);
  }, 120_000);

  it('a partition attached while a run with the old partition list waits: that run refuses, nothing is "detached"', async () => {
    const result = await race(
      BEFORE,
      `CREATE TABLE d_ap PARTITION OF d FOR VALUES IN ('AP')`,
      configOf(['d_eu', 'd_us', 'd_ap']),
    );
    expect(String(result.waited)).toMatch(/leaf partition\(s\) d_ap not listed/);
    expect(result.logged).toEqual([['ATTACH', 'd_ap']]);
  }, 120_000);

  it('a run that cannot get the lock in time says another migrate is running, and changes nothing', async () => {
    const urls = {
      sourceUrl: await createTestDatabase('cmsrc'),
      targetUrl: await createTestDatabase('cmtgt'),
    };
    await onSource(urls, `CREATE TABLE d (region text, id int, PRIMARY KEY (region, id))`);
    const plain = parseConfig({ tables: [{ table: 'd' }] });
    const holder = createKysely<unknown>(urls.targetUrl, { max: 1, label: 'target' });
    try {
      await holder.connection().execute(async (session) => {
        await sql`SELECT pg_advisory_lock(${MIGRATE_LOCK})`.execute(session);
        const error = await migrateTarget({ config: plain, ...urls, lockTimeout: '500ms' }).catch(
          (e: unknown) => e,
        );
        expect(error).toMatchObject({
          code: 'MIGRATE_LOCK_TIMEOUT',
          message: expect.stringMatching(/^another migrate is running on this target/),
        });
        const { rows } = await sql<{ n: number }>`
          SELECT count(*)::int AS n FROM pg_catalog.pg_namespace WHERE nspname = 'audit'`.execute(
          session,
        );
        expect(rows).toEqual([{ n: 0 }]);
      });
    } finally {
      await holder.destroy();
    }
  }, 60_000);
});

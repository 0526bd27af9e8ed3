import { randomBytes } from 'node:crypto';
import { parseConfig } from '../../src/config';
import { createEngine, silentLogger, SourceSetupError } from '../../src/engine';
import { startLocalPostgres } from '../../src/postgres/local-server';
import { createTestDatabase, withClient } from '../support/databases';
import { connectionArgs, runCli, writeConfig } from '../support/cli';
import { createPipeline } from './helpers';

describe('engine: clear errors for an unusable source', () => {
  it('refuses a source without wal_level=logical, saying how to fix it', async () => {
    const server = await startLocalPostgres({ settings: { wal_level: 'replica' } });
    try {
      const url = server.url();
      await withClient(url, (client) => client.query('CREATE TABLE t (id int PRIMARY KEY)'));
      const engine = createEngine({
        config: parseConfig({ tables: [{ table: 't' }] }),
        sourceUrl: url,
        targetUrl: url,
        logger: silentLogger,
      });
      const failure = engine.runUntilIdle();
      await expect(failure).rejects.toBeInstanceOf(SourceSetupError);
      await expect(failure).rejects.toThrow(
        /wal_level is "replica".*wal_level=logical.*rds\.logical_replication=1/,
      );
    } finally {
      await server.stop();
    }
  });

  it('refuses a table without a primary key, naming it (CLI: one line, exit 1)', async () => {
    const sourceUrl = await createTestDatabase('engsrc');
    const targetUrl = await createTestDatabase('engtgt');
    await withClient(sourceUrl, (client) =>
      client.query('CREATE SCHEMA app; CREATE TABLE app."Log Book" (at timestamptz, line text)'),
    );
    const configFile = await writeConfig({ tables: [{ schema: 'app', table: 'Log Book' }] });
    const slot = `test_${randomBytes(6).toString('hex')}`;
    const run = await runCli([
      'replicate',
      ...connectionArgs({ configFile, sourceUrl, targetUrl, slotName: slot }),
      '--until-idle',
    ]);
    expect(run.code).toBe(1);
    expect(run.stderr.trim()).toMatch(
      /^audit-trail: error \[SOURCE_SETUP\]: source table "app\.Log Book" has no primary key/,
    );
    const { rows } = await withClient(sourceUrl, (client) =>
      client.query('SELECT count(*)::int AS n FROM pg_replication_slots WHERE slot_name = $1', [
        slot,
      ]),
    );
    expect(rows[0].n).toBe(0); // nothing left behind
  });
});

describe('engine: a target migrate has not fully installed', () => {
  it('stops with the missing table and the remedy, and creates no slot', async () => {
    const p = await createPipeline('CREATE TABLE t (id int PRIMARY KEY)', {
      tables: [{ table: 't' }],
    });
    try {
      await p.target(`DROP TABLE ${p.config.auditSchema}.cdc_engine_loaded_table`);
      const failure = p.replicate();
      await expect(failure).rejects.toMatchObject({
        code: 'TARGET_NOT_MIGRATED',
        kind: 'usage',
        hint: 'run "audit-trail migrate" first',
      });
      await expect(failure).rejects.toThrow(/cdc_engine_loaded_table/);
      const { rows } = await p.source(
        'SELECT count(*)::int AS n FROM pg_replication_slots WHERE slot_name = $1',
        [p.slotName],
      );
      expect(rows[0].n).toBe(0);
    } finally {
      await p.dispose();
    }
  });

  it('stops on a position table without the acknowledged position (migration 0025)', async () => {
    const p = await createPipeline('CREATE TABLE t (id int PRIMARY KEY)', {
      tables: [{ table: 't' }],
    });
    try {
      await p.target(`ALTER TABLE ${p.config.auditSchema}.cdc_engine_position DROP acked_lsn`);
      const failure = p.replicate();
      await expect(failure).rejects.toMatchObject({ code: 'TARGET_NOT_MIGRATED' });
      await expect(failure).rejects.toThrow(
        /the target has no "audit"\."cdc_engine_position"\.acked_lsn$/,
      );
    } finally {
      await p.dispose();
    }
  });
});

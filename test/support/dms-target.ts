import { Kysely, PostgresDialect } from 'kysely';
import pg from 'pg';
import { parseConfig, type AuditTrailConfig, type AuditTrailConfigInput } from '../../src/config';
import { migrateTarget } from '../../src/migrate/migrate-target';
import { createTestDatabase, withClient } from './databases';

/**
 * A target migrated for a source schema, for tests that write staging rows as DMS
 * does (see `DmsApplier`) and read them back through the history API.
 */
export interface DmsTarget {
  readonly sourceUrl: string;
  readonly targetUrl: string;
  readonly config: AuditTrailConfig;
  /** One open connection to the target, as DMS's applier holds one. */
  readonly client: pg.Client;
  /** kysely on the target, for `createHistory`. */
  readonly db: Kysely<unknown>;
  /** Closes the connection and the pool. */
  close(): Promise<void>;
}

/** Creates a source with `sourceDdl` and a target migrated for `config`'s tables. */
export async function createDmsTarget(
  sourceDdl: string,
  config: AuditTrailConfigInput,
): Promise<DmsTarget> {
  const sourceUrl = await createTestDatabase('src');
  const targetUrl = await createTestDatabase('tgt');
  await withClient(sourceUrl, (client) => client.query(sourceDdl));
  const parsed = parseConfig(config);
  await migrateTarget({ config: parsed, sourceUrl, targetUrl });
  const client = new pg.Client({ connectionString: targetUrl });
  await client.connect();
  const db = new Kysely<unknown>({
    dialect: new PostgresDialect({ pool: new pg.Pool({ connectionString: targetUrl }) }),
  });
  return {
    sourceUrl,
    targetUrl,
    config: parsed,
    client,
    db,
    close: async () => {
      await client.end();
      await db.destroy();
    },
  };
}

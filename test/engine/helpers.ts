import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { parseConfig, type AuditTrailConfig, type AuditTrailConfigInput } from '../../src/config';
import {
  createEngine,
  silentLogger,
  type Engine,
  type EngineOptions,
  type EngineRunResult,
} from '../../src/engine';
import { migrateTarget } from '../../src/migrate/migrate-target';
import { verifyAuditTrail, type VerifyReport } from '../../src/verify';
import { createTestDatabase, withClient } from '../support/databases';

/** A source and a target database with the kit installed, and a unique slot. */
export interface Pipeline {
  readonly sourceUrl: string;
  readonly targetUrl: string;
  readonly config: AuditTrailConfig;
  readonly slotName: string;
  /** Runs SQL on the source. */
  source(sql: string, values?: unknown[]): Promise<pg.QueryResult>;
  /** Runs SQL on the target. */
  target(sql: string, values?: unknown[]): Promise<pg.QueryResult>;
  /** An engine on the pipeline's databases and slot (silent, no lag reports) to run. */
  engine(options?: Partial<EngineOptions>): Engine;
  /** Runs the engine until everything committed so far is applied. */
  replicate(options?: Partial<EngineOptions>): Promise<EngineRunResult>;
  /** Runs verify over the pipeline's config, source and target. */
  verify(): Promise<VerifyReport>;
  /** Drops the slot (slots pin WAL on the shared server). */
  dispose(): Promise<void>;
}

/**
 * Creates both databases, runs `sourceDdl` on the source (then `prepareSource`, e.g. the
 * source context install) and migrates the target.
 */
export async function createPipeline(
  sourceDdl: string,
  config: AuditTrailConfigInput,
  prepareSource?: (sourceUrl: string, config: AuditTrailConfig) => Promise<void>,
): Promise<Pipeline> {
  const sourceUrl = await createTestDatabase('engsrc');
  const targetUrl = await createTestDatabase('engtgt');
  const parsed = parseConfig(config);
  await withClient(sourceUrl, (client) => client.query(sourceDdl));
  await prepareSource?.(sourceUrl, parsed);
  await migrateTarget({ config: parsed, sourceUrl, targetUrl });
  const slotName = `test_${randomBytes(6).toString('hex')}`;
  const run = (url: string) => (sql: string, values?: unknown[]) =>
    withClient(url, (client) => client.query(sql, values));
  const engine = (options: Partial<EngineOptions> = {}) =>
    createEngine({
      config: parsed,
      sourceUrl,
      targetUrl,
      slotName,
      logger: silentLogger,
      lagIntervalMs: 0,
      ...options,
    });
  return {
    sourceUrl,
    targetUrl,
    config: parsed,
    slotName,
    source: run(sourceUrl),
    target: run(targetUrl),
    engine,
    replicate: (options = {}) => engine(options).runUntilIdle(),
    verify: () => verifyAuditTrail({ config: parsed, sourceUrl, targetUrl }),
    dispose: () => dropSlot(sourceUrl, slotName),
  };
}

/** Drops a replication slot if it exists, waiting for a dead engine's walsender to go. */
export async function dropSlot(sourceUrl: string, slotName: string): Promise<void> {
  await withClient(sourceUrl, async (client) => {
    for (let attempt = 0; attempt < 50; attempt++) {
      const { rows } = await client.query<{ active_pid: number | null }>(
        'SELECT active_pid FROM pg_replication_slots WHERE slot_name = $1',
        [slotName],
      );
      if (rows.length === 0) return;
      if (rows[0]!.active_pid !== null)
        await client.query('SELECT pg_terminate_backend($1)', [rows[0]!.active_pid]);
      else {
        await client
          .query('SELECT pg_drop_replication_slot($1)', [slotName])
          .catch(() => undefined);
      }
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  });
}

/** Every audit row of a table in history order, as plain objects. */
export async function auditRows(
  pipeline: Pipeline,
  table: string,
): Promise<Record<string, unknown>[]> {
  const { rows } = await pipeline.target(
    `SELECT row_key, operation, change_seq, transaction_id, stream_position, old_row, new_row, changed_columns,
            to_char(commit_timestamp AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS.US') AS commit_timestamp
       FROM audit.audit_log WHERE source_table = $1 ORDER BY change_seq NULLS FIRST, id`,
    [table],
  );
  return rows as Record<string, unknown>[];
}

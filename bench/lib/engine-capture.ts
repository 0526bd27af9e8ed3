import { quoteIdent } from '../../src/postgres/identifiers';
import { parseConfig, type AuditTrailConfig } from '../../src/config';
import { migrateTarget } from '../../src/migrate/migrate-target';
import type { CaptureDriver, LiveCapture } from './capture';
import type { BenchContext } from './profile';
import { withClient, type BenchServers } from './servers';

/** Where the capture runs and what it covers. */
export interface CaptureOptions {
  readonly sourceUrl: string;
  readonly targetUrl: string;
  /** Audited tables in `public`. */
  readonly tables: readonly string[];
}

/** The engine module, loaded lazily so the other cases run while it is missing. */
type EngineModule = typeof import('../../src/engine');

/** Loads the local CDC engine, or says why it cannot. */
export async function loadEngine(): Promise<{ engine: EngineModule | null; missing?: string }> {
  try {
    const engine = (await import('../../src/engine')) as EngineModule;
    if (typeof engine.createEngine !== 'function')
      return { engine: null, missing: 'src/engine exports no createEngine' };
    return { engine };
  } catch (error) {
    return {
      engine: null,
      missing: `the local CDC engine could not be loaded: ${(error as Error).message.split('\n')[0]}`,
    };
  }
}

/** The bench's config for `tables` in `public`, with the default audit schema. */
export function benchConfig(tables: readonly string[]): AuditTrailConfig {
  return parseConfig({ tables: tables.map((table) => ({ table })) });
}

/** The `items` table the engine cases write: a key, text, numeric, int and a timestamp. */
export const ITEMS_DDL = `CREATE TABLE items (id bigint PRIMARY KEY, name text NOT NULL, price numeric(12,2) NOT NULL,
  qty int NOT NULL, updated_at timestamptz NOT NULL DEFAULT now())`;

/**
 * Creates `<prefix>_source` (with the `items` table, then `setup`) and `<prefix>_target`
 * on the bench servers, and installs the kit for `tables` on the target.
 */
export async function prepareItemsDatabases(
  servers: BenchServers,
  prefix: string,
  tables: readonly string[] = ['items'],
  setup: (sourceUrl: string) => Promise<void> = async () => undefined,
): Promise<{ sourceUrl: string; targetUrl: string; config: AuditTrailConfig }> {
  const sourceUrl = await servers.source.createDatabase(`${prefix}_source`);
  const targetUrl = await servers.target.createDatabase(`${prefix}_target`);
  await withClient(sourceUrl, (client) => client.query(ITEMS_DDL));
  await setup(sourceUrl);
  const config = benchConfig(tables);
  await migrateTarget({ config, sourceUrl, targetUrl });
  return { sourceUrl, targetUrl, config };
}

/**
 * Installs the kit on the target (`migrateTarget`) and returns a driver that runs the
 * kit's engine in this process: the runner only waits on pgbench while it runs, so
 * the engine has this process to itself.
 */
export async function createCapture(
  _ctx: BenchContext,
  options: CaptureOptions,
): Promise<{ driver: CaptureDriver | null; missing?: string }> {
  const { engine, missing } = await loadEngine();
  if (!engine) return { driver: null, ...(missing === undefined ? {} : { missing }) };
  const config = benchConfig(options.tables);
  await migrateTarget({ config, sourceUrl: options.sourceUrl, targetUrl: options.targetUrl });
  const make = () =>
    engine.createEngine({
      config,
      sourceUrl: options.sourceUrl,
      targetUrl: options.targetUrl,
      logger: engine.silentLogger,
      lagIntervalMs: 0,
    });
  const catchUp = async () => {
    const started = process.hrtime.bigint();
    const result = await make().runUntilIdle();
    return { applyMs: Number(process.hrtime.bigint() - started) / 1e6, changes: result.changes };
  };
  const slot = engine.defaultSlotName(options.sourceUrl, options.targetUrl, config.auditSchema);
  const driver: CaptureDriver = {
    catchUp,
    async discardBacklog() {
      const advancedTo = await withClient(options.sourceUrl, async (client) => {
        const { rows } = await client.query<{ lsn: string }>(
          'SELECT end_lsn::text AS lsn FROM pg_replication_slot_advance($1, pg_current_wal_lsn())',
          [slot],
        );
        return rows[0]!.lsn;
      });
      // The slot now skips changes no target applies (the untimed workloads of other
      // cases): the target's acknowledged position says so, or the engine would refuse
      // the target as one restored from a backup, behind its slot (TARGET_BEHIND_SLOT).
      await withClient(options.targetUrl, (client) =>
        client.query(
          `UPDATE ${quoteIdent(config.auditSchema)}.cdc_engine_position
              SET acked_lsn = $2::pg_lsn
            WHERE slot_name = $1 AND (acked_lsn IS NULL OR acked_lsn < $2::pg_lsn)`,
          [slot, advancedTo],
        ),
      );
    },
    async startLive(): Promise<LiveCapture> {
      const live = make();
      const running = live.run();
      running.catch(() => undefined);
      // Wait until it streams, so the timed workload does not include start-up.
      const deadline = Date.now() + 30_000;
      while (live.status().phase !== 'streaming' && Date.now() < deadline) {
        if (live.status().phase === 'stopped') break;
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
      return {
        async stop() {
          const behindBytes = await withClient(options.sourceUrl, async (client) => {
            const { rows } = await client.query<{ behind: string }>(
              `SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), confirmed_flush_lsn)::bigint AS behind
               FROM pg_replication_slots WHERE slot_name = $1`,
              [slot],
            );
            return Number(rows[0]?.behind ?? 0);
          });
          await live.stop();
          await running;
          return { behindBytes };
        },
      };
    },
    async close() {},
  };
  return { driver };
}

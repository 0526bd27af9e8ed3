/**
 * The client CPU of converting a history first page (#14), not a bench case: the history
 * API's work after node-postgres, alone. Each page's rows (keys with at least 100
 * versions, the case's audit log) are read once from the server, then replayed from memory
 * into the API on every call: a kysely `PostgresDialect` over a pool whose page statement
 * answers with a copy of those rows, so no socket, no server and no node-postgres parse
 * are in the figure, and the machine's load moves it less than a wall-clock or
 * whole-process figure. Each checkout runs in a process of its own (its `src/` under tsx,
 * as the bench runs the kit), the checkouts alternated `--pairs` times; each run prints
 * the median and minimum CPU per page over its rounds.
 *
 * Usage: `npx tsx bench/cases/history-replay.ts --kit DIR [--kit DIR ...] [--rows N]
 * [--keys K] [--rounds R] [--pairs P]`, each DIR a checkout of the kit.
 */
import { parseArgs } from 'node:util';
import { Kysely, PostgresDialect } from 'kysely';
import pg from 'pg';
import { withClient } from '../lib/servers';
import { importKitHistory, KIT_TOOL_OPTIONS, runKitRounds } from './history-kits';

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      ...KIT_TOOL_OPTIONS,
      keys: { type: 'string', default: '100' },
      rounds: { type: 'string', default: '20' },
      pairs: { type: 'string', default: '3' },
    },
  });
  if (values.child !== undefined) {
    return replay(values.child, values.kit![0]!, Number(values.keys), Number(values.rounds));
  }
  if (values.kit === undefined) throw new Error('--kit DIR (one or more checkouts)');
  await runKitRounds({
    script: __filename,
    kits: values.kit,
    rows: Number(values.rows),
    rounds: Number(values.pairs),
    roundName: 'pair',
    runs: [{ args: ['--keys', values.keys!, '--rounds', values.rounds!] }],
  });
}

/** One checkout's replayed first pages: median and minimum CPU ms per page. */
async function replay(url: string, kit: string, keys: number, rounds: number): Promise<void> {
  const { createHistory } = await importKitHistory(kit, 'src');
  const sampled = await withClient(url, async (client) => {
    await client.query('SELECT setseed(0.3)');
    const { rows } = await client.query<{ key: string }>(`
      SELECT row_key ->> 'id' AS key FROM audit.audit_log WHERE source_table = 'items'
      GROUP BY 1 HAVING count(*) >= 100 ORDER BY random() LIMIT ${keys}`);
    return rows.map((row) => Number(row.key));
  });
  const server = new pg.Client({ connectionString: url });
  await server.connect();
  // The first page's statement (per key, with a limit) answers from memory after its
  // first call for a key; every other statement (the key facts) goes to the server.
  const pages = new Map<string, pg.QueryResult>();
  const pool = {
    connect: async () => ({
      async query(text: string, parameters: unknown[]) {
        if (!(text.includes('as "ctx"') && /order by l\.id limit \$\d+\s*$/.test(text))) {
          return server.query(text, parameters);
        }
        const key = JSON.stringify(parameters);
        let page = pages.get(key);
        if (page === undefined) {
          page = await server.query(text, parameters);
          pages.set(key, page);
        }
        return { ...page, rows: page.rows.map((row: object) => ({ ...row })) };
      },
      release: () => undefined,
    }),
    end: async () => undefined,
  };
  const db = new Kysely<unknown>({
    dialect: new PostgresDialect({ pool: pool as unknown as pg.Pool }),
  });
  const history = createHistory(db);
  const firstPage = (key: number) => history.history('public.items', { id: key }, {});
  // Fills the answers, then warms up.
  for (let round = 0; round < 4; round++) for (const key of sampled) await firstPage(key);
  if (pages.size !== sampled.length) throw new Error('the first page statement was not replayed');
  const perPage: number[] = [];
  for (let round = 0; round < rounds; round++) {
    const before = process.cpuUsage();
    for (const key of sampled) await firstPage(key);
    const used = process.cpuUsage(before);
    perPage.push((used.user + used.system) / 1000 / sampled.length);
  }
  await server.end();
  perPage.sort((a, b) => a - b);
  console.log(
    `conversion CPU per first page: median ${perPage[perPage.length >> 1]!.toFixed(3)} ms, minimum ${perPage[0]!.toFixed(3)} ms (${sampled.length} keys x ${rounds} rounds)`,
  );
}

void main().catch((error: unknown) => {
  console.error(error);
  process.exitCode = 1;
});

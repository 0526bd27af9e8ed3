/**
 * Peak resident memory (VmHWM) of the engine applying a hot-key backlog, A/B of two
 * checkouts (#14), not a bench case. A hot key is a row updated again and again (a
 * counter): the staging writer keeps more than one open batch per shape for it, so
 * the rows it holds unsent depend on how the keys repeat, not only on the batch size.
 *
 * Each run: fresh source and target databases on the bench's servers, `keys` rows of
 * case 2's `items` table loaded by a first engine run, then `updates` single-row
 * UPDATEs cycling over those keys, committed either in one transaction (`--commit
 * one`) or in transactions of 10 (`--commit many`); then the checkout's
 * `bench/workers/engine-worker.ts` applies them in a child process and reports its
 * VmHWM. The variants take turns, the order alternating every round.
 *
 * Usage: `npx tsx bench/tools/engine-memory.ts --base DIR [--head DIR] [--rounds N] [--keys K]
 *         [--updates N] [--commit one|many]`
 */
import { execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';
import { parseArgs } from 'node:util';
import { prepareItemsDatabases } from '../lib/engine-capture';
import { startServers, withClient } from '../lib/servers';

const run = promisify(execFile);

const { values: options } = parseArgs({
  options: {
    base: { type: 'string' },
    head: { type: 'string' },
    rounds: { type: 'string', default: '3' },
    keys: { type: 'string', default: '1500' },
    updates: { type: 'string', default: '200000' },
    commit: { type: 'string', default: 'one' },
  },
});

interface Report {
  readonly changes: number;
  readonly applyMs: number;
  readonly baselineHwmKb: number;
  readonly peakHwmKb: number;
}

async function applyWith(root: string, sourceUrl: string, targetUrl: string): Promise<Report> {
  const worker = path.join(root, 'bench', 'workers', 'engine-worker.ts');
  const { stdout } = await run(
    process.execPath,
    ['--import', 'tsx', worker, JSON.stringify({ sourceUrl, targetUrl, tables: ['items'] })],
    { cwd: root, maxBuffer: 1 << 24 },
  );
  return JSON.parse(stdout.trim().split('\n').pop()!) as Report;
}

async function main(): Promise<void> {
  if (!options.base) throw new Error('--base DIR is required');
  const keys = Number(options.keys);
  const updates = Number(options.updates);
  const every = options.commit === 'many' ? 10 : updates;
  const variants = [
    { name: 'base', root: path.resolve(options.base) },
    { name: 'head', root: path.resolve(options.head ?? path.join(__dirname, '..', '..')) },
  ];
  const servers = await startServers();
  const results: Record<string, number[]> = { base: [], head: [] };
  try {
    for (let round = 0; round < Number(options.rounds); round++) {
      const order = round % 2 === 0 ? variants : [...variants].reverse();
      for (const variant of order) {
        const prefix = `hot_${variant.name}_${round}`;
        const { sourceUrl, targetUrl } = await prepareItemsDatabases(servers, prefix);
        await withClient(sourceUrl, (client) =>
          client.query(
            `INSERT INTO items (id, name, price, qty) SELECT g, 'hot key ' || g, 1.5, 0 FROM generate_series(1, $1) g`,
            [keys],
          ),
        );
        await applyWith(variant.root, sourceUrl, targetUrl);
        await withClient(sourceUrl, (client) =>
          client.query(
            `DO $$ BEGIN FOR i IN 0..${updates - 1} LOOP
               UPDATE items SET qty = qty + 1 WHERE id = i % ${keys} + 1;
               IF i % ${every} = ${every - 1} THEN COMMIT; END IF;
             END LOOP; END $$`,
          ),
        );
        const report = await applyWith(variant.root, sourceUrl, targetUrl);
        if (report.changes !== updates)
          throw new Error(`${variant.name}: ${report.changes} changes, expected ${updates}`);
        results[variant.name]!.push(report.peakHwmKb / 1024);
        console.log(
          `round ${round} ${variant.name}: peak RSS ${(report.peakHwmKb / 1024).toFixed(1)} MB, apply ${(report.applyMs / 1000).toFixed(1)} s`,
        );
      }
    }
  } finally {
    await servers.stop();
  }
  for (const [name, peaks] of Object.entries(results))
    console.log(`${name}: ${peaks.map((mb) => mb.toFixed(1)).join(' / ')} MB`);
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});

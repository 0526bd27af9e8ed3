import { mkdtemp, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { withClient } from '../support/databases';
import { connectionArgs, runSourceCli } from '../support/cli';
import { enableKitTriggers } from '../support/kit-triggers';
import { installWithHistory } from './support';

/** Audit rows added, in blocks of this many (the size the engine's statements make). */
const ROWS = 200_000;
const BLOCK_ROWS = 500;
/**
 * The CLI's V8 heap cap. The check holds four cursor pages (5,000 small rows each) and
 * at most 20,000 remembered row hashes, whatever the log's size. Before, blocks of up to
 * 500 rows came inline in the block cursor's pages of 5,000 blocks: these 400 blocks
 * were one page of 200,000 ids and hashes, and the CLI ran out of heap (as it did at
 * 28 MB with 150,000 rows and at 48 MB with 600,000).
 */
const HEAP_MB = 32;

/**
 * Appends `rows` audit rows to the log and seals them with the kit's own seal_block, in
 * blocks of `blockRows`: the chain verify must accept, built without the capture path's
 * per-row work (the superuser switches the guards off for the insert only). The rows
 * are shaped like the engine's: a key, a small new row and the DMS headers.
 */
async function bulkChain(targetUrl: string, rows: number, blockRows: number) {
  await withClient(targetUrl, async (client) => {
    await client.query(`ALTER TABLE audit.audit_log DISABLE TRIGGER USER`);
    await client.query(
      `INSERT INTO audit.audit_log (source_schema, source_table, row_key, operation, commit_timestamp,
         change_seq, transaction_id, stream_position, new_row)
       SELECT 'public', 'items', jsonb_build_object('id', n), 'INSERT',
              timestamptz '2026-11-22 12:00:00+00' + n * interval '1 ms',
              '2026112212000000' || lpad(n::text, 19, '0'), (n / 100)::text, '0/1',
              jsonb_build_object('id', n, 'name', 'bulk row ' || n)
         FROM generate_series(1000000, 1000000 + $1 - 1) AS n`,
      [rows],
    );
    await client.query(enableKitTriggers('audit_log'));
    await client.query(`BEGIN; SELECT audit.lock_chain();
      DO $$ BEGIN
        WHILE audit.seal_block('capture', ${blockRows}) = ${blockRows} LOOP END LOOP;
      END $$; COMMIT`);
  });
}

/**
 * `verify --integrity` streams: its memory must not grow with the log, whatever the
 * shape of its blocks (the issue: flat at 10M rows; `npm run bench` reports the peak RSS
 * at 10M rows as verify_integrity_peak_rss_mb). Here it is pass or fail: the CLI runs in
 * its own process under a small heap cap, on a log whose old reading needed more.
 */
describe('verify --integrity memory', () => {
  it(`checks ${ROWS.toLocaleString('en-US')} rows in ${BLOCK_ROWS}-row blocks under a ${HEAP_MB} MB heap`, async () => {
    const install = await installWithHistory();
    await bulkChain(install.targetUrl, ROWS, BLOCK_ROWS);
    const dir = await mkdtemp(path.join(os.tmpdir(), 'integrity-memory-'));
    const config = path.join(dir, 'audit-trail.config.json');
    await writeFile(config, JSON.stringify({ tables: [{ table: 'items' }] }));
    // From the sources, as when the heap cap was chosen: tsx's own heap is part of what
    // the cap leaves room for, so the built CLI would have more room and the check less bite.
    const result = await runSourceCli(
      [
        'verify',
        '--integrity',
        '--json',
        ...connectionArgs({ configFile: config, targetUrl: install.targetUrl }),
      ],
      { NODE_OPTIONS: `--max-old-space-size=${HEAP_MB}` },
    );
    expect(result.stderr).not.toMatch(/heap out of memory/);
    expect(result.code).toBe(0);
    expect(JSON.parse(result.stdout)).toMatchObject({ ok: true, rows: ROWS + 3, findingCount: 0 });
  }, 600_000);
});

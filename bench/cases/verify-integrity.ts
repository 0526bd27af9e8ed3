import path from 'node:path';
import type { BenchCase } from '.';
import { parseConfig } from '../../src/config';
import { migrateTarget } from '../../src/migrate/migrate-target';
import { startLocalPostgres } from '../../src/postgres/local-server';
import { figure } from '../lib/figures';
import { run } from '../lib/processes';
import { withClient } from '../lib/servers';
import { round } from '../lib/stats';
import { quoteIdent } from '../../src/postgres/identifiers';
import { generateAuditRows } from './history';

/**
 * The chain's block shapes, repeated until every row is sealed: one-row DMS statements
 * sealed at commit (blocks of a transaction's few rows), the engine's multi-row
 * statements (hundreds), and the 10,000-row blocks of large statements and transactions.
 * 100 blocks of 2 rows, 20 of 500 and one of 10,000: 20,200 rows per 121 blocks. (Blocks
 * of up to 500 rows were what made verify's memory grow: they came inline, 5,000 to a page.)
 */
const BLOCK_CYCLE = [...Array<number>(100).fill(2), ...Array<number>(20).fill(500), 10_000];

/**
 * verify --integrity memory (#9: "streaming, memory flat at 10M rows"): the peak
 * resident set of one `verify --integrity` over a hash chain of `verifyRows` audit
 * rows (quick 1M, full 10M), in its own process. The rows are written in the capture
 * path's shape (as for the history case) and sealed by the kit's own seal_block in the
 * block sizes of BLOCK_CYCLE; the check must come out clean over all of them.
 */
export const verifyIntegrityCase: BenchCase = {
  title: 'verify --integrity peak RSS over a hash chain of verifyRows audit rows',
  figures: ['verify_integrity_peak_rss_mb'],
  async run(ctx) {
    const rows = ctx.profile.verifyRows;
    const server = await startLocalPostgres({
      settings: { shared_buffers: '512MB', max_wal_size: '8GB' },
    });
    try {
      const sourceUrl = await server.createDatabase('verify_source');
      const targetUrl = await server.createDatabase('verify_target');
      await withClient(sourceUrl, (client) =>
        client.query('CREATE TABLE items (id bigint PRIMARY KEY, name text NOT NULL)'),
      );
      const config = parseConfig({ tables: [{ table: 'items' }] });
      await migrateTarget({ config, sourceUrl, targetUrl });
      let started = Date.now();
      await generateAuditRows(targetUrl, rows);
      const generatedS = (Date.now() - started) / 1000;
      started = Date.now();
      const blocks = await sealInCycle(targetUrl, config.auditSchema);
      const sealedS = (Date.now() - started) / 1000;
      ctx.log(
        `  ${rows.toLocaleString('en-US')} audit rows in ${generatedS.toFixed(0)} s, sealed into ${blocks.toLocaleString('en-US')} blocks in ${sealedS.toFixed(0)} s`,
      );
      const worker = path.join(__dirname, '..', 'workers', 'verify-integrity-worker.ts');
      const { stdout } = await run(process.execPath, [
        '--import',
        'tsx',
        worker,
        JSON.stringify({ targetUrl, auditSchema: config.auditSchema }),
      ]);
      const report = JSON.parse(stdout.trim().split('\n').pop()!) as {
        ok: boolean;
        rows: number;
        blocks: number;
        findingCount: number;
        verifyMs: number;
        baselineHwmKb: number;
        peakHwmKb: number;
      };
      // Every row verify must check: the generated versions and each transaction's
      // context row (generateAuditRows writes both, as capture does).
      const logged = await withClient(targetUrl, async (client) => {
        const { rows: counted } = await client.query<{ n: string }>(
          `SELECT count(*) AS n FROM ${quoteIdent(config.auditSchema)}.audit_log`,
        );
        return Number(counted[0]!.n);
      });
      if (!report.ok || report.rows !== logged)
        throw new Error(
          `verify --integrity did not check the bench chain clean: ${JSON.stringify(report)}`,
        );
      const peakMb = report.peakHwmKb / 1024;
      ctx.log(
        `  verify --integrity: ${report.rows} rows, ${report.blocks} blocks in ${(report.verifyMs / 1000).toFixed(0)} s, peak RSS ${peakMb.toFixed(0)} MB (start ${(report.baselineHwmKb / 1024).toFixed(0)} MB)`,
      );
      const detail = {
        rows: report.rows,
        blocks: report.blocks,
        blockCycle: '100 x 2 rows, 20 x 500, 1 x 10,000',
        verifySeconds: round(report.verifyMs / 1000, 3),
        rowsPerSecond: round(report.rows / (report.verifyMs / 1000), 4),
        processStartMb: round(report.baselineHwmKb / 1024, 4),
        generateSeconds: round(generatedS, 3),
        sealSeconds: round(sealedS, 3),
        method:
          'verifyIntegrity alone in a child process (node + tsx), default heap; VmHWM from /proc/self/status at the end',
      };
      return {
        figures: [
          figure('verify_integrity_peak_rss_mb', round(peakMb, 4), {
            note:
              `${report.rows.toLocaleString('en-US')} audit rows (${rows.toLocaleString('en-US')} versions and their transactions' context rows), ${report.blocks.toLocaleString('en-US')} blocks` +
              (rows < 10_000_000 ? ' (quick profile; --full uses 10,000,000)' : ''),
            detail,
          }),
        ],
        detail,
      };
    } finally {
      await server.stop();
    }
  },
};

/** Seals every unsealed audit row with the kit's seal_block, in BLOCK_CYCLE's sizes. */
async function sealInCycle(targetUrl: string, auditSchema: string): Promise<number> {
  return withClient(targetUrl, async (client) => {
    const schema = client.escapeIdentifier(auditSchema);
    await client.query('BEGIN');
    await client.query(`SELECT ${schema}.lock_chain()`);
    const { rows } = await client.query<{ blocks: number }>(
      `WITH RECURSIVE sealing (n, sealed) AS (
         SELECT 0, NULL::integer
         UNION ALL
         SELECT n + 1, ${schema}.seal_block('capture', ($1::integer[])[n % $2 + 1])
           FROM sealing WHERE sealed IS NULL OR sealed > 0)
       SELECT (count(*) FILTER (WHERE sealed > 0))::integer AS blocks FROM sealing`,
      [BLOCK_CYCLE, BLOCK_CYCLE.length],
    );
    await client.query('COMMIT');
    return rows[0]!.blocks;
  });
}

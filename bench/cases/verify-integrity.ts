import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
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

/** The repository's root (this file is bench/cases/verify-integrity.ts). */
const ROOT = path.join(__dirname, '..', '..');

/**
 * Versions to generate instead of the profile's `verifyRows`, for a mid-size run
 * (`BENCH_VERIFY_ROWS=4000000 npm run bench -- --only verify`); unset, the profile's.
 */
function verifyRowsOf(profileRows: number): number {
  const override = process.env.BENCH_VERIFY_ROWS;
  if (override === undefined || override === '') return profileRows;
  const rows = Number(override);
  if (!Number.isInteger(rows) || rows < 1)
    throw new Error(`BENCH_VERIFY_ROWS must be a positive integer, not "${override}"`);
  return rows;
}

/**
 * verify --integrity memory (#9: "streaming, memory flat at 10M rows"): the peak
 * resident set of one `audit-trail verify --integrity` over a hash chain of `verifyRows`
 * audit rows (quick 1M, full 10M; BENCH_VERIFY_ROWS overrides), in its own process: the
 * CLI as a user runs it, built (`tsc`, first) and run by plain node. The rows are written
 * in the capture path's shape (as for the history case) and sealed by the kit's own
 * seal_block in the block sizes of BLOCK_CYCLE; the check must come out clean over all
 * of them.
 */
export const verifyIntegrityCase: BenchCase = {
  title: 'verify --integrity peak RSS over a hash chain of verifyRows audit rows',
  figures: ['verify_integrity_peak_rss_mb'],
  async run(ctx) {
    const rows = verifyRowsOf(ctx.profile.verifyRows);
    // The CLI measured is dist/: built from this checkout, as `npm pack` would build it.
    await run(process.execPath, [require.resolve('typescript/bin/tsc'), '-p', ROOT]);
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
      const measured = await runCli(targetUrl, config.auditSchema);
      const { report, memory } = measured;
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
      const peakMb = memory.peakHwmKb / 1024;
      const mb = (bytes: number) => round(bytes / 1024 / 1024, 4);
      ctx.log(
        `  verify --integrity: ${report.rows} rows, ${report.blocks} blocks in ${(measured.ms / 1000).toFixed(0)} s, peak RSS ${peakMb.toFixed(0)} MB (heap at most ${mb(memory.largest.heapUsed).toFixed(0)} MB used of ${mb(memory.largest.heapTotal).toFixed(0)} MB)`,
      );
      const detail = {
        rows: report.rows,
        blocks: report.blocks,
        blockCycle: '100 x 2 rows, 20 x 500, 1 x 10,000',
        verifySeconds: round(measured.ms / 1000, 3),
        rowsPerSecond: round(report.rows / (measured.ms / 1000), 4),
        processStartMb: round(memory.startHwmKb / 1024, 4),
        largestSampledMb: Object.fromEntries(
          Object.entries(memory.largest).map(([field, bytes]) => [field, mb(bytes)]),
        ),
        cpuSeconds: round((memory.cpuUserMs + memory.cpuSystemMs) / 1000, 4),
        generateSeconds: round(generatedS, 3),
        sealSeconds: round(sealedS, 3),
        method:
          'node dist/src/cli/main.js verify --integrity --json (built first), plain node, default heap; VmHWM from /proc/self/status at exit, memoryUsage() sampled every 250 ms (bench/workers/peak-memory.mjs)',
      };
      return {
        figures: [
          figure('verify_integrity_peak_rss_mb', round(peakMb, 4), {
            note:
              `${report.rows.toLocaleString('en-US')} audit rows (${rows.toLocaleString('en-US')} versions and their transactions' context rows), ${report.blocks.toLocaleString('en-US')} blocks` +
              (rows !== ctx.profile.verifyRows
                ? ' (BENCH_VERIFY_ROWS)'
                : rows < 10_000_000
                  ? ' (quick profile; --full uses 10,000,000)'
                  : ''),
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

/** What bench/workers/peak-memory.mjs writes as the measured process exits. */
interface PeakMemory {
  readonly startHwmKb: number;
  readonly peakHwmKb: number;
  /** The largest of each process.memoryUsage() field sampled, bytes. */
  readonly largest: Readonly<
    Record<'rss' | 'heapTotal' | 'heapUsed' | 'external' | 'arrayBuffers', number>
  >;
  readonly cpuUserMs: number;
  readonly cpuSystemMs: number;
}

/**
 * Runs the built CLI's `verify --integrity --json` once, in its own process with the
 * peak-memory preload (plain JavaScript: no tsx, whose compiler and source maps held
 * about 60 MB more from the start).
 */
async function runCli(
  targetUrl: string,
  auditSchema: string,
): Promise<{
  report: { ok: boolean; rows: number; blocks: number; findingCount: number };
  memory: PeakMemory;
  ms: number;
}> {
  const folder = await mkdtemp(path.join(os.tmpdir(), 'audit-trail-verify-'));
  try {
    const configFile = path.join(folder, 'audit-trail.config.json');
    await writeFile(configFile, JSON.stringify({ tables: [{ table: 'items' }], auditSchema }));
    const started = process.hrtime.bigint();
    const { stdout, stderr } = await run(process.execPath, [
      '--import',
      path.join(ROOT, 'bench', 'workers', 'peak-memory.mjs'),
      path.join(ROOT, 'dist', 'src', 'cli', 'main.js'),
      'verify',
      '--integrity',
      '--config',
      configFile,
      '--target-url',
      targetUrl,
      '--json',
    ]);
    const ms = Number(process.hrtime.bigint() - started) / 1e6;
    const line = stderr.split('\n').find((text) => text.startsWith('PEAK_MEMORY '));
    if (line === undefined)
      throw new Error(`verify --integrity wrote no PEAK_MEMORY line: ${stderr.slice(-500)}`);
    return {
      report: JSON.parse(stdout) as {
        ok: boolean;
        rows: number;
        blocks: number;
        findingCount: number;
      },
      memory: JSON.parse(line.slice('PEAK_MEMORY '.length)) as PeakMemory,
      ms,
    };
  } finally {
    await rm(folder, { recursive: true, force: true });
  }
}

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

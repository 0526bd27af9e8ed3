import { randomBytes } from 'node:crypto';
import { readFile, rm } from 'node:fs/promises';
import path from 'node:path';
import { Kysely, PostgresDialect } from 'kysely';
import pg from 'pg';
import {
  parseConfig,
  type AuditTrailConfig,
  type AuditTrailConfigInput,
} from '../../../src/config';
import { createEngine, SchemaChangeError, type EngineLogger } from '../../../src/engine';
import { createHistory } from '../../../src/history';
import { migrateTarget } from '../../../src/migrate/migrate-target';
import { quoteIdent, quoteQualified } from '../../../src/postgres/identifiers';
import { verifyAuditTrail } from '../../../src/verify';
import { compareHistory, describeDifference, type HistoryDifference } from './compare';
import { DmsReplayer } from './dms-replay';
import type { CaptureWindow, ComparedTable } from './expected-history';
import {
  installOracle,
  oracleMark,
  readColumnTypes,
  readSourceRows,
  refreshOracle,
} from './install';
import { connectionArgs, runCli, writeConfig } from '../cli';
import { compareApiHistory } from './api-check';
import { HARNESS_SESSION_OPTIONS, jitProblems } from './jit';
import { installedTargetTemplate } from './target-template';
import { tamperWithStaging } from './tamper';
import {
  expectedEngineRefusals,
  expectedRefusals,
  GENERATED_COLUMN_PREFIX,
  HEADER_NAME_REFUSAL,
  introducedColumn,
  renderSteps,
  setupSql,
  workloadConfig,
  type LoggedSchemaChange,
  type RenderedStep,
  type WorkloadConfig,
  workloadScript,
  type CrashSpec,
  type Workload,
} from './workload';

/** Which pipeline carries changes from the source to staging. */
export type PipelineKind = 'engine' | 'dms';

/** Options for {@link runScenario}. */
export interface ScenarioOptions {
  /** Superuser URL of the server (any database); source and target are created on it. */
  readonly adminUrl: string;
  /** @default 'engine' */
  readonly pipeline?: PipelineKind;
  /**
   * Catches up the engine another way (the crash property runs it as a CLI process
   * that kills itself at a fault point, then restarts it).
   */
  readonly runEngine?: (urls: EngineUrls) => Promise<void>;
  /** Keep the databases (to inspect a failure). @default false */
  readonly keepDatabases?: boolean;
  /**
   * The server JIT-compiles whatever it can and counts it (see `startJitServer`): after
   * the run, no statement the kit ran on the source or the target, top-level or inside
   * its functions, may have been JIT-compiled (#17 item 18). @default false
   */
  readonly jit?: boolean;
}

/** Where the engine runs. */
export interface EngineUrls {
  readonly config: AuditTrailConfig;
  readonly sourceUrl: string;
  readonly targetUrl: string;
  readonly slotName: string;
}

/** What a scenario found. */
export interface ScenarioResult {
  /** True when history matches the oracle, verify is clean and the kit raised nothing. */
  readonly ok: boolean;
  /** One paragraph per problem (empty when ok). */
  readonly problems: readonly string[];
  readonly differences: readonly HistoryDifference[];
  /** Source statements that failed (a unique violation rolls its transaction back: expected). */
  readonly sourceErrors: readonly string[];
  /**
   * `migrate` refused a table with this reason, as the workload made it expect (nothing
   * ran after it). A refusal the workload does not call for is a problem.
   */
  readonly refused?: string;
  /** The direct staging edit made at the end (the workload's `tamper`), which verify reported. */
  readonly tampered?: string;
}

/** SQLSTATE classes of source errors the workload causes itself (not the kit's doing). */
const WORKLOAD_ERRORS = /^(23|22|40P01)/;

/**
 * Runs a workload on a fresh source and target: creates the tables, installs the
 * oracle and the kit, runs the steps (the pipeline catches up at each `replicate`
 * step and at the end), then compares history with the oracle and runs verify.
 */
export async function runScenario(
  workload: Workload,
  options: ScenarioOptions,
): Promise<ScenarioResult> {
  const suffix = randomBytes(5).toString('hex');
  const sourceDb = `orsrc_${suffix}`;
  const targetDb = `ortgt_${suffix}`;
  const slotName = `oracle_${suffix}`;
  // The harness's own sessions never JIT: what pg_stat_statements counts is the kit's.
  const admin = new pg.Client({
    connectionString: options.adminUrl,
    options: HARNESS_SESSION_OPTIONS,
  });
  admin.on('error', () => undefined); // a dropped connection shows as a failed query
  await admin.connect();
  const urlOf = (db: string) => {
    const url = new URL(options.adminUrl);
    url.pathname = `/${db}`;
    return url.toString();
  };
  const sourceUrl = urlOf(sourceDb);
  const targetUrl = urlOf(targetDb);
  const problems: string[] = [];
  const sourceErrors: string[] = [];
  let differences: HistoryDifference[] = [];
  const clients: pg.Client[] = [];
  let refused: string | undefined;
  let tampered: string | undefined;
  try {
    // The config changes with `configure` steps and DDL on ignored columns.
    let configInput = workloadConfig(workload);
    let config = parseConfig(configInput);
    await admin.query(`CREATE DATABASE ${quoteIdent(sourceDb)}`);
    // The kit installed once per audit schema, copied (see installedTargetTemplate);
    // installed here where the target starts as a release left it, and under JIT, where
    // every statement the kit runs on the target must be counted.
    const template =
      workload.upgradeFrom || options.jit
        ? undefined
        : await installedTargetTemplate(admin, options.adminUrl, config.auditSchema);
    await admin.query(
      `CREATE DATABASE ${quoteIdent(targetDb)}${template ? ` TEMPLATE ${quoteIdent(template)}` : ''}`,
    );
    const { rows: oids } = await admin.query<{ datname: string; oid: string }>(
      'SELECT datname, oid::text FROM pg_database WHERE datname = ANY($1::text[])',
      [[sourceDb, targetDb]],
    );
    const oidOf = (name: string) => oids.find((r) => r.datname === name)!.oid;
    // On both databases, as a DBA might set them: the kit pins its own sessions, but the
    // DMS-shaped writer, like DMS, takes the target database's settings.
    for (const [name, value] of Object.entries(workload.sourceSettings))
      for (const db of [sourceDb, targetDb])
        await admin.query(
          `ALTER DATABASE ${quoteIdent(db)} SET ${quoteIdent(name)} = '${value.replace(/'/g, "''")}'`,
        );
    const rendered = renderSteps(workload);
    const ignoredEver = everIgnored(workload, rendered);
    const tables: ComparedTable[] = workload.tables.map((t, i) => ({
      schema: t.schema,
      table: t.name,
      keyColumns: t.columns.slice(0, t.keyCount).map((c) => c.name),
      ignoreColumns: ignoredEver[i]!,
      generatedColumns: generatedEver(workload, rendered, i),
    }));
    /** Each table's capture windows (see ComparedTable), as loads and removals happen. */
    const windows: CaptureWindow[][] = tables.map(() => []);
    const isConfigured = (t: number) =>
      config.tables.some((c) => c.schema === tables[t]!.schema && c.table === tables[t]!.table);
    /** What the schema-change log must hold, in order (#17 item 21). */
    const loggedChanges: ({ table: ComparedTable } & LoggedSchemaChange)[] = [];
    const everConfigured = new Set(tables.flatMap((_, t) => (isConfigured(t) ? [t] : [])));
    for (let i = 0; i < 2; i++) {
      const client = new pg.Client({
        connectionString: sourceUrl,
        options: HARNESS_SESSION_OPTIONS,
      });
      client.on('error', () => undefined); // a dropped connection shows as a failed query
      await client.connect();
      clients.push(client);
    }
    const target = new pg.Client({ connectionString: targetUrl, options: HARNESS_SESSION_OPTIONS });
    target.on('error', () => undefined);
    await target.connect();
    clients.push(target);
    // The DMS stand-in's own session keeps the server's JIT setting, as DMS's would.
    const dmsTarget = new pg.Client({ connectionString: targetUrl });
    dmsTarget.on('error', () => undefined);
    await dmsTarget.connect();
    clients.push(dmsTarget);
    const [main, second] = clients as [pg.Client, pg.Client];
    await main.query(setupSql(workload));
    await installOracle(main, tables);

    const warnings: string[] = [];
    const logger: EngineLogger = {
      log: (level, message, fields) => {
        if (level === 'warn' || level === 'error')
          warnings.push(`${level}: ${message} ${JSON.stringify(fields ?? {})}`);
      },
    };
    const urls = () => ({ config, sourceUrl, targetUrl, slotName });
    const dms = new DmsReplayer(main, dmsTarget, targetUrl, tables);
    let loadMark: number | undefined;
    let catchUps = 0;
    const kit = async <T>(what: string, work: () => Promise<T>): Promise<T> => {
      try {
        return await work();
      } catch (error) {
        throw new KitFailure(`${what}: ${(error as Error).message}`);
      }
    };
    /** A load at `mark`: the rows the source holds now (nothing writes while the pipeline loads). */
    const loaded = async (t: number, mark: number) => {
      const rows = await readSourceRows(main, tables[t]!);
      windows[t]!.push({ loadedAt: mark, rows, types: await readColumnTypes(main, tables[t]!) });
    };
    const catchUp = async () => {
      if (loadMark === undefined) {
        loadMark = await oracleMark(main);
        for (const t of tables.keys()) if (isConfigured(t)) await loaded(t, loadMark);
      }
      const crash = workload.crashes?.[catchUps++];
      if (options.pipeline === 'dms') {
        try {
          await dms.catchUp(config);
        } catch (error) {
          throw new KitFailure(`DMS apply: ${(error as Error).message}`);
        }
      } else if (crash)
        await kit('engine (crash and restart)', () => crashAndRestart(urls(), crash, configInput));
      else if (options.runEngine) await kit('engine', () => options.runEngine!(urls()));
      else
        await kit('engine', () =>
          createEngine({ ...urls(), logger, lagIntervalMs: 0 }).runUntilIdle(),
        );
    };

    /** A refusal of migrate, when one of `expected` matches it; else a finding. */
    const migrate = async (what: string, expected: readonly RegExp[]): Promise<boolean> => {
      try {
        await migrateTarget({
          config,
          sourceUrl,
          targetUrl,
          ...(workload.dropStaging ? { dropStaging: true } : {}),
        });
      } catch (error) {
        const message = (error as Error).message;
        if ((error as Error).name === 'SourceTableError' && expected.some((r) => r.test(message))) {
          refused = message;
          return false;
        }
        throw new KitFailure(`${what}: ${message}`);
      }
      if (expected.length > 0)
        throw new KitFailure(`${what} accepted what it must refuse (${expected.join(', ')})`);
      return true;
    };

    /** Runs a transaction step's statements on the source, each on its client. */
    const writeSource = async (rendered: RenderedStep) => {
      const aborted = [false, false];
      for (const { client, sql } of rendered.sql) {
        const connection = client === 0 ? main : second;
        const ending = sql === 'COMMIT' || sql === 'ROLLBACK';
        if (aborted[client] && !ending) continue;
        try {
          await connection.query(aborted[client] ? 'ROLLBACK' : sql);
        } catch (error) {
          const code = (error as { code?: string }).code ?? '';
          const message = `${sql.slice(0, 200)}: ${(error as Error).message} (${code})`;
          if (!WORKLOAD_ERRORS.test(code)) problems.push(`source write failed: ${message}`);
          sourceErrors.push(message);
          aborted[client] = true;
          if (ending) await connection.query('ROLLBACK');
        }
        if (ending) aborted[client] = false;
      }
    };

    if (workload.upgradeFrom) await target.query(await releaseTarget(workload.upgradeFrom));
    const upFront = expectedRefusals(workload);
    if (!(await migrate('migrate', upFront))) {
      // Refused before anything was created: the engine refuses too, before its
      // publication exists, and the source's own writes keep working (#17 item 14).
      if (options.pipeline !== 'dms') {
        const started = await createEngine({ ...urls(), logger, lagIntervalMs: 0 })
          .runUntilIdle()
          .then(
            () => 'started',
            (error: Error) => error.message,
          );
        if (!expectedEngineRefusals(workload).some((r) => r.test(started)))
          problems.push(`engine on a table migrate refused: ${started.slice(0, 300)}`);
      }
      const { rows } = await main.query<{ pubname: string }>('SELECT pubname FROM pg_publication');
      if (rows.length > 0)
        problems.push(
          `a refused config left publications: ${rows.map((r) => r.pubname).join(', ')}`,
        );
      for (const step of rendered)
        if (step.step.kind === 'ddl' && step.ddl) {
          await main.query(step.ddl);
          await refreshOracle(main, tables[step.step.table % tables.length]!);
        } else await writeSource(step);
      return { ok: problems.length === 0, problems, differences, sourceErrors, refused };
    }
    const useConfig = (input: WorkloadConfig) => {
      configInput = input;
      config = parseConfig(input);
    };
    /** The DDL step whose migrate waits for a later step (`migrateLater`, #17 item 4). */
    let pendingMigrate: DdlStep | undefined;
    /**
     * Migrate after a DDL step (with the config's ignoreColumns following a dropped or
     * renamed ignored column: the user edits the config for this run). False when it
     * refused, as the workload called for.
     */
    const migrateAfterDdl = async (step: DdlStep): Promise<boolean> => {
      if (step.config) useConfig(step.config);
      const t = step.step.table % tables.length;
      if (step.schemaChange && isConfigured(t))
        loggedChanges.push({ table: tables[t]!, ...step.schemaChange });
      const named = introducedColumn(step.step.change);
      // migrate looks only at tables in the config (one added later is refused then).
      const refusal = named?.startsWith('ar_h_') && isConfigured(t) ? [HEADER_NAME_REFUSAL] : [];
      return migrate('migrate after DDL', refusal);
    };
    /**
     * The pending migrate, in the documented order (README "Schema changes while the
     * engine runs"): the engine applies everything committed before the first change of
     * the new shape and stops there with its "run migrate" error (or goes idle when
     * there is none); then migrate. The caller's catch-up resumes exactly there. With
     * DMS, the documented order is migrate before the changed table is written to (its
     * task would stop at a column staging lacks): its catch-up waits for migrate.
     * Not a crash point: the crash indices count the catch-ups a workload without
     * `migrateLater` has.
     */
    const runPendingMigrate = async (): Promise<boolean> => {
      const step = pendingMigrate;
      if (!step) return true;
      pendingMigrate = undefined;
      if (options.pipeline !== 'dms') {
        const stopped = await createEngine({
          ...urls(),
          logger: migrateWaitLogger,
          lagIntervalMs: 0,
        })
          .runUntilIdle()
          .then(
            () => undefined,
            (error: Error) => error,
          );
        if (stopped && !(stopped instanceof SchemaChangeError))
          throw new KitFailure(`engine before migrate: ${stopped.message}`);
      }
      return migrateAfterDdl(step);
    };
    /** The engine's log while it meets the new shape: its stop there is expected. */
    const migrateWaitLogger: EngineLogger = {
      log: (level, message, fields) => {
        if (message !== 'source schema changed; stopping') logger.log(level, message, fields);
      },
    };
    const refusedResult = () => ({
      ok: problems.length === 0,
      problems,
      differences,
      sourceErrors,
      refused,
    });
    for (const step of rendered) {
      const waitsForMigrate =
        step.step.kind === 'replicate' ||
        step.step.kind === 'ddl' ||
        step.step.kind === 'configure';
      if (waitsForMigrate && !(await runPendingMigrate())) return refusedResult();
      if (step.step.kind === 'replicate') await catchUp();
      else if (isDdlStep(step)) {
        if (!step.ddl) continue;
        await main.query(step.ddl);
        await refreshOracle(main, tables[step.step.table % tables.length]!);
        // The documented order (README "Schema changes while the engine runs"): the
        // pipeline applies what was committed before the DDL, then migrate changes staging.
        if (loadMark !== undefined) await catchUp();
        if (step.step.migrateLater && loadMark !== undefined) pendingMigrate = step;
        else if (!(await migrateAfterDdl(step))) return refusedResult();
      } else if (step.step.kind === 'configure') {
        if (!step.config) continue;
        // Catch up, change the config, migrate, catch up (a new table loads there).
        const t = step.step.table % tables.length;
        const started = loadMark !== undefined;
        if (started) await catchUp();
        useConfig(step.config);
        if (
          !(await migrate(
            'migrate after a config change',
            step.headerNamed ? [HEADER_NAME_REFUSAL] : [],
          ))
        )
          return refusedResult();
        if (started) await catchUp();
        const mark = started ? await oracleMark(main) : -1;
        if (step.added) {
          everConfigured.add(t);
          // A kept staging table follows the changes made while the table was out; a
          // dropped one is created in the new shape, with nothing to log.
          if (!workload.dropStaging)
            loggedChanges.push(
              ...(step.changesWhileOut ?? []).map((c) => ({ table: tables[t]!, ...c })),
            );
          if (started) await loaded(t, mark);
        } else if (started) {
          const open = windows[t]!.pop()!;
          windows[t]!.push({ ...open, capturedUntil: mark });
        }
      } else await writeSource(step);
    }
    if (!(await runPendingMigrate())) return refusedResult();
    await catchUp();
    if (warnings.length > 0) problems.push(...warnings.map((w) => `engine ${w}`));
    const report = await compareHistory({
      source: main,
      target,
      tables: tables.map((table, t) => ({ ...table, windows: windows[t]! })),
      loadMark: loadMark!,
      auditSchema: config.auditSchema,
    });
    differences = [...report.differences];
    problems.push(...differences.slice(0, 5).map(describeDifference));
    const verify = await kit('verify', () => verifyAuditTrail({ config, sourceUrl, targetUrl }));
    if (!verify.ok) problems.push(`verify: ${describeMismatches(verify.mismatches)}`);
    problems.push(
      ...(await compareApiHistory({
        target,
        targetUrl,
        auditSchema: config.auditSchema,
        tables: tables.filter((_, t) => everConfigured.has(t)),
      })),
    );
    if (workload.upgradeFrom) problems.push(...(await releaseHistoryKept(targetUrl)));
    problems.push(...(await schemaLogProblems(target, config.auditSchema, loggedChanges)));
    const tamperedTable = workload.tamper && workload.tamper.table % tables.length;
    if (workload.tamper && problems.length === 0 && isConfigured(tamperedTable!)) {
      const table = tables[tamperedTable!]!;
      tampered = await tamperWithStaging(
        target,
        main,
        config.auditSchema,
        table,
        workload.tamper.kind,
        workload.tamper.loadedRow,
      );
      if (tampered) {
        const after = await kit('verify', () => verifyAuditTrail({ config, sourceUrl, targetUrl }));
        const label = `${table.schema}.${table.table}`;
        const reported = after.mismatches.filter(
          (m) => m.kind === 'staging-differs' && m.table === label,
        );
        if (after.ok || reported.length !== 1 || after.mismatches.length !== 1)
          problems.push(
            `verify after a direct staging edit (${tampered}) must report exactly that row as staging-differs, reported: ${describeMismatches(after.mismatches) || 'nothing'}`,
          );
      }
    }
    if (options.jit)
      problems.push(
        ...(await jitProblems(
          admin,
          {
            source: { name: sourceDb, oid: oidOf(sourceDb) },
            target: { name: targetDb, oid: oidOf(targetDb) },
          },
          { source: main, target },
          options.pipeline ?? 'engine',
        )),
      );
  } catch (error) {
    if (error instanceof KitFailure) problems.push(error.message);
    else throw error;
  } finally {
    await Promise.all(clients.map((c) => c.end().catch(() => undefined)));
    if (!options.keepDatabases) await dropAll(admin, slotName, [sourceDb, targetDb]);
    await admin.end();
  }
  return { ok: problems.length === 0, problems, differences, sourceErrors, refused, tampered };
}

/**
 * Runs the engine as a CLI process that kills itself with SIGKILL at the crash point
 * (test-only hook), then once more without it; the restart must finish the job.
 */
async function crashAndRestart(
  urls: EngineUrls,
  crash: CrashSpec,
  config: AuditTrailConfigInput,
): Promise<void> {
  const configFile = await writeConfig(config);
  const args = [
    'replicate',
    ...connectionArgs({ configFile, sourceUrl: urls.sourceUrl, targetUrl: urls.targetUrl }),
    ...['--slot', urls.slotName, '--until-idle', '--batch-size', String(crash.batchSize)],
  ];
  try {
    const crashed = await runCli(args, {
      AUDIT_TRAIL_ENGINE_CRASH_AT: `${crash.point}:${crash.nth}`,
    });
    // The run must have died at the crash point: one that exits (even with 0) never
    // reached it, and the restart would prove nothing (unless generated: see CrashSpec).
    if (crashed.signal !== 'SIGKILL' && !(crash.mayNotBeReached && crashed.code === 0))
      throw new Error(
        `the run meant to crash at ${crash.point}:${crash.nth} was not killed (exit ${crashed.code}, signal ${crashed.signal ?? 'none'}): the crash point was never reached; ${crashed.stderr.slice(-500)}`,
      );
    await slotReleased(urls.sourceUrl, urls.slotName);
    const restarted = await runCli(args);
    if (restarted.code !== 0)
      throw new Error(
        `restart after ${crash.point}:${crash.nth}: exit ${restarted.code}: ${restarted.stderr.slice(-500)}`,
      );
  } finally {
    await rm(configFile, { force: true });
  }
}

/**
 * Waits (up to 30 s) until no walsender holds the slot. The killed run's walsender ends
 * when the server sees its socket closed, which on a loaded machine can be after the
 * restart asks for the slot; `replicate` waits only 5 s for a held slot at start (then
 * exits 2, SLOT_IN_USE), and a supervisor's restart is what then retries. This harness
 * is that supervisor.
 */
async function slotReleased(sourceUrl: string, slotName: string): Promise<void> {
  const client = new pg.Client({ connectionString: sourceUrl, options: HARNESS_SESSION_OPTIONS });
  await client.connect();
  try {
    for (let waited = 0; waited < 30_000; waited += 100) {
      const { rows } = await client.query<{ active: boolean }>(
        'SELECT active FROM pg_replication_slots WHERE slot_name = $1',
        [slotName],
      );
      if (rows[0]?.active !== true) return;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    throw new Error(`replication slot ${slotName} still held 30 s after the crashed run died`);
  } finally {
    await client.end();
  }
}

function describeMismatches(
  mismatches: Awaited<ReturnType<typeof verifyAuditTrail>>['mismatches'],
): string {
  return mismatches
    .slice(0, 3)
    .map((m) => `${m.table} ${JSON.stringify(m.key)} ${m.kind} ${m.columns?.join(',') ?? ''}`)
    .join('; ');
}

/**
 * The schema-change log (#17 item 21) must hold exactly the column changes the workload
 * made to audited tables, in order, a rename as one RENAME (not a drop plus an add).
 */
async function schemaLogProblems(
  target: pg.ClientBase,
  auditSchema: string,
  expected: readonly ({ table: ComparedTable } & LoggedSchemaChange)[],
): Promise<string[]> {
  const { rows } = await target.query<{ line: string }>(
    `SELECT format('%s.%s %s %s: %s -> %s', source_schema, source_table, change, column_name,
                   coalesce(old_definition ->> 'name', '-'), coalesce(new_definition ->> 'name', '-')) AS line
       FROM ${quoteQualified(auditSchema, 'schema_change')}
      WHERE (source_schema, source_table) <> ('public', 'items') ORDER BY id`,
  );
  const got = rows.map((r) => r.line);
  const want = expected.map(
    (c) =>
      `${c.table.schema}.${c.table.table} ${c.change} ${c.column}: ${c.before ?? '-'} -> ${c.after ?? '-'}`,
  );
  return JSON.stringify(got) === JSON.stringify(want)
    ? []
    : [`schema-change log: expected ${JSON.stringify(want)}, got ${JSON.stringify(got)}`];
}

/** Every name each table's `ignoreColumns` holds at any step (history leaves them all out). */
function everIgnored(workload: Workload, rendered: readonly RenderedStep[]): string[][] {
  const names = workload.tables.map((t) => new Set(t.ignoreColumns ?? []));
  for (const { config } of rendered)
    for (const entry of config?.tables ?? []) {
      const t = workload.tables.findIndex(
        (x) => x.schema === entry.schema && x.name === entry.table,
      );
      for (const name of entry.ignoreColumns ?? []) names[t]!.add(name);
    }
  return names.map((set) => [...set]);
}

/** Every name table `t`'s generated column has at any step (history leaves them all out). */
function generatedEver(workload: Workload, rendered: readonly RenderedStep[], t: number): string[] {
  return [
    ...(workload.tables[t]!.generated ? [GENERATED_COLUMN_PREFIX] : []),
    ...rendered.flatMap(({ step, generatedColumn }) =>
      step.kind === 'ddl' && step.table % workload.tables.length === t && generatedColumn
        ? [generatedColumn]
        : [],
    ),
  ];
}

/** The SQL of a target as a released version of the kit left it (with its history). */
function releaseTarget(version: string): Promise<string> {
  return readFile(
    path.join(__dirname, '..', '..', 'migrate', 'fixtures', `target-${version}.sql`),
    'utf8',
  );
}

/**
 * After an upgrade from release 0.1.0 (whose `public.items` the workload's config no
 * longer lists): its four versions still read through the history API, as recorded.
 */
async function releaseHistoryKept(targetUrl: string): Promise<string[]> {
  const db = new Kysely<unknown>({
    dialect: new PostgresDialect({
      pool: new pg.Pool({ connectionString: targetUrl, max: 1, options: HARNESS_SESSION_OPTIONS }),
    }),
  });
  try {
    const versions = await createHistory(db).changesBetween(
      'public.items',
      '0001-01-01T00:00:00Z',
      '9999-12-31T00:00:00Z',
    );
    const got = versions.map((v) => `${v.operation} ${JSON.stringify(v.newRow ?? v.oldRow)}`);
    const expected = [
      'SNAPSHOT {"id":1,"name":"first","price":"1.50"}',
      'INSERT {"id":2,"name":"second","price":"2.00"}',
      'UPDATE {"id":2,"name":"second","price":"2.25"}',
      'DELETE {"id":1,"name":"first","price":"1.50"}',
    ];
    return JSON.stringify(got) === JSON.stringify(expected)
      ? []
      : [`upgrade from 0.1.0: public.items history reads ${JSON.stringify(got)}`];
  } catch (error) {
    return [`upgrade from 0.1.0: public.items history: ${(error as Error).message}`];
  } finally {
    await db.destroy();
  }
}

/** A rendered `ddl` step. */
type DdlStep = RenderedStep & { readonly step: Extract<RenderedStep['step'], { kind: 'ddl' }> };

function isDdlStep(step: RenderedStep): step is DdlStep {
  return step.step.kind === 'ddl';
}

/** The kit (engine, migrate, verify, DMS-shaped apply) failed: a finding, not a harness error. */
class KitFailure extends Error {}

async function dropAll(admin: pg.Client, slotName: string, databases: string[]): Promise<void> {
  for (let attempt = 0; attempt < 50; attempt++) {
    const { rows } = await admin.query<{ active_pid: number | null }>(
      'SELECT active_pid FROM pg_replication_slots WHERE slot_name = $1',
      [slotName],
    );
    if (rows.length === 0) break;
    if (rows[0]!.active_pid !== null)
      await admin.query('SELECT pg_terminate_backend($1)', [rows[0]!.active_pid]);
    else
      await admin.query('SELECT pg_drop_replication_slot($1)', [slotName]).catch(() => undefined);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  for (const db of databases)
    await admin
      .query(`DROP DATABASE IF EXISTS ${quoteIdent(db)} WITH (FORCE)`)
      .catch(() => undefined);
}

/** The failure report: problems, then the workload as a script and as data for a regression test. */
export function describeFailure(
  workload: Workload,
  result: ScenarioResult,
  pipeline: PipelineKind,
): string {
  return [
    `history oracle: ${pipeline} pipeline disagrees with the source`,
    ...result.problems.map((p) => `  - ${p}`),
    '',
    '-- reproduction (psql script; run the pipeline where the comments say):',
    workloadScript(workload),
    '',
    '// as a regression test: runScenario(<this workload>, { adminUrl, pipeline: ' +
      JSON.stringify(pipeline) +
      ' })',
    JSON.stringify(workload),
  ].join('\n');
}

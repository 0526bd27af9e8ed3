import type pg from 'pg';
import {
  AccessAuditPipeline,
  splitLogRecords,
  type AuditEvent,
  type Verdict,
} from '../../../src/access-audit';
import type { LogFormat } from '../../../src/access-audit/parser';
import type { PipelineConfig } from '../../../src/access-audit/pipeline';
import type { AccessAuditConfig } from '../../../src/config/access-audit';
import { withClient } from '../../support/databases';
import { createAuditedDatabase, type WorkloadRoles } from './audited-database';
import type { StartPgaudit } from './live-suite';
import type { PgauditServer, PgauditServerOptions } from './pgaudit-server';

/** A record as the kit read it, and what the pipeline decided. */
export interface Outcome {
  readonly event: AuditEvent;
  readonly verdict: Verdict;
}

/** Every record's verdict, as the Lambda's pipeline (`AccessAuditPipeline`) decides it. */
export function scanLog(
  config: PipelineConfig,
  log: string,
  logFormat: LogFormat = 'stderr',
): Outcome[] {
  const pipeline = new AccessAuditPipeline({ ...config, logFormat });
  return [
    ...splitLogRecords(log, logFormat).flatMap((record) => pipeline.push(record, undefined)),
    ...pipeline.flush(),
  ].flatMap((outcome) => (outcome.kind === 'verdict' ? [outcome] : []));
}

/** The rule an alert fired under, or the verdict's kind (`noise`, `excluded`, ...). */
export function ruleOf(verdict: Verdict): string {
  return verdict.kind === 'alert' ? verdict.alert.rule : verdict.kind;
}

/**
 * A statement that fails (no such table): its ERROR line, written after everything the
 * workload ran before it, tells when a log file holds the whole workload.
 */
export const END_OF_WORKLOAD = 'SELECT * FROM public.end_of_workload';

/**
 * The server's `format` log once it holds `text`: the logging collector (`allFormats`)
 * writes its files after the statement returned. Gives up after 5 s, returning what it
 * read, so the test's own assertion says what is missing.
 */
export async function readLogThrough(
  server: PgauditServer,
  format: LogFormat,
  text: string,
): Promise<string> {
  for (let attempt = 0; ; attempt++) {
    const log = await server.readLog(format);
    if (log.includes(text) || attempt === 100) return log;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/** What a live access-audit suite runs: the server, its database and roles, the workload. */
export interface LiveAuditLogSetup<Result> {
  /** The server's options, read when the suite starts (they may name what a hook made). */
  readonly server: () => PgauditServerOptions;
  /** The config the pipeline judges the log with. */
  readonly config: AccessAuditConfig;
  readonly database: string;
  readonly roles: WorkloadRoles;
  /** Run as the superuser in the new database: tables, grants, `setupPgaudit`. */
  readonly prepare: (admin: pg.Client) => Promise<void>;
  /** What the users run; its result is {@link LiveAuditLog.workload}. */
  readonly workload: (server: PgauditServer) => Promise<Result>;
  /** The log formats read and scanned. @default ['stderr'] */
  readonly formats?: readonly LogFormat[];
}

/** A live suite's server, and its log as it stood after the workload, read once. */
export interface LiveAuditLog<Result> {
  readonly server: PgauditServer;
  readonly workload: Result;
  /** The server log in `format` after the workload (stderr by default). */
  log(format?: LogFormat): string;
  /** Each record's verdict in `format`'s log (stderr by default). */
  outcomes(format?: LogFormat): Outcome[];
}

/**
 * The preamble of the live access-audit suites, as `beforeAll` and `afterAll` hooks of
 * the calling `describe`: starts a PostgreSQL with pgAudit, creates the database and
 * roles, runs the workload, waits until every format's log holds it
 * ({@link END_OF_WORKLOAD}), reads and scans each, and stops the server after the suite.
 * Read the returned object's fields in tests, not while the suite is being defined.
 * @example
 * const live = liveAuditLog(start, { server: () => ({}), config, database: 'appdb',
 *   roles: { logins: ['alice'] }, prepare: (admin) => setupPgaudit(admin, config),
 *   workload: async (server) => { ... } });
 * it('...', () => expect(live.outcomes().map(({ verdict }) => ruleOf(verdict))) ...);
 */
export function liveAuditLog<Result>(
  start: StartPgaudit,
  setup: LiveAuditLogSetup<Result>,
): LiveAuditLog<Result> {
  const formats = setup.formats ?? ['stderr'];
  let server: PgauditServer | undefined;
  let workload: { readonly result: Result } | undefined;
  const logs = new Map<LogFormat, string>();
  const outcomes = new Map<LogFormat, Outcome[]>();
  const read = <T>(found: Map<LogFormat, T>, format: LogFormat): T => {
    const value = found.get(format);
    if (value === undefined)
      throw new Error(`the ${format} log was not read (formats: ${formats.join(', ')})`);
    return value;
  };

  beforeAll(async () => {
    server = await start(setup.server());
    await createAuditedDatabase(server, setup.database, setup.roles, setup.prepare);
    workload = { result: await setup.workload(server) };
    await withClient(server.adminUrl(setup.database), (admin) =>
      admin.query(END_OF_WORKLOAD).catch(() => undefined),
    );
    for (const format of formats) {
      const log = await readLogThrough(server, format, END_OF_WORKLOAD);
      logs.set(format, log);
      outcomes.set(format, scanLog(setup.config, log, format));
    }
  });

  afterAll(async () => {
    await server?.stop();
  });

  return {
    get server() {
      if (server === undefined) throw new Error('the live server has not started');
      return server;
    },
    get workload() {
      if (workload === undefined) throw new Error('the workload has not run');
      return workload.result;
    },
    log: (format = 'stderr') => read(logs, format),
    outcomes: (format = 'stderr') => read(outcomes, format),
  };
}

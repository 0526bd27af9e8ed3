import type { LogFormat } from '../../src/access-audit/parser';
import { setupPgaudit } from '../../src/access-audit/setup';
import { alertText, digestMessage } from '../../src/lambda/access-alert/messages';
import { parseAccessAuditConfig } from '../../src/config/access-audit';
import { withClient } from '../support/databases';
import { createAuditedDatabase } from './support/audited-database';
import { scanLog, type Outcome } from './support/live-audit-log';
import { describeWithPgaudit } from './support/live-suite';
import type { PgauditServer } from './support/pgaudit-server';

/**
 * pgAudit up to 1.7.1 also logs from parallel workers, each record without user,
 * database or host (a worker has no client connection). One parallel query by an
 * audited human must still alert once per leader record, naming the human.
 */
const CONFIG = parseAccessAuditConfig({
  auditedRoles: ['alice', 'dana', 'wendy', 'walt'],
  serviceAccounts: ['app_svc'],
  logRows: true,
});

/** Settings that make the planner choose a parallel plan for any table scan. */
const FORCE_PARALLEL = [
  'SET parallel_setup_cost = 0',
  'SET parallel_tuple_cost = 0',
  'SET min_parallel_table_scan_size = 0',
  'SET max_parallel_workers_per_gather = 2',
];

const QUERY = 'SELECT count(*) FROM public.salaries WHERE pay > 10';
/** A service account's parallel query: its record is excluded, so its workers' records lead nobody's. */
const SERVICE_QUERY = 'SELECT count(*) FROM public.salaries WHERE pay > 20';

async function run(url: string, statements: string[]): Promise<string[]> {
  const plans: string[] = [];
  await withClient(url, async (client) => {
    for (const statement of statements) {
      const result = await client.query(statement);
      if (statement.startsWith('EXPLAIN'))
        plans.push(result.rows.map((row: Record<string, string>) => row['QUERY PLAN']).join('\n'));
    }
  });
  return plans;
}

/** Each record's verdict in `log`, read with `prefix` as the server's log_line_prefix. */
function scan(log: string, logFormat: LogFormat, prefix?: string): Outcome[] {
  return scanLog(
    { ...CONFIG, ...(prefix === undefined ? {} : { logLinePrefix: prefix }) },
    log,
    logFormat,
  );
}

function ofQuery(outcomes: readonly Outcome[]) {
  return outcomes.filter(({ event }) => event.statement === QUERY);
}

const PREFIX_WITH_LEADER = '%t:%r:%u@%d:[%p]:%P:';
/** Debian's default: a process without a session (a parallel worker) stops at %q. */
const DEBIAN_PREFIX = '%m [%p] %q%u@%d ';

describeWithPgaudit('access audit: parallel workers on a live PostgreSQL', (start) => {
  for (const [name, prefix] of [
    ['the RDS prefix (no leader pid)', undefined],
    ['a prefix with %P (leader pid)', PREFIX_WITH_LEADER],
    ["Debian's prefix (%q: a worker's line stops before %u@%d)", DEBIAN_PREFIX],
  ] as const) {
    describe(name, () => {
      let server: PgauditServer;
      let plans: string[];

      beforeAll(async () => {
        server = await start({
          allFormats: true,
          ...(prefix === undefined ? {} : { settings: { log_line_prefix: prefix } }),
        });
        const logins = ['alice', 'dana', 'wendy', 'walt', 'app_svc'];
        await createAuditedDatabase(server, 'appdb', { logins }, async (admin) => {
          await admin.query(
            'CREATE TABLE public.salaries AS SELECT g AS id, g * 2 AS pay FROM generate_series(1, 100000) g',
          );
          await admin.query('ANALYZE public.salaries');
          await admin.query('GRANT SELECT ON public.salaries TO alice, dana, wendy, walt, app_svc');
          await setupPgaudit(admin, CONFIG);
          // pgAudit logs a worker's record after the leader's without log_rows, before it with.
          await admin.query('ALTER ROLE dana SET pgaudit.log_rows = off');
          await admin.query('ALTER ROLE walt SET pgaudit.log_rows = off');
          // A service account that also logs READ, so its parallel query's workers log it.
          await admin.query("ALTER ROLE app_svc SET pgaudit.log = 'ddl, role, read'");
          // Records at WARNING, not at pgauditLogLevel (LOG), where no statement shows it
          // (as a parameter group would): the workers inherit the leader's level.
          for (const role of ['wendy', 'walt']) {
            await admin.query(`ALTER ROLE ${role} SET pgaudit.log_client = on`);
            await admin.query(`ALTER ROLE ${role} SET pgaudit.log_level = 'warning'`);
          }
        });
        plans = [
          ...(await run(server.userUrl('alice', 'appdb'), [
            ...FORCE_PARALLEL,
            `EXPLAIN (ANALYZE, COSTS OFF) ${QUERY}`,
            QUERY,
          ])),
          ...(await run(server.userUrl('dana', 'appdb'), [...FORCE_PARALLEL, QUERY])),
          ...(await run(server.userUrl('wendy', 'appdb'), [...FORCE_PARALLEL, QUERY])),
          ...(await run(server.userUrl('walt', 'appdb'), [...FORCE_PARALLEL, QUERY])),
          ...(await run(server.userUrl('app_svc', 'appdb'), [...FORCE_PARALLEL, SERVICE_QUERY])),
        ];
      });

      afterAll(async () => {
        await server?.stop();
      });

      it('the query really ran with parallel workers, and they logged without identity', async () => {
        expect(plans[0]).toMatch(/Workers Launched: [12]/);
        const events = scan(await server.readLog(), 'stderr', prefix).map(({ event }) => event);
        expect(
          events.filter((event) => event.statement === QUERY && (event.user ?? '') === ''),
        ).not.toHaveLength(0);
      });

      if (prefix !== PREFIX_WITH_LEADER)
        it("stderr: a worker's record that alerts on its own says plainly that its identity is unknown, and why", async () => {
          const outcomes = scan(await server.readLog(), 'stderr', prefix).filter(
            ({ event }) => event.statement === SERVICE_QUERY,
          );
          const alerts = outcomes.flatMap(({ verdict }) =>
            verdict.kind === 'alert' ? [verdict.alert] : [],
          );
          // The service account's own record is excluded; its workers' records match no
          // alerting leader, so each alerts on its own, as before.
          expect(alerts).not.toHaveLength(0);
          for (const alert of alerts) {
            expect(alert.rule).toBe('human-read');
            expect(alert.event.user).toBeUndefined();
            expect(alert.summary).toBe('unknown identity (no session): SELECT (READ)');
            const text = alertText(
              { alert, source: { logGroup: 'g', logStream: 's', logEventId: '1' } },
              { subjectPrefix: '[audit-trail]', maxStatementLength: 2000 },
            );
            expect(text).toContain(
              'Who:        unknown: the log names no user or database (a process without a session: a parallel worker, or a background worker such as a pg_cron job)',
            );
            expect(text).toContain('From:       none (no client connection)');
            expect(text).toContain('Database:   unknown');
            expect(text).not.toMatch(/\?@\?|: \?$/m);
          }
          const located = alerts.map((alert) => ({
            alert,
            source: { logGroup: 'g', logStream: 's', logEventId: '1' },
          }));
          const digest = digestMessage(located, {
            subjectPrefix: '[audit-trail]',
            maxStatementLength: 2000,
          });
          expect(digest.subject).toMatch(/access alerts: unknown identity \(no session\)$/);
          expect((JSON.parse(digest.message) as { email: string }).email).toContain(
            'Users: unknown identity (no session)\n',
          );
        });

      for (const format of ['stderr', 'csvlog', 'jsonlog'] as const) {
        it(`${format}: one alert per leader record, each naming the human, also at another level than pgauditLogLevel`, async () => {
          const outcomes = ofQuery(scan(await server.readLog(format), format, prefix));
          const alerts = outcomes.flatMap(({ verdict }) =>
            verdict.kind === 'alert' ? [verdict.alert] : [],
          );
          expect(alerts.map((alert) => [alert.rule, alert.event.user])).toEqual([
            ['human-read', 'alice'],
            ['human-read', 'dana'],
            ['unexpected-audit-level', 'wendy'],
            ['unexpected-audit-level', 'walt'],
          ]);
          const workers = outcomes.filter(({ event }) => (event.user ?? '') === '');
          expect(workers).not.toHaveLength(0);
          // Workers of wendy's and walt's queries wrote at WARNING too.
          expect(workers.filter(({ event }) => event.severity === 'WARNING')).not.toHaveLength(0);
          // At WARNING (sent to the client) each leader also logs its workers' records again,
          // under its own name and the workers' statement id, with CONTEXT "parallel worker".
          const relayed = outcomes.filter(
            ({ event }) => ['wendy', 'walt'].includes(event.user ?? '') && event.statementId === 1,
          );
          expect(relayed).not.toHaveLength(0);
          for (const { event, verdict } of relayed)
            expect(verdict).toEqual({
              kind: 'excluded',
              reason: 'parallel-worker',
              leaderPid: event.pid,
            });
          const leaders = alerts.map((alert) => alert.event.pid);
          for (const { verdict } of workers) {
            expect(verdict).toMatchObject({ kind: 'excluded', reason: 'parallel-worker' });
            expect(leaders).toContain((verdict as { leaderPid?: number }).leaderPid);
          }
        });
      }
    });
  }
});

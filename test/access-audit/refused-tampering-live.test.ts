import { PublishCommand, SNSClient } from '@aws-sdk/client-sns';
import { mockClient } from 'aws-sdk-client-mock';
import { subscriptionFilterTerms } from '../../infra/access-audit/access-audit-monitor';
import {
  type AccessAlert,
  AccessAuditPipeline,
  checkPgaudit,
  setupPgaudit,
  splitLogRecords,
} from '../../src/access-audit';
import { splitCsv } from '../../src/access-audit/csv';
import type { LogFormat } from '../../src/access-audit/parser';
import { withClient } from '../support/databases';
import { subscriptionEvent, testHandler, toCloudWatchMessages } from './support/lambda';
import {
  END_OF_WORKLOAD,
  liveAuditLog,
  readLogThrough,
  ruleOf,
  scanLog,
  type Outcome,
} from './support/live-audit-log';
import { describeWithPgaudit } from './support/live-suite';
import {
  REFUSED_CONFIG as CONFIG,
  REFUSED_DB as DB,
  REFUSED_PREFIX as PREFIX,
} from './support/refused-attempts';
import type { PgauditServer } from './support/pgaudit-server';

/**
 * Attempts to silence the audit that the server refuses (a role that may not change a
 * pgaudit.* setting): pgAudit logs a utility statement after it ran, so a refused SET,
 * RESET or ALTER ROLE leaves no record, only the server's ERROR line and, under
 * log_min_error_statement, the STATEMENT it refused. Read from stderr, csvlog and
 * jsonlog written by one run of PostgreSQL 15 with pgAudit.
 */
const FORMATS: readonly LogFormat[] = ['stderr', 'csvlog', 'jsonlog'];

/** Each refused by the server for a role that is not a superuser. */
const REFUSED = [
  "SET pgaudit.log = 'none'",
  "SET pgaudit.log_level = 'notice'",
  'RESET pgaudit.log',
  "SET LOCAL pgaudit.log = 'none'",
  'SET "PGAUDIT".log_client = on',
  "SELECT set_config('pgaudit.log', 'none', false)",
  "ALTER ROLE alice SET pgaudit.log = 'none'",
  "ALTER ROLE app_svc SET pgaudit.log = 'none'",
  "ALTER DATABASE appdb SET pgaudit.log = 'none'",
  "SET log_min_messages = 'panic'",
  "DO $$BEGIN PERFORM set_config('pgaudit.log', 'none', false); END$$",
  // The statement the server refused is in the CONTEXT, a line break inside it.
  "DO $$BEGIN PERFORM 1,\n  set_config('pgaudit.log', 'none', false); END$$",
  // The statement shows no setting; the server's CONTEXT names the one it refused.
  'SELECT public.sets_audit()',
  // Neither shows it, and no CONTEXT: a SQL function (inlined), a function's SET clause.
  // The error is the server's own, its message names the setting.
  'SELECT public.sql_sets_audit()',
  'SELECT public.sets_audit_on_entry()',
  // A query string of two statements: the first one's record carries the whole string.
  "SELECT 1; SET pgaudit.log = 'none'",
];
/** Refused attempts pgAudit logs before they run: a record, then the server's error. */
const LOGGED_BEFORE_REFUSAL = [
  "SELECT set_config('pgaudit.log', 'none', false)",
  "DO $$BEGIN PERFORM set_config('pgaudit.log', 'none', false); END$$",
  "DO $$BEGIN PERFORM 1,\n  set_config('pgaudit.log', 'none', false); END$$",
  "SELECT 1; SET pgaudit.log = 'none'",
];
/** A tampering text whose error is still the user's RAISE: its records alert (audit-tampering), not as refused. */
const FORGED_WITH_TAMPERING_TEXT =
  "SELECT set_config('pgaudit.log', public.raises_refusal(), false)";
/**
 * The server's refusal, forged: the user's own RAISE, with the server's words and even its
 * SQLSTATE. The server wrote no refusal (the CONTEXT says RAISE), so none may alert as an
 * attempt under alice's name.
 */
const FORGED_REFUSALS = [
  `DO $$BEGIN RAISE EXCEPTION 'permission denied to set parameter "pgaudit.log"' USING ERRCODE = '42501'; END$$`,
  'SELECT public.raises_refusal()',
  `DO $$BEGIN ASSERT false, 'permission denied to set parameter "pgaudit.log"'; END$$`,
  // A SQL function calling the RAISE: the innermost frame is still the RAISE.
  'SELECT public.sql_raises_refusal()',
  FORGED_WITH_TAMPERING_TEXT,
];
/** A superuser's change the server does not refuse but rejects: an attempt that failed, not one refused. */
const FAILED_BY_SUPERUSER = "SET pgaudit.log = 'no_such_class'";
/** Silences the change history at its source: an attempt only for a role that is no service account. */
const REFUSED_HISTORY_SILENCING = 'ALTER PUBLICATION items_pub DROP TABLE public.items';
/** A failed statement that does not touch the audit. */
const UNRELATED_FAILURE = 'SELECT * FROM public.no_such_table';

async function tryEach(url: string, statements: readonly string[]): Promise<string[]> {
  const refusals: string[] = [];
  await withClient(url, async (client) => {
    for (const statement of statements) {
      await client.query(statement).then(
        () => refusals.push(`${statement}: not refused`),
        (error: Error) => refusals.push(error.message),
      );
    }
  });
  return refusals;
}

/** Each statement refused for alice and app_svc, then a connection refused at startup. */
async function runWorkload(server: PgauditServer): Promise<string[]> {
  const statements = [...REFUSED, REFUSED_HISTORY_SILENCING, UNRELATED_FAILURE];
  const refusals = [
    ...(await tryEach(server.userUrl('alice', DB), statements)),
    ...(await tryEach(server.userUrl('app_svc', DB), statements)),
  ];
  await tryEach(server.userUrl('alice', DB), FORGED_REFUSALS);
  await tryEach(server.adminUrl(DB), [FAILED_BY_SUPERUSER]);
  // A startup option: the connection itself is refused (FATAL), no statement is logged.
  const withOption = `${server.userUrl('bob', DB)}?options=${encodeURIComponent('-c pgaudit.log=none')}`;
  await withClient(withOption, (client) => client.query('SELECT 1')).then(
    () => refusals.push('startup option: not refused'),
    (error: Error) => refusals.push(error.message),
  );
  return refusals;
}

/** `user: statement` of each attempt alert, in log order. */
function attempts(outcomes: readonly Outcome[]): string[] {
  return outcomes.flatMap(({ event, verdict }) =>
    verdict.kind === 'alert' && verdict.alert.rule === 'audit-tampering-attempt'
      ? [`${event.user ?? '?'}: ${event.statement}`]
      : [],
  );
}

describeWithPgaudit('access audit: refused attempts to silence the audit (live)', (start) => {
  const live = liveAuditLog(start, {
    server: () => ({ allFormats: true, settings: { log_line_prefix: PREFIX } }),
    config: CONFIG,
    database: DB,
    roles: { logins: ['alice', 'app_svc', 'bob'] },
    prepare: async (admin) => {
      await admin.query('CREATE TABLE public.items (id int PRIMARY KEY)');
      await admin.query('CREATE PUBLICATION items_pub FOR TABLE public.items');
      await admin.query(
        "CREATE FUNCTION public.sets_audit() RETURNS void LANGUAGE plpgsql AS $$BEGIN SET pgaudit.log = 'none'; END$$",
      );
      await admin.query(
        "CREATE FUNCTION public.sql_sets_audit() RETURNS text LANGUAGE sql AS $$SELECT set_config('pgaudit.log', 'none', false)$$",
      );
      await admin.query(
        "CREATE FUNCTION public.sets_audit_on_entry() RETURNS int LANGUAGE plpgsql SET pgaudit.log = 'none' AS $$BEGIN RETURN 1; END$$",
      );
      await admin.query(
        `CREATE FUNCTION public.raises_refusal() RETURNS text LANGUAGE plpgsql AS $$BEGIN RAISE EXCEPTION 'permission denied to set parameter "pgaudit.log"' USING ERRCODE = '42501'; END$$`,
      );
      await admin.query(
        'CREATE FUNCTION public.sql_raises_refusal() RETURNS text LANGUAGE sql AS $$SELECT public.raises_refusal()$$',
      );
      await setupPgaudit(admin, CONFIG);
    },
    workload: runWorkload,
    formats: FORMATS,
  });

  it('the server refuses every form for a role that is not a superuser', () => {
    expect(live.workload.filter((message) => message.includes('not refused'))).toEqual([]);
    expect(live.workload).toContain('permission denied to set parameter "pgaudit.log"');
  });

  it.each(FORMATS)('each refused attempt alerts as audit-tampering-attempt (%s)', (format) => {
    const found = live.outcomes(format);
    const expected = [
      ...[...REFUSED, REFUSED_HISTORY_SILENCING].map((statement) => `alice: ${statement}`),
      // A service account's attempt alerts too, as audit-tampering does; history silencing
      // is left to service accounts (the engine resets its own publication).
      ...REFUSED.map((statement) => `app_svc: ${statement}`),
      `postgres: ${FAILED_BY_SUPERUSER}`,
      // The connection refused at startup: no statement, only the server's message.
      'bob: ',
    ];
    expect(attempts(found)).toEqual(expected);
    for (const { verdict } of found) {
      if (verdict.kind !== 'alert' || verdict.alert.rule !== 'audit-tampering-attempt') continue;
      expect(verdict.alert.severity).toBe('critical');
      expect(verdict.alert.summary).toMatch(/refused|failed/);
    }
    const summaries = found.flatMap(({ event, verdict }) =>
      verdict.kind === 'alert' && verdict.alert.rule === 'audit-tampering-attempt'
        ? [[event.user, verdict.alert.summary] as const]
        : [],
    );
    // Refused: the server's refusal of the statement; the superuser's failed for another reason.
    for (const [user, summary] of summaries) {
      if (user === 'postgres') {
        expect(summary).toContain(
          'failed (ERROR: invalid value for parameter "pgaudit.log": "no_such_class")',
        );
        expect(summary).not.toMatch(/refused/);
      } else expect(summary).toMatch(/, refused by the server \((ERROR|FATAL): /);
    }
    const startup = found.find(({ event }) => event.user === 'bob')!;
    expect(startup.verdict.kind === 'alert' && startup.verdict.alert.summary).toContain(
      'permission denied to set parameter "pgaudit.log"',
    );
  });

  it.each(FORMATS)('one alert per refused act, the attempt carrying its record (%s)', (format) => {
    const found = live.outcomes(format);
    for (const user of ['alice', 'app_svc']) {
      for (const statement of REFUSED) {
        const alerts = found.flatMap(({ event, verdict }) =>
          event.user === user && event.statement === statement && verdict.kind === 'alert'
            ? [verdict.alert]
            : [],
        );
        expect(
          alerts.map((alert) => alert.rule),
          `${user}: ${statement}`,
        ).toEqual(['audit-tampering-attempt']);
        const [alert] = alerts;
        // app_svc's pgaudit.log (a service account's: DDL, ROLE) logs none of these first.
        if (user === 'alice' && LOGGED_BEFORE_REFUSAL.includes(statement)) {
          // What the record's audit-tampering alert said, and the record's own fields.
          expect(alert!.summary).toMatch(
            /, refused by the server \(ERROR: permission denied to set parameter "pgaudit.log"\); logged by pgAudit as (SELECT \(READ\)|DO \(FUNCTION\)): pgaudit setting changed( \(set_config\))?( \(\d records\))?(; logged before the error: .+)?$/,
          );
          // A string of two statements: its SELECT 1 ran before the refused SET (which
          // pgAudit, logging utility statements after they ran, never logs).
          if (statement === "SELECT 1; SET pgaudit.log = 'none'")
            expect(alert!.summary).toMatch(
              /; logged before the error: statement \d+ SELECT \(READ\); what ran before the refused statement may have taken effect$/,
            );
          else expect(alert!.summary).not.toMatch(/logged before the error/);
          expect(alert!.event.statementId).toBeGreaterThan(0);
          expect(alert!.event.auditClass).toMatch(/^(READ|FUNCTION)$/);
          expect(alert!.event.errorMessage).toBe(
            'permission denied to set parameter "pgaudit.log"',
          );
        } else expect(alert!.summary).not.toMatch(/logged by pgAudit/);
      }
    }
    // The records themselves are there, each with its verdict: folded into the attempt.
    // alice's only audit-tampering alerts are the records of her forged refusal, whose own
    // text sets pgaudit.log (no attempt: the error is her RAISE).
    const alice = found.filter(({ event }) => event.user === 'alice');
    expect(
      new Set(
        alice.flatMap(({ event, verdict }) =>
          ruleOf(verdict) === 'audit-tampering' ? [event.statement] : [],
        ),
      ),
    ).toEqual(new Set([FORGED_WITH_TAMPERING_TEXT]));
    const folded = alice.filter(
      ({ verdict }) => verdict.kind === 'excluded' && verdict.reason === 'attempt',
    );
    // set_config 1; each DO block and its PERFORM 2 + 2; the string's SELECT 1 (the
    // refused SET, a utility statement, is logged only after it ran: never) 1.
    expect(folded.length).toBe(6);
  });

  it('a record and its refusal in two deliveries: both alert, none is lost (stderr)', () => {
    // CloudWatch may deliver the record in one Lambda invocation and the ERROR/STATEMENT
    // in the next; each invocation's pipeline decides what it holds at its end.
    const log = live.log('stderr');
    const statement = "SELECT set_config('pgaudit.log', 'none', false)";
    const records = splitLogRecords(log, 'stderr');
    const record = records.findIndex(
      (line) =>
        line.includes('alice@appdb') && line.includes('AUDIT: ') && line.includes(statement),
    );
    expect(record).toBeGreaterThan(0);
    for (const cut of [record + 1, record + 2]) {
      // after the record; after its ERROR line (before the STATEMENT)
      const outcomes = [
        ...scanLog(CONFIG, records.slice(0, cut).join('\n')),
        ...scanLog(CONFIG, records.slice(cut).join('\n')),
      ];
      const rules = outcomes.flatMap(({ event, verdict }) =>
        event.user === 'alice' &&
        (event.statement === statement || event.statement === '') &&
        verdict.kind === 'alert'
          ? [verdict.alert.rule]
          : [],
      );
      expect(rules, `cut ${cut - record}`).toContain('audit-tampering');
      expect(rules, `cut ${cut - record}`).toContain('audit-tampering-attempt');
    }
  });

  it('a held record waits a bounded number of records, in log order, and alerts (stderr)', () => {
    // alice's set_config record, as if 1,100 processes each ran it and logged nothing more.
    const statement = "SELECT set_config('pgaudit.log', 'none', false)";
    const record = splitLogRecords(live.log('stderr'), 'stderr').find(
      (line) =>
        line.includes('alice@appdb') && line.includes('AUDIT: ') && line.includes(statement),
    )!;
    const pids = Array.from({ length: 1100 }, (_, i) => 100000 + i);
    const pipeline = new AccessAuditPipeline({ ...CONFIG, logFormat: 'stderr' });
    const early = pids.flatMap((pid) =>
      pipeline.push(record.replace(/:\[\d+\]:/, `:[${pid}]:`), undefined),
    );
    // A record waits at most 256 further records in the forgery check (for a CONTEXT),
    // then at most 256 more here (for its error).
    expect(early.length).toBeGreaterThanOrEqual(pids.length - 2 * 256 - 2);
    expect(early.length).toBeLessThan(pids.length - 256);
    const all = [...early, ...pipeline.flush()];
    expect(all.map((outcome) => outcome.kind === 'verdict' && outcome.event.pid)).toEqual(pids);
    expect(
      all.every(
        (outcome) =>
          outcome.kind === 'verdict' &&
          outcome.verdict.kind === 'alert' &&
          outcome.verdict.alert.rule === 'audit-tampering',
      ),
    ).toBe(true);
  });

  it("a forged refusal's ERROR is the server's own in all but its CONTEXT (csvlog)", () => {
    // csvlog columns: 1 user, 11 severity, 12 SQLSTATE, 13 message, 18 context, 19 statement.
    const rows = splitLogRecords(live.log('csvlog'), 'csvlog').map((record) => splitCsv(record));
    const errorOf = (statement: string) =>
      rows.find((row) => row[11] === 'ERROR' && row[19] === statement && row[1] === 'alice')!;
    const real = errorOf("SET pgaudit.log = 'none'");
    const forged = errorOf(FORGED_REFUSALS[0]!);
    expect(forged.slice(11, 14)).toEqual(real.slice(11, 14));
    expect(real.slice(11, 14)).toEqual([
      'ERROR',
      '42501',
      'permission denied to set parameter "pgaudit.log"',
    ]);
    expect(real[18]).toBe('');
    expect(forged[18]).toMatch(/^PL\/pgSQL function inline_code_block line 1 at RAISE$/);
  });

  it.each(FORMATS)(
    "a refusal the user raised (the server's words, SQLSTATE 42501) is no attempt (%s)",
    (format) => {
      const forged = live
        .outcomes(format)
        .filter(({ event }) => FORGED_REFUSALS.includes(event.statement));
      expect(forged.map(({ verdict }) => ruleOf(verdict))).not.toContain('audit-tampering-attempt');
      // The one whose text sets pgaudit.log still alerts, from its records.
      expect(
        forged
          .filter(({ event }) => event.statement === FORGED_WITH_TAMPERING_TEXT)
          .map(({ verdict }) => ruleOf(verdict)),
      ).toContain('audit-tampering');
    },
  );

  it.each(FORMATS)(
    'a failed statement that touches no audit setting does not alert (%s)',
    (format) => {
      const unrelated = live
        .outcomes(format)
        .filter(({ event }) => event.statement === UNRELATED_FAILURE);
      expect(unrelated).toEqual([]);
    },
  );

  it('stderr: the Lambda behind the deployed subscription filter sees the refused attempts', async () => {
    // CloudWatch Logs delivers only the log events holding one of the filter's terms; a
    // refused attempt is an ERROR line and its STATEMENT line, each a log event of its own.
    const terms = subscriptionFilterTerms(CONFIG);
    const delivered = toCloudWatchMessages(live.log('stderr')).filter((message) =>
      terms.some((term) => message.includes(term)),
    );
    const sns = mockClient(SNSClient);
    onTestFinished(() => sns.restore());
    sns.on(PublishCommand).resolves({ MessageId: 'm' });
    const { handler } = testHandler(
      { topicArn: 'arn:aws:sns:eu-west-1:123456789012:alerts', fifo: false, config: CONFIG },
      { sns: new SNSClient({}) },
    );
    await handler(subscriptionEvent(delivered));
    const alerts = sns.commandCalls(PublishCommand).map((call) => {
      const body = JSON.parse(call.args[0].input.Message!) as { lambda: string };
      return JSON.parse(body.lambda) as AccessAlert;
    });
    const lambdaAttempts = alerts
      .filter((alert) => alert.rule === 'audit-tampering-attempt')
      .map((alert) => `${alert.event.user ?? '?'}: ${alert.event.statement}`);
    expect(lambdaAttempts).toEqual(attempts(live.outcomes('stderr')));
    // The e-mail says the server refused it, and why.
    const texts = sns
      .commandCalls(PublishCommand)
      .map((call) => (JSON.parse(call.args[0].input.Message!) as { email: string }).email);
    const refusedSet = texts.find((text) => text.includes("  SET pgaudit.log = 'none'"))!;
    expect(refusedSet).toMatch(
      /^Access audit alert: audit-tampering-attempt \(severity critical\)/,
    );
    expect(refusedSet).toContain(
      'Failed:     ERROR: permission denied to set parameter "pgaudit.log"',
    );
  });

  it('pgaudit check fails when log_min_error_statement hides the statements the server refused', async () => {
    await withClient(live.server.adminUrl(DB), async (admin) => {
      const item = async () =>
        (await checkPgaudit(admin, CONFIG)).find(
          (result) => result.item === 'log_min_error_statement',
        );
      expect(await item()).toMatchObject({ ok: true });
      await admin.query("SET log_min_error_statement = 'fatal'");
      expect(await item()).toMatchObject({ ok: false, detail: expect.stringMatching(/refused/) });
      await admin.query("SET log_min_error_statement = 'log'");
      expect((await item())?.ok).toBe(false);
    });
  });

  it('pgaudit check fails when log_min_messages keeps the records or the ERROR lines out of the log', async () => {
    await withClient(live.server.adminUrl(DB), async (admin) => {
      const item = async (minimum: string) => {
        await admin.query(`SET log_min_messages = '${minimum}'`);
        return (await checkPgaudit(admin, CONFIG)).find(
          (result) => result.item === 'log_min_messages',
        );
      };
      expect(await item('warning')).toMatchObject({ ok: true });
      expect(await item('error')).toMatchObject({ ok: true });
      const atLog = await item('log');
      expect(atLog).toMatchObject({ ok: false, detail: expect.stringMatching(/ERROR lines/) });
      expect(atLog?.detail).not.toMatch(/records/);
      expect(await item('fatal')).toMatchObject({
        ok: false,
        detail: expect.stringMatching(/pgAudit's records \(at LOG\) and the server's ERROR lines/),
      });
      // Records sent at WARNING (pgaudit.log_client): log_min_messages = error drops them.
      await admin.query("SET pgaudit.log_client = on; SET pgaudit.log_level = 'warning'");
      expect(await item('error')).toMatchObject({
        ok: false,
        detail: expect.stringMatching(/^"error": pgAudit's records \(at WARNING\) are not/),
      });
    });
  });

  it('as the check says, a session at log_min_messages = fatal leaves no record of what it runs', async () => {
    const marker = (n: number) => `SELECT 'min_messages_${n}' AS marker`;
    await withClient(live.server.adminUrl(DB), async (admin) => {
      await admin.query("SET pgaudit.log = 'read'");
      await admin.query("SET log_min_messages = 'fatal'");
      await admin.query(marker(1));
      await admin.query("SET log_min_messages = 'warning'");
      await admin.query(marker(2));
    });
    await tryEach(live.server.userUrl('alice', DB), [`${END_OF_WORKLOAD} /* min_messages */`]);
    const log = await readLogThrough(live.server, 'stderr', 'end_of_workload /* min_messages');
    expect(log).toContain('min_messages_2');
    expect(log).not.toContain('min_messages_1');
  });
});

/**
 * Runs pgAudit's own regression suite (sql/pgaudit.sql of a pgAudit checkout) against
 * Debian's PostgreSQL 15 with pgaudit preloaded, and checks that the kit's parser reads
 * every record the suite produces exactly as pgAudit wrote it.
 *
 *   npx tsx test/access-audit/upstream-suite.ts --pgaudit-src DIR [--keep-output FILE]
 *     [--log-line-prefix PREFIX]
 *
 * DIR is a checkout of github.com/pgaudit/pgaudit at the tag matching the installed
 * pgaudit (`dpkg -l postgresql-15-pgaudit`; 1.7.0 for Debian's PostgreSQL 15). Nothing of
 * pgAudit's is copied into this repository: the suite is read from DIR at run time.
 *
 * What it does, and why each step:
 * 1. Starts a throw-away server (test/access-audit/support/pgaudit-server.ts) logging the
 *    same records to stderr (RDS log_line_prefix unless --log-line-prefix), csvlog and
 *    jsonlog at once.
 *    `pgaudit.role` is left unset (the suite sets it itself) and `log_min_messages` is
 *    `info`: the suite logs at NOTICE and WARNING, which the default (`warning`) would
 *    keep out of the server log.
 * 2. Creates `contrib_regression` and runs the suite with psql exactly as pg_regress does
 *    (`psql -X -a -q`, stdout and stderr into one file, pg_regress's environment), then
 *    compares that output with expected/pgaudit.out ignoring white space (`diff -w`, as
 *    pg_regress), so the run is known to be the real suite.
 * 3. Takes the jsonlog file as the ground truth of what the server logged (one JSON
 *    object per line: message and severity exact, no prefix to read) and checks
 *    - the kit's parser, on each of the stderr, csvlog and jsonlog files, finds the same
 *      records in the same order, each field equal to the record's text split by this
 *      script's own reading of pgAudit's CSV (append_valid_csv: quote a field holding
 *      `,` `"` CR or LF, double the quotes);
 *    - the records the client saw (psql's `NOTICE:  AUDIT:` / `WARNING:  AUDIT:` lines)
 *      are, in order, the server's records at those severities, byte for byte.
 * 4. Prints a summary. Exit 0: no mismatch; 1: a mismatch (each printed with both
 *    texts); 2: usage, setup or connection error.
 */
import { spawnSync } from 'node:child_process';
import { closeSync, existsSync, openSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import {
  type AuditEvent,
  createLogEntryParser,
  type LogFormat,
  type PgauditLogLevel,
  splitLogRecords,
} from '../../src/access-audit';
import { detectPgaudit, RDS_PREFIX, startPgauditServer } from './support/pgaudit-server';

/** pg_regress's database for contrib and PGXS modules (CONTRIB_TESTDB). */
const DATABASE = 'contrib_regression';
const SUPERUSER = 'postgres';
/** The levels the suite logs at, plus pgAudit's default; each parser reads one. */
const LEVELS: readonly PgauditLogLevel[] = ['log', 'notice', 'warning', 'info'];
/** Severities psql shows with client_min_messages at its default (notice). */
const CLIENT_SEVERITIES = new Set(['NOTICE', 'WARNING', 'INFO']);
const FORMATS: readonly LogFormat[] = ['stderr', 'csvlog', 'jsonlog'];
const AUDIT_MARK = 'AUDIT: ';

class UsageError extends Error {}

/** One record as the server logged it (from jsonlog, read without the kit). */
interface ServerRecord {
  readonly severity: string;
  readonly user: string | undefined;
  readonly database: string | undefined;
  readonly pid: number | undefined;
  /** The message after `AUDIT: `. */
  readonly text: string;
}

/** The fields a record's text holds, by this script's own reading. */
interface ExpectedFields {
  auditType: string;
  statementId: number;
  substatementId: number;
  auditClass: string;
  command: string;
  objectType: string;
  objectName: string;
  statement: string;
  parameterStatus: string;
  parameters: string[];
  rows: number | undefined;
}

async function main(): Promise<number> {
  const { values } = parseArgs({
    options: {
      'pgaudit-src': { type: 'string' },
      'keep-output': { type: 'string' },
      'log-line-prefix': { type: 'string' },
    },
  });
  const source = values['pgaudit-src'];
  const prefix = values['log-line-prefix'] ?? RDS_PREFIX;
  if (source === undefined) throw new UsageError('--pgaudit-src DIR is required');
  const sqlFile = path.join(source, 'sql', 'pgaudit.sql');
  const expectedFile = path.join(source, 'expected', 'pgaudit.out');
  for (const file of [sqlFile, expectedFile])
    if (!existsSync(file)) throw new UsageError(`${file} not found: is DIR a pgAudit checkout?`);
  const availability = detectPgaudit();
  if (!availability.available) throw new UsageError(availability.reason);
  const psql = path.join(availability.bin, 'psql');

  const server = await startPgauditServer(availability.bin, {
    allFormats: true,
    settings: { 'pgaudit.role': '', log_min_messages: 'info', log_line_prefix: prefix },
  });
  const work = await mkdtemp(path.join(os.tmpdir(), 'pgaudit-upstream-'));
  try {
    const env = regressEnvironment(server.port);
    createRegressionDatabase(psql, env);
    const outputFile = values['keep-output'] ?? path.join(work, 'pgaudit.out');
    runSuite(psql, env, sqlFile, outputFile);
    const output = await readFile(outputFile, 'utf8');

    const mismatches: string[] = [];
    const diff = spawnSync('diff', ['-w', expectedFile, outputFile], { encoding: 'utf8' });
    if (diff.status !== 0)
      mismatches.push(`psql output differs from expected/pgaudit.out (diff -w):\n${diff.stdout}`);

    const truth = readJsonlogTruth(await server.readLog('jsonlog'));
    for (const format of FORMATS) {
      const events = parseWithKit(await server.readLog(format), format, prefix, mismatches);
      // A stderr line carries the user and database only if the prefix has them.
      const identity = {
        user: format !== 'stderr' || prefix.includes('%u'),
        database: format !== 'stderr' || prefix.includes('%d'),
        pid: format !== 'stderr' || prefix.includes('%p'),
      };
      compareWithTruth(format, events, truth, identity, mismatches);
    }
    const client = compareClient(output, truth, mismatches);

    console.log(
      `pgAudit regression suite (${source}): ${truth.length} server records, ` +
        `each read by the kit's parser from stderr (prefix "${prefix}"), csvlog and jsonlog ` +
        `(${truth.length * FORMATS.length} comparisons); ${client.compared} client records ` +
        `compared with the server's (${client.notShown.length} server records at ` +
        `${[...CLIENT_SEVERITIES].join('/')} not shown by psql); ` +
        `${mismatches.length} mismatch(es)`,
    );
    console.log(
      `  ${diff.status === 0 ? 'psql output equals' : 'psql output DIFFERS from'} expected/pgaudit.out (diff -w)`,
    );
    console.log(`  records covered: ${coverage(truth)}`);
    for (const record of client.notShown)
      console.log(`  not shown by psql: ${record.severity}:  AUDIT: ${record.text}`);
    for (const mismatch of mismatches) console.log(`\nMISMATCH ${mismatch}`);
    return mismatches.length === 0 ? 0 : 1;
  } finally {
    await server.stop();
    await rm(work, { recursive: true, force: true });
  }
}

/** The environment pg_regress gives psql (C locale, its time zone and date style). */
function regressEnvironment(port: number): NodeJS.ProcessEnv {
  return {
    PATH: process.env.PATH,
    LANG: 'C',
    LC_ALL: 'C',
    PGTZ: 'PST8PDT',
    PGDATESTYLE: 'Postgres, MDY',
    PGAPPNAME: 'pg_regress',
    PGHOST: '127.0.0.1',
    PGPORT: String(port),
    PGUSER: SUPERUSER,
  };
}

/** What pg_regress runs before a suite: a fresh database with its settings. */
function createRegressionDatabase(psql: string, env: NodeJS.ProcessEnv): void {
  const statements = [
    `CREATE DATABASE "${DATABASE}" TEMPLATE=template0`,
    `ALTER DATABASE "${DATABASE}" SET lc_messages TO 'C'`,
    `ALTER DATABASE "${DATABASE}" SET lc_monetary TO 'C'`,
    `ALTER DATABASE "${DATABASE}" SET lc_numeric TO 'C'`,
    `ALTER DATABASE "${DATABASE}" SET lc_time TO 'C'`,
    `ALTER DATABASE "${DATABASE}" SET bytea_output TO 'hex'`,
    `ALTER DATABASE "${DATABASE}" SET timezone_abbreviations TO 'Default'`,
  ];
  for (const statement of statements) {
    const result = spawnSync(psql, ['-X', '-q', '-d', 'postgres', '-c', statement], {
      env,
      encoding: 'utf8',
    });
    if (result.status !== 0)
      throw new UsageError(`psql could not run ${statement}: ${result.stderr || result.error}`);
  }
}

/** `psql -X -a -q -d DB < sql > out 2>&1`, as pg_regress's psql_start_test. */
function runSuite(psql: string, env: NodeJS.ProcessEnv, sqlFile: string, outFile: string): void {
  const input = openSync(sqlFile, 'r');
  const output = openSync(outFile, 'w');
  try {
    const result = spawnSync(psql, ['-X', '-a', '-q', '-d', DATABASE], {
      env,
      stdio: [input, output, output],
    });
    if (result.error !== undefined) throw new UsageError(`psql failed: ${result.error.message}`);
  } finally {
    closeSync(input);
    closeSync(output);
  }
}

/** The server's pgAudit records, read from jsonlog with JSON.parse alone. */
function readJsonlogTruth(log: string): ServerRecord[] {
  const records: ServerRecord[] = [];
  for (const line of log.split('\n')) {
    if (line === '') continue;
    const json = JSON.parse(line) as Record<string, unknown>;
    const message = typeof json.message === 'string' ? json.message : '';
    if (!message.startsWith(AUDIT_MARK)) continue;
    records.push({
      severity: String(json.error_severity),
      user: typeof json.user === 'string' ? json.user : undefined,
      database: typeof json.dbname === 'string' ? json.dbname : undefined,
      pid: typeof json.pid === 'number' ? json.pid : undefined,
      text: message.slice(AUDIT_MARK.length),
    });
  }
  return records;
}

/** Every record the kit reads as pgAudit's, at any of the suite's levels, in log order. */
function parseWithKit(
  log: string,
  format: LogFormat,
  prefix: string,
  mismatches: string[],
): AuditEvent[] {
  const parsers = LEVELS.map((level) =>
    createLogEntryParser({ logFormat: format, logLinePrefix: prefix, pgauditLogLevel: level }),
  );
  const events: AuditEvent[] = [];
  for (const record of splitLogRecords(log, format)) {
    for (const parse of parsers) {
      const entry = parse(record);
      if (entry?.kind === 'audit') {
        events.push(entry.event);
        break;
      }
      if (entry?.kind === 'unreadable') {
        mismatches.push(`${format}: the kit could not read a record (${entry.error}):\n${record}`);
        break;
      }
    }
  }
  return events;
}

function compareWithTruth(
  format: LogFormat,
  events: AuditEvent[],
  truth: ServerRecord[],
  identity: { user: boolean; database: boolean; pid: boolean },
  mismatches: string[],
): void {
  if (events.length !== truth.length)
    mismatches.push(
      `${format}: the kit read ${events.length} records, the server logged ${truth.length}`,
    );
  // Each process writes its records to every log file in the same order, but records
  // of processes running at once (a parallel query's workers) interleave differently in
  // each file: compare each process's records in order.
  // (Without a pid in the stderr prefix, all records are compared as one sequence.)
  const eventsOf = groupByPid(events, (event) => (identity.pid ? event.pid : undefined));
  for (const [pid, records] of groupByPid(truth, (record) =>
    identity.pid ? record.pid : undefined,
  )) {
    const parsed = eventsOf.get(pid) ?? [];
    if (parsed.length !== records.length)
      mismatches.push(
        `${format}: process ${pid}: the kit read ${parsed.length} records, the server logged ${records.length}`,
      );
    for (let i = 0; i < Math.min(parsed.length, records.length); i++)
      compareRecord(`${format} process ${pid} record ${i + 1}`, parsed[i]!, records[i]!);
  }

  function compareRecord(where: string, event: AuditEvent, record: ServerRecord): void {
    const expected = { ...expectedFields(record.text), severity: record.severity };
    const actual = {
      auditType: event.auditType,
      statementId: event.statementId,
      substatementId: event.substatementId,
      auditClass: event.auditClass,
      command: event.command,
      objectType: event.objectType,
      objectName: event.objectName,
      statement: event.statement,
      parameterStatus: event.parameterStatus,
      parameters: event.parameters,
      rows: event.rows,
      severity: event.severity,
    };
    const differing = Object.keys(expected).filter(
      (key) =>
        JSON.stringify(expected[key as keyof typeof expected]) !==
        JSON.stringify(actual[key as keyof typeof actual]),
    );
    // A process with no session (a parallel worker, under pgAudit before 1.7.1's
    // "Disable logging in parallel workers") logs no user or database: jsonlog leaves the
    // keys out, stderr and csvlog an empty field, which the kit reads as ''. Both mean none.
    if (identity.user && (event.user ?? '') !== (record.user ?? '')) differing.push('user');
    if (identity.database && (event.database ?? '') !== (record.database ?? ''))
      differing.push('database');
    if (differing.length > 0)
      mismatches.push(
        `${where} (${differing.join(', ')}):\n` +
          `  server: ${record.severity}:  AUDIT: ${record.text}\n` +
          `  kit:    ${JSON.stringify({ ...actual, user: event.user, database: event.database })}`,
      );
  }
}

function groupByPid<T>(items: T[], pidOf: (item: T) => number | undefined): Map<string, T[]> {
  const groups = new Map<string, T[]>();
  for (const item of items) {
    const pid = String(pidOf(item));
    groups.set(pid, [...(groups.get(pid) ?? []), item]);
  }
  return groups;
}

/**
 * The client's audit lines must be, in order, server records at the severities psql
 * shows, byte for byte. Not every such record reaches psql (the suite raises
 * client_min_messages near its end), so each client record is matched with the next
 * server record of the same text; the server records passed over are counted and
 * returned. A record's text may span lines, so it is matched at its position in psql's
 * output rather than cut at a line end.
 */
function compareClient(
  output: string,
  truth: ServerRecord[],
  mismatches: string[],
): { compared: number; notShown: ServerRecord[] } {
  const starts = [...output.matchAll(/^(NOTICE|WARNING|INFO|LOG): {2}AUDIT: /gm)];
  const visible = truth.filter((record) => CLIENT_SEVERITIES.has(record.severity));
  const notShown: ServerRecord[] = [];
  let next = 0;
  for (const [i, start] of starts.entries()) {
    const at = start.index + start[0].length;
    const found = visible.findIndex(
      (record, index) =>
        index >= next && record.severity === start[1] && output.startsWith(`${record.text}\n`, at),
    );
    if (found < 0) {
      const shown = output.slice(at, output.indexOf('\n', at));
      const expected = visible[next];
      mismatches.push(
        `client record ${i + 1} is no server record:\n  client: ${start[1]}:  AUDIT: ${shown}\n` +
          `  next server record: ${expected === undefined ? '(none)' : `${expected.severity}:  AUDIT: ${expected.text}`}`,
      );
      continue;
    }
    notShown.push(...visible.slice(next, found));
    next = found + 1;
  }
  notShown.push(...visible.slice(next));
  return { compared: starts.length, notShown };
}

/** How many records of each shape the run compared, so a summary shows what was proved. */
function coverage(truth: ServerRecord[]): string {
  const fields = truth.map((record) => expectedFields(record.text));
  const count = (test: (field: ExpectedFields, index: number) => boolean) =>
    fields.filter(test).length;
  const severities = new Map<string, number>();
  for (const record of truth)
    severities.set(record.severity, (severities.get(record.severity) ?? 0) + 1);
  return [
    ...[...severities].map(([severity, n]) => `${n} ${severity}`),
    `${count((field) => field.auditType === 'OBJECT')} OBJECT`,
    `${count((field) => field.substatementId > 1)} substatements`,
    `${count((field) => field.statement.includes('\n'))} multi-line statements`,
    `${count((_, i) => truth[i]!.text.includes('"'))} with quoted fields`,
    `${count((field) => field.parameterStatus === 'logged')} with parameters`,
    `${count((field) => field.parameterStatus === 'previously-logged')} previously logged`,
    `${count((field) => field.rows !== undefined)} with rows`,
  ].join(', ');
}

/** A record's fields by pgAudit's own rules, without the kit's parser. */
function expectedFields(text: string): ExpectedFields {
  const fields = splitPgauditCsv(text);
  const [type, statementId, substatementId, auditClass, command, objectType, objectName] = fields;
  const statement = fields[7] ?? '';
  const parameter = fields[8] ?? '';
  const markers: Record<string, string> = {
    '<none>': 'none',
    '<not logged>': 'not-logged',
    '<previously logged>': 'previously-logged',
  };
  const marker = markers[parameter];
  return {
    auditType: type ?? '',
    statementId: Number(statementId),
    substatementId: Number(substatementId),
    auditClass: auditClass ?? '',
    command: command ?? '',
    objectType: objectType ?? '',
    objectName: objectName ?? '',
    statement,
    parameterStatus: marker ?? 'logged',
    parameters: marker === undefined ? splitPgauditCsv(parameter) : [],
    rows: fields[9] === undefined ? undefined : Number(fields[9]),
  };
}

/** pgAudit's CSV: a field is either bare or wholly quoted with `""` for a quote. */
function splitPgauditCsv(text: string): string[] {
  const fields: string[] = [];
  let pos = 0;
  for (;;) {
    if (text[pos] === '"') {
      let value = '';
      pos++;
      for (;;) {
        const quote = text.indexOf('"', pos);
        if (quote < 0) throw new Error(`unterminated quoted field in ${text}`);
        value += text.slice(pos, quote);
        if (text[quote + 1] === '"') {
          value += '"';
          pos = quote + 2;
        } else {
          pos = quote + 1;
          break;
        }
      }
      fields.push(value);
    } else {
      const comma = text.indexOf(',', pos);
      const end = comma < 0 ? text.length : comma;
      fields.push(text.slice(pos, end));
      pos = end;
    }
    if (pos >= text.length) return fields;
    if (text[pos] !== ',') throw new Error(`text after a quoted field in ${text}`);
    pos++;
  }
}

main().then(
  (code) => process.exit(code),
  (error: unknown) => {
    console.error(error instanceof UsageError ? error.message : error);
    process.exit(2);
  },
);

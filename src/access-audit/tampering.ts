import { dottedName, statementReadings, type SqlToken } from './sql-tokens';
import type { AuditEvent } from './types';

/**
 * Cheap first look: no statement without one of these can tamper with the audit.
 * Single words only, which no comment can split; `u&` because a Unicode-escaped
 * name (`U&"\0070gaudit".log`) hides every other word, and a backslash because with
 * `standard_conforming_strings = off` an escaped quote can end a literal early.
 */
const TAMPER_HINT =
  /pgaudit|set_config|\breset\b|u&|\\|pg_reload_conf|\bsystem\b|pg_drop_replication_slot|publication|log_error_verbosity|log_min_messages|lc_messages/i;

/**
 * Settings besides `pgaudit.*` whose change hides or disguises records: `log_min_messages`
 * at `fatal`/`panic` drops pgAudit's LOG lines (that SET leaves no record of itself),
 * `log_error_verbosity = terse` drops the CONTEXT line that tells a `RAISE LOG 'AUDIT: …'`
 * forgery from a real record, and `lc_messages` translates the severity words (`LOG`,
 * `CONTEXT`) the parser and the forgery check read. All three are superuser-only.
 */
const LOGGING_SETTINGS = new Set(['log_min_messages', 'log_error_verbosity', 'lc_messages']);

/** The name of a setting that weakens the audit when changed, or `undefined`. */
function watchedSetting(quotedName: string, escaped: boolean): string | undefined {
  if (escaped) return 'setting with an unreadable Unicode-escaped name changed';
  // Setting names are compared without case: SET "PGAUDIT".log sets pgaudit.log.
  const name = quotedName.toLowerCase();
  if (name.startsWith('pgaudit.')) return 'pgaudit setting changed';
  if (LOGGING_SETTINGS.has(name)) return `log setting changed (${name})`;
  return undefined;
}

/** The server's message for a setting a role may not change (PostgreSQL 13–17, in English). */
const PERMISSION_DENIED_TO_SET = /^permission denied to set parameter "(.+)"$/;

/**
 * For the server's refusal to change a setting (`permission denied to set parameter
 * "pgaudit.log"`), what the change would have done to the audit, or `undefined`. The
 * only trace of a connection refused at startup (`-c pgaudit.log=none` in its options)
 * and of a refused statement whose text the log does not have. English messages only
 * (`lc_messages`).
 */
export function refusedSettingOf(message: string): string | undefined {
  const name = PERMISSION_DENIED_TO_SET.exec(message)?.[1];
  return name === undefined ? undefined : watchedSetting(name, false);
}

/**
 * What the statement does to weaken the audit (`pgaudit setting changed`,
 * `ALTER SYSTEM`, …), or `undefined`. Works on the normalised event's statement text,
 * so Database Activity Streams events are judged the same way as pgAudit records.
 * The text is read as PostgreSQL reads it (comments, quoting and Unicode escapes
 * do not hide a name: see sql-tokens.ts); a statement with a backslash is read both
 * with and without `standard_conforming_strings`.
 */
export function auditTamperingOf(event: Pick<AuditEvent, 'statement'>): string | undefined {
  const statement = event.statement;
  if (!TAMPER_HINT.test(statement)) return undefined;
  for (const tokens of statementReadings(statement)) {
    const what = tamperingIn(tokens);
    if (what !== undefined) return what;
  }
  return undefined;
}

/**
 * The calls {@link auditTamperingOf} and {@link historySilencingOf} watch whose effect no
 * later error undoes (a replication slot dropped or advanced, a reload signalled), and
 * the words the server refuses that very call with (then it did not run).
 */
const NOT_UNDONE_BY_ERROR: ReadonlyMap<string, RegExp> = new Map([
  ['pg_drop_replication_slot', /replication slot/],
  ['pg_replication_slot_advance', /replication slot/],
  ['pg_reload_conf', /pg_reload_conf/],
]);

/** Cheap first look for {@link callsNotUndoneByError}: one of the names, in any case. */
const NOT_UNDONE_HINT = new RegExp([...NOT_UNDONE_BY_ERROR.keys()].join('|'), 'i');

/**
 * The watched calls in `statements` (a failed statement's texts) that an error does not
 * undo, unless `message` (the server's error) refuses that very call: for an error the
 * statement met after such a call ran (`SELECT pg_drop_replication_slot('s'),
 * set_config('pgaudit.log', …)` refused at `set_config`), the call's effect stays. Read as
 * PostgreSQL reads the text (comments, quoting); not inside a `DO` body, whose statements
 * pgAudit logs one by one.
 */
export function callsNotUndoneByError(statements: readonly string[], message: string): string[] {
  const found = new Set<string>();
  for (const statement of statements) {
    if (!NOT_UNDONE_HINT.test(statement)) continue;
    for (const tokens of statementReadings(statement))
      for (let i = 0; i < tokens.length; i++) {
        const token = tokens[i]!;
        if (token.kind !== 'name') continue;
        const refusedBy = NOT_UNDONE_BY_ERROR.get(token.text);
        if (refusedBy !== undefined && isOp(tokens[i + 1], '(') && !refusedBy.test(message))
          found.add(token.text);
      }
  }
  return [...found];
}

/** Cheap first look for {@link historySilencingOf}. */
const SILENCING_HINT = /publication|pg_replication_slot_advance|u&|\\/i;

/**
 * What the statement does to silence the change history at its source, or `undefined`:
 * `ALTER PUBLICATION` (a row filter, a column list, an operation or a table left out:
 * pgoutput never sends what it filters, and a later reset cannot bring it back) and
 * `pg_replication_slot_advance` (the slot skips the WAL between, unapplied). Alerted as
 * audit tampering for everyone but the service accounts: the kit's engine resets its
 * own publication at every start (`ALTER PUBLICATION … SET TABLE`), as DMS's login may.
 * Not here, because they silence nothing the history relies on: `ALTER TABLE … REPLICA
 * IDENTITY` (a table without one makes the source refuse its updates and deletes, it
 * does not drop them), `ALTER SUBSCRIPTION` (the kit subscribes to nothing), and
 * `SET session_replication_role = replica` (logical decoding still sends every change,
 * and the kit's triggers are `ENABLE ALWAYS`).
 */
export function historySilencingOf(event: Pick<AuditEvent, 'statement'>): string | undefined {
  const statement = event.statement;
  if (!SILENCING_HINT.test(statement)) return undefined;
  for (const tokens of statementReadings(statement)) {
    const what = silencingIn(tokens);
    if (what !== undefined) return what;
  }
  return undefined;
}

/**
 * Both cheap first looks in one scan: a statement that matches neither hint is neither
 * {@link auditTamperingOf} nor {@link historySilencingOf}. Every record of a human runs
 * both checks, and nearly every statement matches neither, so one scan instead of two.
 */
const WATCHED_HINT = new RegExp(`${TAMPER_HINT.source}|${SILENCING_HINT.source}`, 'i');

/** False when the statement can neither tamper with the audit nor silence the history. */
export function mayWeakenAudit(statement: string): boolean {
  return WATCHED_HINT.test(statement);
}

/**
 * {@link auditTamperingOf}, then (when `silencing`: not a trusted service account's record)
 * {@link historySilencingOf}, of one statement, with its text tokenized once: a statement
 * that passes both hints (`publication`, `u&`, a backslash) and is no tampering was read
 * twice. Each check still runs only when its own hint matches, as they do alone.
 */
export function weakeningOf(statement: string, silencing: boolean): string | undefined {
  let readings: SqlToken[][] | undefined;
  if (TAMPER_HINT.test(statement)) {
    readings = statementReadings(statement);
    for (const tokens of readings) {
      const what = tamperingIn(tokens);
      if (what !== undefined) return what;
    }
  }
  if (!silencing || !SILENCING_HINT.test(statement)) return undefined;
  for (const tokens of readings ?? statementReadings(statement)) {
    const what = silencingIn(tokens);
    if (what !== undefined) return what;
  }
  return undefined;
}

/*
 * silencingIn and tamperingIn walk the tokens alike (each token: a DO or function body
 * judged as the code it runs, then the token's own meaning) and differ only in that
 * meaning. They stay two loops on purpose, each with its meaning written inline: one
 * walker taking the meaning as a function called per token cost 45.0k instructions per
 * statement against 28.0k for the two loops (+61%; auditTamperingOf and historySilencingOf
 * on 31 statements that pass the hints, cachegrind), and with the meaning picked by a flag
 * 38.3k (+37%). BENCHMARKS, case 5 (hbench, 2026-12-06).
 */
function silencingIn(tokens: readonly SqlToken[]): string | undefined {
  for (let i = 0; i < tokens.length; i++) {
    const token = tokens[i]!;
    const body = codeBodyAt(tokens, i);
    if (body !== undefined) {
      const what = historySilencingOf({ statement: body });
      if (what !== undefined) return what;
    }
    if (token.kind !== 'name') continue;
    if (token.text === 'publication' && isName(tokens[i - 1], 'alter'))
      return 'publication altered';
    if (token.text === 'pg_replication_slot_advance' && isOp(tokens[i + 1], '('))
      return 'replication slot advanced';
  }
  return undefined;
}

function tamperingIn(tokens: readonly SqlToken[]): string | undefined {
  for (let i = 0; i < tokens.length; i++) {
    const token = tokens[i]!;
    const body = codeBodyAt(tokens, i);
    if (body !== undefined) {
      const what = auditTamperingOf({ statement: body });
      if (what !== undefined) return what;
    }
    if (token.kind !== 'name') continue;
    const next = tokens[i + 1];
    switch (token.text) {
      case 'set':
      case 'reset': {
        // SET [SESSION|LOCAL] name, and the SET/RESET clause of ALTER ROLE|USER|DATABASE|
        // FUNCTION|SYSTEM and of CREATE FUNCTION.
        let at = i + 1;
        const scope = tokens[at];
        if (scope?.kind === 'name' && (scope.text === 'session' || scope.text === 'local')) at++;
        const setting = dottedName(tokens, at);
        if (setting === undefined) break;
        if (token.text === 'reset' && setting.name === 'all' && isAlterRoleOrDatabase(tokens, i))
          return 'role or database settings reset (RESET ALL)';
        const what = watchedSetting(setting.name, setting.escaped);
        if (what !== undefined) return what;
        break;
      }
      case 'set_config':
        if (isOp(next, '(')) {
          const what = setConfigTampering(tokens, i + 2);
          if (what !== undefined) return what;
        }
        break;
      case 'system':
        // Not GRANT ALTER SYSTEM ON PARAMETER …, which the 'parameter' case judges.
        if (isName(tokens[i - 1], 'alter') && !isName(tokens[0], 'grant')) return 'ALTER SYSTEM';
        break;
      case 'pg_reload_conf':
        if (isOp(next, '(')) return 'pg_reload_conf()';
        break;
      case 'pg_drop_replication_slot':
        if (isOp(next, '(')) return 'replication slot dropped';
        break;
      case 'publication':
        if (isName(tokens[i - 1], 'drop')) return 'publication dropped';
        break;
      case 'parameter': {
        // GRANT SET | ALTER SYSTEM ON PARAMETER pgaudit.log TO x (PostgreSQL 15): the
        // right to silence the audit, handed to a role that is not a superuser.
        const setting = isName(tokens[i - 1], 'on') ? dottedName(tokens, i + 1) : undefined;
        if (setting !== undefined && isName(tokens[0], 'grant')) {
          const what = watchedSetting(setting.name, setting.escaped);
          if (what !== undefined) return `right to change a setting granted: ${what}`;
        }
        break;
      }
      case 'extension':
        if (isName(tokens[i - 1], 'drop') && dropsPgaudit(tokens, i + 1))
          return 'DROP EXTENSION pgaudit';
        break;
    }
    if (token.escaped) return 'Unicode-escaped name with unreadable escapes';
  }
  return undefined;
}

/**
 * `set_config(name, …)`: a change of a watched setting, or of one whose name is
 * computed (`'pg' || 'audit.log'`, `$1`, `E'\x70gaudit.log'`), which cannot be told
 * apart from one.
 */
function setConfigTampering(tokens: readonly SqlToken[], at: number): string | undefined {
  const name = tokens[at];
  const after = tokens[at + 1];
  if (name?.kind !== 'string' || name.value === undefined || !isOp(after, ','))
    return 'setting with a computed name changed (set_config)';
  const what = watchedSetting(name.value, false);
  return what === undefined ? undefined : `${what} (set_config)`;
}

/** Whether the statement holding `tokens[at]` (after the last `;` before it) is ALTER ROLE|USER|DATABASE. */
function isAlterRoleOrDatabase(tokens: readonly SqlToken[], at: number): boolean {
  let start = at;
  while (start > 0 && !isOp(tokens[start - 1], ';')) start--;
  const target = tokens[start + 1];
  return (
    isName(tokens[start], 'alter') &&
    target?.kind === 'name' &&
    (target.text === 'role' || target.text === 'user' || target.text === 'database')
  );
}

function dropsPgaudit(tokens: readonly SqlToken[], from: number): boolean {
  for (let i = from; i < tokens.length; i++) {
    const token = tokens[i]!;
    if (isOp(token, ';')) return false;
    if (token.kind === 'name' && (token.text === 'pgaudit' || token.escaped)) return true;
  }
  return false;
}

/**
 * The text of a DO or function body at `tokens[i]` (dollar-quoted, or any literal after
 * `DO` or `AS`: `CREATE FUNCTION … AS '…'`), whose statements run and so are read as code;
 * undefined for any other token.
 */
function codeBodyAt(tokens: readonly SqlToken[], i: number): string | undefined {
  const token = tokens[i]!;
  if (token.kind !== 'string' || token.value === undefined) return undefined;
  const previous = tokens[i - 1];
  return token.dollar || isName(previous, 'do') || isName(previous, 'as') ? token.value : undefined;
}

function isOp(token: SqlToken | undefined, text: string): boolean {
  return token?.kind === 'op' && token.text === text;
}

function isName(token: SqlToken | undefined, text: string): boolean {
  return token?.kind === 'name' && token.text === text;
}

const IDENTITY_CHANGE =
  /^\s*(?:set\s+(?:(?:session|local)\s+)?(role|session\s+authorization)|reset\s+(role|session\s+authorization))\b\s*(?:to\s+|=\s*)?("(?:[^"]|"")*"|'(?:[^']|'')*'|[^\s;]+)?/i;

/**
 * For `SET ROLE x` / `SET SESSION AUTHORIZATION x` (and their RESET), the identity the
 * session acts as from now on (`DEFAULT` after RESET); otherwise `undefined`. pgAudit
 * keeps logging the login role in the prefix, so later records are to be read as this one.
 */
export function identityChangeOf(
  event: Pick<AuditEvent, 'command' | 'statement'>,
): string | undefined {
  if (event.command !== 'SET' && event.command !== 'RESET') return undefined;
  const match = IDENTITY_CHANGE.exec(event.statement);
  if (match === null) return undefined;
  if (match[2] !== undefined) return 'DEFAULT';
  const target = match[3];
  if (target === undefined) return undefined;
  if (target.startsWith('"')) return target.slice(1, -1).replace(/""/g, '"');
  if (target.startsWith("'")) return target.slice(1, -1).replace(/''/g, "'");
  return target.toLowerCase() === 'none' ? 'NONE' : target.toLowerCase();
}

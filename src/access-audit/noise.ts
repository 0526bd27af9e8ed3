import { INFORMATION_SCHEMA_RELATIONS, PG_CATALOG_RELATIONS } from './catalog-relations';
import { isDigit, isWordCode, skipQuoted, statementReadings, type SqlToken } from './sql-tokens';
import type { AuditEvent, NoiseReason } from './types';

/**
 * Session-level commands drivers and GUI clients send on connect or around every
 * query (JDBC sends `SET extra_float_digits = 3` and `SET application_name`, pgAdmin
 * and DBeaver `SHOW`/`SET` and transaction control). They touch no data.
 */
const SESSION_COMMANDS = new Set([
  'SET',
  'SHOW',
  'RESET',
  'DISCARD',
  'DISCARD ALL',
  'DEALLOCATE',
  'DEALLOCATE ALL',
  'BEGIN',
  'START TRANSACTION',
  'COMMIT',
  'ROLLBACK',
  'SAVEPOINT',
  'RELEASE',
  'LISTEN',
  'UNLISTEN',
  'SET CONSTRAINTS',
]);

/**
 * Classifies tool noise from parsed fields only, never from a substring of the raw
 * line: a record is catalog noise when *its* object is a catalog relation, so a
 * statement joining `public.items` with `pg_class` still alerts on `public.items`.
 * Returns the reason, or `undefined` for an event that is not noise.
 */
export function classifyNoise(event: AuditEvent): NoiseReason | undefined {
  const reason = noiseShape(event);
  // A catalog read or health check in shape that also reaches data no relation
  // record shows (`SELECT pg_read_file(…) FROM pg_class`, `SELECT lo_get(…)`) is not noise.
  if (reason !== 'catalog-read' && reason !== 'health-check') return reason;
  return reachesBeyondRelations(event.statement) ? undefined : reason;
}

function noiseShape(event: AuditEvent): NoiseReason | undefined {
  const auditClass = event.auditClass;
  if (auditClass === 'MISC_SET' || (auditClass === 'MISC' && SESSION_COMMANDS.has(event.command))) {
    return 'session-command';
  }
  // pgAudit also writes a MISC record with command "???" for a view a query reads.
  if (auditClass === 'MISC' && event.objectName !== '' && isCatalogObject(event.objectName))
    return 'catalog-read';
  if (auditClass !== 'READ') return undefined;
  if (event.objectName !== '')
    return isCatalogObject(event.objectName) ? 'catalog-read' : undefined;
  // No object: either the statement read no relation (`SELECT 1`, `SELECT version()`)
  // or pgaudit.log_relation is off. Look at what the statement reads to tell which.
  const relations = readRelations(event.statement);
  if (relations === undefined) return undefined;
  if (relations.length === 0) return 'health-check';
  return relations.every(isCatalogObject) ? 'catalog-read' : undefined;
}

/** Cheap first look: a statement without one of these calls none of {@link DATA_FUNCTION}. */
const DATA_FUNCTION_HINT = /_file|pg_ls_|lo_|loread|lowrite|dblink|_to_xml|pg_logical_slot_|u&|\\/i;

/**
 * Functions that read or change what no relation record shows: server files
 * (`pg_read_file`, `pg_ls_dir`, adminpack's `pg_file_*`), large objects (`lo_get`,
 * `loread`, `lo_export`), other databases (`dblink`), decoded WAL
 * (`pg_logical_slot_get_changes`) and queries run from a string (`query_to_xml`).
 * (`set_config` of a pgAudit or logging setting is `audit-tampering`, checked first.)
 */
const DATA_FUNCTION =
  /^(?:pg_read_file|pg_read_binary_file|pg_stat_file|pg_ls_\w+|pg_file_\w+|lo_\w+|loread|lowrite|dblink\w*|(?:query|table|cursor|schema|database)_to_xml\w*|pg_logical_slot_\w+)$/;

/**
 * True when the statement calls one of {@link DATA_FUNCTION} (comments, quoting and
 * Unicode escapes do not hide the name; a name that cannot be decoded counts), read
 * as PostgreSQL may read it (sql-tokens.ts).
 */
export function reachesBeyondRelations(statement: string): boolean {
  if (!DATA_FUNCTION_HINT.test(statement)) return false;
  return statementReadings(statement).some(callsDataFunction);
}

function callsDataFunction(tokens: readonly SqlToken[]): boolean {
  for (let i = 0; i < tokens.length; i++) {
    const token = tokens[i]!;
    if (token.kind === 'string' && token.dollar && token.value !== undefined) {
      if (reachesBeyondRelations(token.value)) return true;
      continue;
    }
    if (token.kind !== 'name') continue;
    if (token.escaped) return true;
    const next = tokens[i + 1];
    if (next?.kind === 'op' && next.text === '(' && DATA_FUNCTION.test(token.text)) return true;
  }
  return false;
}

/**
 * True for a relation of the system catalog: `pg_catalog.x` (but `pg_largeobject`, which
 * holds the large objects' data), a known `information_schema` relation, and an
 * unqualified known `pg_catalog` name (pgaudit.log_relation off; see catalog-relations.ts).
 * `pg_toast.*` is not: its chunks are the data of the table it belongs to.
 */
export function isCatalogObject(name: string): boolean {
  const dot = name.indexOf('.');
  if (dot < 0) return PG_CATALOG_RELATIONS.has(unquote(name));
  const schema = unquote(name.slice(0, dot));
  const relation = unquote(name.slice(dot + 1));
  if (schema === 'pg_catalog') return relation !== 'pg_largeobject';
  return schema === 'information_schema' && INFORMATION_SCHEMA_RELATIONS.has(relation);
}

/** The schema part of `schema.name`, or `undefined` when unqualified. */
export function schemaOf(objectName: string): string | undefined {
  const dot = objectName.indexOf('.');
  return dot < 0 ? undefined : unquote(objectName.slice(0, dot));
}

function unquote(name: string): string {
  return name.length > 1 && name.startsWith('"') && name.endsWith('"')
    ? name.slice(1, -1).replace(/""/g, '"')
    : name;
}

/**
 * The relations a SELECT reads, from the tokens after FROM and JOIN (string literals,
 * quoted identifiers and comments are skipped; `name(` is a function, not a relation).
 * Returns `undefined` when the statement is not a plain SELECT/WITH/VALUES/TABLE, or
 * is too complex to be sure about (sub-queries in FROM), so the caller keeps the event.
 */
export function readRelations(statement: string): string[] | undefined {
  const tokens = tokenize(statement, 400);
  if (tokens === undefined || tokens.length === 0) return undefined;
  const first = tokens[0]!.toUpperCase();
  if (first !== 'SELECT' && first !== 'VALUES') return undefined;
  const relations: string[] = [];
  for (let i = 0; i < tokens.length; i++) {
    const word = tokens[i]!.toUpperCase();
    if (word !== 'FROM' && word !== 'JOIN') continue;
    if (word === 'FROM' && tokens[i - 1]?.toUpperCase() === 'DISTINCT') continue; // IS DISTINCT FROM
    // A FROM list: `a x, b AS y, c` — every item is a relation (or a function call).
    let at = i + 1;
    for (;;) {
      const target = tokens[at];
      if (target === undefined || target === '(' || target === "'") return undefined;
      if (tokens[at + 1] !== '(')
        relations.push(target); // else a function such as generate_series(…)
      else at = skipParentheses(tokens, at + 1) - 1;
      at++;
      if (tokens[at]?.toUpperCase() === 'AS') at++;
      if (tokens[at] !== undefined && isAliasToken(tokens[at]!)) at++;
      if (tokens[at] !== ',') break;
      at++;
    }
  }
  return relations;
}

/** Clause keywords that can follow a FROM item; anything else word-like there is an alias. */
const CLAUSE_KEYWORDS = new Set([
  'WHERE',
  'GROUP',
  'ORDER',
  'LIMIT',
  'OFFSET',
  'FETCH',
  'FOR',
  'HAVING',
  'WINDOW',
  'UNION',
  'EXCEPT',
  'INTERSECT',
  'JOIN',
  'LEFT',
  'RIGHT',
  'INNER',
  'FULL',
  'CROSS',
  'NATURAL',
  'ON',
  'USING',
  'TABLESAMPLE',
]);

function isAliasToken(token: string): boolean {
  return isWordCode(token.charCodeAt(0)) || token.charCodeAt(0) === 34
    ? !CLAUSE_KEYWORDS.has(token.toUpperCase())
    : false;
}

/** Index just past the parenthesis group opening at `open`. */
function skipParentheses(tokens: readonly string[], open: number): number {
  let depth = 0;
  for (let i = open; i < tokens.length; i++) {
    if (tokens[i] === '(') depth++;
    else if (tokens[i] === ')' && --depth === 0) return i + 1;
  }
  return tokens.length;
}

/**
 * A small SQL tokenizer: identifiers (with dots joining qualified names), punctuation
 * `(` `)` `,`, literals skipped. Stops (returns `undefined`) beyond `limit` tokens.
 */
function tokenize(sql: string, limit: number): string[] | undefined {
  const tokens: string[] = [];
  let i = 0;
  const n = sql.length;
  while (i < n) {
    const c = sql.charCodeAt(i);
    if (c <= 32) {
      i++;
    } else if (c === 45 && sql.charCodeAt(i + 1) === 45) {
      const end = sql.indexOf('\n', i);
      i = end < 0 ? n : end + 1;
    } else if (c === 47 && sql.charCodeAt(i + 1) === 42) {
      const end = sql.indexOf('*/', i + 2);
      i = end < 0 ? n : end + 2;
    } else if (c === 39) {
      i = skipQuoted(sql, i, 39);
      tokens.push("'");
    } else if (c === 36 && !isDigit(sql.charCodeAt(i + 1))) {
      // $tag$ … $tag$ dollar quoting ($1 is a parameter, read as a word below)
      const close = sql.indexOf('$', i + 1);
      if (close < 0) return undefined;
      const tag = sql.slice(i, close + 1);
      const end = sql.indexOf(tag, close + 1);
      i = end < 0 ? n : end + tag.length;
      tokens.push("'");
    } else if (isWordCode(c) || c === 34) {
      let name = '';
      for (;;) {
        const start = i;
        if (sql.charCodeAt(i) === 34) i = skipQuoted(sql, i, 34);
        else while (i < n && isWordCode(sql.charCodeAt(i))) i++;
        name += sql.slice(start, i);
        if (sql.charCodeAt(i) === 46 && i + 1 < n) {
          name += '.';
          i++;
          continue;
        }
        break;
      }
      tokens.push(name);
    } else {
      tokens.push(sql[i]!);
      i++;
    }
    if (tokens.length > limit) return undefined;
  }
  return tokens;
}

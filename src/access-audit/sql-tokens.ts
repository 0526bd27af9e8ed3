/**
 * A small SQL lexer for the checks that must not be fooled by how a statement is
 * spelled: `audit-tampering` (which setting a SET changes) and the noise rules (which
 * functions a SELECT calls). Comments, string literals and quoted identifiers are read
 * the way PostgreSQL reads them, so `SET /*x*\/ pgaudit . log`, `"pgaudit"."log"` and
 * `U&"\0070gaudit".log` all name `pgaudit.log`, and text inside a literal is never code.
 *
 * Hand-written, not a library: these checks need tokens, not a syntax tree, on every
 * record of the parser's hot path; a full parser (libpg_query's WebAssembly build) costs
 * far more per line than the parser's budget and refuses statements another server
 * version or a typo makes unparsable, which must still be read for what they name.
 */

/**
 * One token:
 * - `name`: an identifier or keyword, lower-cased; a quoted identifier as written
 *   between its quotes (`""` undone) and a `U&"…"` one decoded. `escaped` marks a
 *   Unicode-escaped identifier whose escapes could not all be read (a `UESCAPE` clause);
 * - `string`: a literal; `value` is its text for a plain `'…'` or `$$…$$` literal and
 *   `undefined` for an `E'…'`/`U&'…'`/`B'…'`/`X'…'` one, whose text is computed.
 *   `dollar` marks a `$tag$…$tag$` literal: the usual way to write a function or `DO`
 *   body, so checks for code read its text as code too;
 * - `op`: any other character (`(`, `)`, `,`, `.`, `=`, …), or a `$1` parameter.
 */
export type SqlToken =
  | { kind: 'name'; text: string; escaped: boolean }
  | { kind: 'string'; value: string | undefined; dollar: boolean }
  | { kind: 'op'; text: string };

/**
 * The tokens of `sql`. `backslashQuotes` reads `\'` inside a plain `'…'` literal as an
 * escaped quote, as PostgreSQL does with `standard_conforming_strings = off` (which any
 * user may set); callers that must not miss code read a statement with a backslash both
 * ways ({@link statementReadings}).
 */
export function sqlTokens(sql: string, backslashQuotes = false): SqlToken[] {
  const tokens: SqlToken[] = [];
  const n = sql.length;
  let i = 0;
  while (i < n) {
    const c = sql.charCodeAt(i);
    if (c <= 32) {
      i++;
    } else if (c === DASH && sql.charCodeAt(i + 1) === DASH) {
      const end = sql.indexOf('\n', i);
      i = end < 0 ? n : end + 1;
    } else if (c === SLASH && sql.charCodeAt(i + 1) === STAR) {
      i = skipBlockComment(sql, i);
    } else if (c === QUOTE) {
      const end = skipString(sql, i, backslashQuotes);
      tokens.push({
        kind: 'string',
        value:
          backslashQuotes && sql.slice(i, end).includes('\\') ? undefined : unquote(sql, i, end),
        dollar: false,
      });
      i = end;
    } else if (
      c === DOLLAR &&
      !isWordCode(sql.charCodeAt(i - 1)) &&
      !isDigit(sql.charCodeAt(i + 1))
    ) {
      const close = dollarTagEnd(sql, i);
      if (close < 0) {
        tokens.push({ kind: 'op', text: '$' });
        i++;
        continue;
      }
      const tag = sql.slice(i, close + 1);
      const end = sql.indexOf(tag, close + 1);
      tokens.push({
        kind: 'string',
        value: sql.slice(close + 1, end < 0 ? n : end),
        dollar: true,
      });
      i = end < 0 ? n : end + tag.length;
    } else if (c === DOUBLE_QUOTE) {
      const end = skipQuoted(sql, i, DOUBLE_QUOTE);
      tokens.push({ kind: 'name', text: unquote(sql, i, end), escaped: false });
      i = end;
    } else if (isUnicodePrefix(sql, i)) {
      // U&"…" identifier or U&'…' literal.
      const quote = sql.charCodeAt(i + 2);
      const end = skipQuoted(sql, i + 2, quote);
      const uescape = /^\s*uescape\b/i.test(sql.slice(end, end + 40));
      if (quote === DOUBLE_QUOTE) {
        const decoded = uescape ? undefined : decodeUnicode(unquote(sql, i + 2, end));
        tokens.push({ kind: 'name', text: decoded ?? '', escaped: decoded === undefined });
      } else {
        tokens.push({ kind: 'string', value: undefined, dollar: false });
      }
      i = end;
    } else if (isStringPrefix(sql, i)) {
      // E'…' (backslash escapes), B'…', X'…', N'…': a literal whose text is not taken as is.
      const end = skipString(sql, i + 1, true);
      tokens.push({ kind: 'string', value: undefined, dollar: false });
      i = end;
    } else if (isWordCode(c)) {
      let end = i + 1;
      while (end < n && isWordCode(sql.charCodeAt(end))) end++;
      tokens.push({ kind: 'name', text: sql.slice(i, end).toLowerCase(), escaped: false });
      i = end;
    } else if (c === DOLLAR) {
      let end = i + 1;
      while (end < n && isDigit(sql.charCodeAt(end))) end++;
      tokens.push({ kind: 'op', text: sql.slice(i, end) });
      i = end;
    } else {
      tokens.push({ kind: 'op', text: sql[i]! });
      i++;
    }
  }
  return tokens;
}

/**
 * Every way PostgreSQL may read `sql`: with and, when it holds a backslash, without
 * `standard_conforming_strings` (`'\''` is one quote or the start of code). A check
 * that looks for code must look in each.
 */
export function statementReadings(sql: string): SqlToken[][] {
  return sql.includes('\\') ? [sqlTokens(sql), sqlTokens(sql, true)] : [sqlTokens(sql)];
}

/**
 * The dotted name starting at `tokens[at]` (`pgaudit . log`, `"pgaudit"."log"`), and the
 * index after it; `undefined` when no name starts there. `escaped` when a part could
 * not be decoded.
 */
export function dottedName(
  tokens: readonly SqlToken[],
  at: number,
): { name: string; escaped: boolean; next: number } | undefined {
  const first = tokens[at];
  if (first?.kind !== 'name') return undefined;
  let name = first.text;
  let escaped = first.escaped;
  let next = at + 1;
  for (;;) {
    const dot = tokens[next];
    const part = tokens[next + 1];
    if (dot?.kind !== 'op' || dot.text !== '.' || part?.kind !== 'name') break;
    name += `.${part.text}`;
    escaped ||= part.escaped;
    next += 2;
  }
  return { name, escaped, next };
}

const DASH = 45;
const SLASH = 47;
const STAR = 42;
const QUOTE = 39;
const DOUBLE_QUOTE = 34;
const DOLLAR = 36;
const BACKSLASH = 92;

/** Block comments nest in PostgreSQL. */
function skipBlockComment(sql: string, start: number): number {
  let depth = 0;
  let i = start;
  while (i < sql.length) {
    if (sql.charCodeAt(i) === SLASH && sql.charCodeAt(i + 1) === STAR) {
      depth++;
      i += 2;
    } else if (sql.charCodeAt(i) === STAR && sql.charCodeAt(i + 1) === SLASH) {
      i += 2;
      if (--depth === 0) return i;
    } else i++;
  }
  return sql.length;
}

/** Past the `'…'` literal opening at `start`; `''` is a quote, and `\x` too with backslash escapes. */
function skipString(sql: string, start: number, backslashes: boolean): number {
  let i = start + 1;
  while (i < sql.length) {
    const c = sql.charCodeAt(i);
    if (backslashes && c === BACKSLASH) i += 2;
    else if (c === QUOTE) {
      if (sql.charCodeAt(i + 1) !== QUOTE) return i + 1;
      i += 2;
    } else i++;
  }
  return sql.length;
}

/** Past the quoted text (`'…'` or `"…"`, by `quote`) opening at `start`; a doubled quote is part of it. */
export function skipQuoted(sql: string, start: number, quote: number): number {
  let i = start + 1;
  for (;;) {
    const end = sql.indexOf(String.fromCharCode(quote), i);
    if (end < 0) return sql.length;
    if (sql.charCodeAt(end + 1) !== quote) return end + 1;
    i = end + 2;
  }
}

/** The text between the quotes of `sql[start, end)`, doubled quotes undone. */
function unquote(sql: string, start: number, end: number): string {
  const quote = sql[start]!;
  const closed = end - start >= 2 && sql[end - 1] === quote;
  return sql.slice(start + 1, closed ? end - 1 : end).replaceAll(quote + quote, quote);
}

/** `$tag$`: index of the closing `$` of the tag opening at `start`, or -1. */
function dollarTagEnd(sql: string, start: number): number {
  let i = start + 1;
  while (i < sql.length && isWordCode(sql.charCodeAt(i)) && sql.charCodeAt(i) !== DOLLAR) i++;
  return sql.charCodeAt(i) === DOLLAR ? i : -1;
}

function isUnicodePrefix(sql: string, i: number): boolean {
  const c = sql.charCodeAt(i);
  return (
    (c === 85 || c === 117) &&
    sql.charCodeAt(i + 1) === 38 &&
    (sql.charCodeAt(i + 2) === DOUBLE_QUOTE || sql.charCodeAt(i + 2) === QUOTE) &&
    !isWordCode(sql.charCodeAt(i - 1))
  );
}

function isStringPrefix(sql: string, i: number): boolean {
  return (
    /[EeBbXxNn]/.test(sql[i]!) &&
    sql.charCodeAt(i + 1) === QUOTE &&
    !isWordCode(sql.charCodeAt(i - 1))
  );
}

/** `\XXXX` and `\+XXXXXX` escapes of a `U&"…"` identifier; `undefined` for a malformed one. */
function decodeUnicode(text: string): string | undefined {
  let out = '';
  for (let i = 0; i < text.length; i++) {
    if (text[i] !== '\\') {
      out += text[i];
      continue;
    }
    if (text[i + 1] === '\\') {
      out += '\\';
      i++;
      continue;
    }
    const long = text[i + 1] === '+';
    const hex = long ? text.slice(i + 2, i + 8) : text.slice(i + 1, i + 5);
    if (!/^[0-9a-f]+$/i.test(hex) || hex.length !== (long ? 6 : 4)) return undefined;
    out += String.fromCodePoint(parseInt(hex, 16));
    i += long ? 7 : 4;
  }
  return out;
}

/** True for the character code of an ASCII digit. */
export function isDigit(c: number): boolean {
  return c >= 48 && c <= 57;
}

/**
 * True for a character code that may continue an unquoted identifier or keyword, as
 * PostgreSQL's scanner reads one: ASCII letters, digits, `_`, `$`, and any non-ASCII
 * character.
 */
export function isWordCode(c: number): boolean {
  return (
    (c >= 97 && c <= 122) ||
    (c >= 65 && c <= 90) ||
    (c >= 48 && c <= 57) ||
    c === 95 ||
    c === DOLLAR ||
    c > 127
  );
}

/**
 * How many statements the query string `sql` holds (`;`-separated, empty ones not
 * counted), read every way PostgreSQL may read it ({@link statementReadings}): the most.
 */
export function statementCount(sql: string): number {
  let most = 0;
  for (const tokens of statementReadings(sql)) {
    let count = 0;
    let empty = true;
    for (const token of tokens) {
      if (token.kind === 'op' && token.text === ';') {
        if (!empty) count++;
        empty = true;
      } else empty = false;
    }
    if (!empty) count++;
    most = Math.max(most, count);
  }
  return most;
}

import ts from 'typescript';

/**
 * A lint for the kit's SQL: finds calls and comparisons that a lookalike planted in
 * `public` (any role may create there on PostgreSQL 13 and 14) would win over
 * pg_catalog's, when the session's search_path holds public. PostgreSQL prefers
 * pg_catalog's only on a tie; a lookalike wins when it matches more exactly:
 *
 * - a polymorphic, record, variadic "any" or anyarray parameter (`array_agg(text)` over
 *   `array_agg(anynonarray)`, `format(text, text)` over `format(text, VARIADIC "any")`);
 * - an untyped literal or parameter, which prefers text, where pg_catalog takes name, oid,
 *   regclass, pg_lsn or an integer (`pg_has_role(text, text)` over `(name, text)`);
 * - an operator for a type pair pg_catalog has no operator for: `oid = regclass` (the
 *   catalog compares oid = oid after a cast), `oid = 0` (oid = integer).
 *
 * Scanned: the text of every string and template literal in a TypeScript file (SQL is
 * sent from those; code and comments are masked, and a template's `${...}` reads as
 * `$XXX`, a value). Deliberately simple: a name in {@link CATALOG_ONLY_CALLS} followed by
 * `(` and not preceded by `.`, and the comparison shapes of {@link PLANTABLE_COMPARISONS}.
 */

/**
 * Functions whose every call must name pg_catalog. Each is a match for a lookalike in at
 * least one argument shape the kit could write; a call that is safe today (typed
 * arguments) is one edit away from one that is not, so the rule does not look at them.
 */
export const CATALOG_ONLY_CALLS: readonly string[] = [
  // Polymorphic, record or VARIADIC "any" parameters: any concrete type matches better.
  'array_agg',
  'unnest',
  'format',
  'concat',
  'concat_ws',
  'to_json',
  'to_jsonb',
  'row_to_json',
  'json_agg',
  'jsonb_agg',
  'json_build_object',
  'jsonb_build_object',
  'json_build_array',
  'jsonb_build_array',
  'json_object_agg',
  'jsonb_object_agg',
  'jsonb_populate_record',
  'json_populate_record',
  'array_remove',
  'array_replace',
  'array_position',
  'array_positions',
  'array_append',
  'array_prepend',
  'array_cat',
  'array_length',
  'array_upper',
  'array_lower',
  'array_to_string',
  'cardinality',
  'num_nulls',
  'num_nonnulls',
  'pg_typeof',
  // Parameters of type name, oid, regclass, pg_lsn or integer: an untyped argument
  // prefers a text lookalike; a name or varchar column prefers a lookalike taking it.
  'pg_has_role',
  'has_table_privilege',
  'has_column_privilege',
  'has_any_column_privilege',
  'has_schema_privilege',
  'has_function_privilege',
  'has_database_privilege',
  'has_sequence_privilege',
  'has_type_privilege',
  'to_regclass',
  'to_regtype',
  'to_regproc',
  'to_regprocedure',
  'to_regnamespace',
  'to_regrole',
  'string_agg',
  'format_type',
  'quote_ident',
  'quote_literal',
  'pg_drop_replication_slot',
  'pg_create_logical_replication_slot',
  'pg_replication_slot_advance',
  'pg_terminate_backend',
  'pg_cancel_backend',
  'pg_wal_lsn_diff',
  'pg_advisory_lock',
  'pg_advisory_xact_lock',
  'pg_try_advisory_lock',
  'pg_try_advisory_xact_lock',
  'pg_advisory_unlock',
];

/** Oid-typed catalog columns the kit compares with integer literals. */
const OID_COLUMN = String.raw`\b(?:oid|\w+oid|\w+relid|\w+namespace|\w+owner|\w+typid|typbasetype|typelem|typarray|reltype|setdatabase|setrole|roleid|member|grantor|objid|classid|refobjid|refclassid|inhparent|conrelid|confrelid)`;
const REG_TYPE = String.raw`reg(?:class|type|proc|procedure|oper|operator|namespace|role|collation|config|dictionary)\b`;
/** An operand: a literal, a parameter (`$1`, or a template's `$XXX`), or a (qualified) name. */
const OPERAND = String.raw`(?:'[^']*'|\$\w+|[\w.]+|\([^()]*\))`;

/**
 * Comparisons with no exact pg_catalog operator. The operator is unqualified when blanks
 * precede it: `OPERATOR(pg_catalog.=)` has a `.` there.
 */
export const PLANTABLE_COMPARISONS: readonly { readonly why: string; readonly pattern: RegExp }[] =
  [
    {
      why: 'oid compared with a reg* value: pg_catalog has no such operator (OPERATOR(pg_catalog.=), or cast to pg_catalog.oid)',
      pattern: new RegExp(
        String.raw`\s(?:=|<>|!=)\s*${OPERAND}::(?:pg_catalog\.)?${REG_TYPE}(?!\s*::)`,
        'gi',
      ),
    },
    {
      why: 'oid compared with a to_reg*() result, a reg* value: pg_catalog has no such operator (OPERATOR(pg_catalog.=))',
      pattern:
        /\s(?:=|<>|!=)\s*(?:pg_catalog\.)?to_reg(?:class|type|proc|procedure|namespace|role)\s*\(/gi,
    },
    {
      why: 'a reg* value compared: pg_catalog has no such operator (OPERATOR(pg_catalog.=), or cast to pg_catalog.oid)',
      pattern: new RegExp(String.raw`::(?:pg_catalog\.)?${REG_TYPE}\s*(?:=|<>|!=)\s`, 'gi'),
    },
    {
      why: 'a relid of pg_partition_tree or pg_partition_ancestors is a regclass: compared with an oid, pg_catalog has no such operator (OPERATOR(pg_catalog.=))',
      pattern: /(?:\b\w+\.relid\s+(?:=|<>|!=)\s)|(?:\s(?:=|<>|!=)\s*\w+\.relid\b)/gi,
    },
    {
      why: 'oid compared with an integer: pg_catalog has no oid = integer (OPERATOR(pg_catalog.=), or 0::pg_catalog.oid)',
      pattern: new RegExp(String.raw`${OID_COLUMN}\s+(?:=|<>|!=)\s*\d+\b(?!\s*::)`, 'gi'),
    },
    {
      why: 'nullif of an oid and an integer compares them with oid = integer (OPERATOR(pg_catalog.=) in a CASE, or 0::pg_catalog.oid)',
      pattern: new RegExp(String.raw`\bnullif\s*\(\s*[\w.]*?${OID_COLUMN}\s*,\s*\d+\s*\)`, 'gi'),
    },
  ];

/**
 * `COLLATE "C"` unqualified: a collation is found through the search_path like a function,
 * and one of the same name created in `public` wins on a path that lists pg_catalog after
 * it (`public, pg_catalog`): checked on PostgreSQL 15, an ICU `public."C"` sorted
 * `{A,a,B,b}` where pg_catalog's sorts `{A,B,a,b}`. The kit's byte-order merges and sorted
 * column lists rely on pg_catalog's.
 */
const UNQUALIFIED_COLLATION = /\bCOLLATE\s+(?!pg_catalog\s*\.)("?)\w+\1/gi;

// A quoted name ("format") is the same name: resolved through the search_path alike.
const CALL = new RegExp(String.raw`(?<![\w.$"])("?)(${CATALOG_ONLY_CALLS.join('|')})\1\s*\(`, 'gi');
/** count(x) is count("any"); count(*) takes no argument and ties with pg_catalog's. */
const COUNT_OF_A_VALUE = /(?<![\w.$"])count\s*\(\s*(?!\*)(?=\S)/gi;

/** One unqualified call or comparison, at `line` (1-based) of the scanned file. */
export interface Finding {
  readonly line: number;
  readonly text: string;
  readonly why: string;
}

/**
 * The file's string and template literal text at the literals' own offsets; everything
 * else `§` (newlines kept, so offsets and lines match the file).
 */
export function literalText(fileName: string, source: string): string {
  const file = ts.createSourceFile(fileName, source, ts.ScriptTarget.Latest, true);
  // Code reads as §, not blanks: a match cannot run from one literal into the next.
  const view = source.replace(/[^\n]/g, '§').split('');
  const copy = (from: number, to: number) => {
    for (let at = from; at < to; at++) view[at] = source[at]!;
  };
  const placeholder = (from: number, to: number) => {
    for (let at = from; at < to; at++) if (source[at] !== '\n') view[at] = at === from ? '$' : 'X';
  };
  const visit = (node: ts.Node): void => {
    if (ts.isStringLiteral(node) || ts.isNoSubstitutionTemplateLiteral(node)) {
      copy(node.getStart(file) + 1, node.end - 1);
    } else if (ts.isTemplateExpression(node)) {
      copy(node.getStart(file) + 1, node.end - 1);
      let previousEnd = node.head.end;
      for (const span of node.templateSpans) {
        // `${` ... `}` reads as one value.
        placeholder(previousEnd - 2, span.literal.getStart(file) + 1);
        previousEnd = span.literal.end;
      }
    }
    ts.forEachChild(node, visit);
  };
  visit(file);
  return view.join('');
}

/** How many arguments the call whose `(` ends just before `from` has (commas at its depth, plus one). */
function topLevelArguments(text: string, from: number): number {
  let depth = 0;
  let count = 1;
  let quoted = false;
  for (let at = from; at < text.length; at++) {
    const char = text[at];
    if (char === "'") quoted = !quoted;
    else if (quoted) continue;
    else if (char === '(' || char === '[') depth++;
    else if (char === ')' || char === ']') {
      if (depth === 0) return count;
      depth--;
    } else if (char === ',' && depth === 0) count++;
  }
  return count;
}

/** Unqualified calls of {@link CATALOG_ONLY_CALLS} and {@link PLANTABLE_COMPARISONS} in a file's literals. */
export function unqualifiedCatalogUses(fileName: string, source: string): Finding[] {
  return unqualifiedUsesIn(literalText(fileName, source));
}

/**
 * The same in SQL text (offsets and lines of `text`); anything not to scan already
 * masked with a character that is neither a word character nor a blank.
 */
function unqualifiedUsesIn(text: string): Finding[] {
  const lineOf = (offset: number) => text.slice(0, offset).split('\n').length;
  const findings: (Finding & { readonly at: number })[] = [];
  const report = (match: RegExpMatchArray, why: string) =>
    findings.push({ at: match.index!, line: lineOf(match.index!), text: match[0].trim(), why });
  for (const match of text.matchAll(CALL)) {
    const name = match[2]!.toLowerCase();
    // unnest(a, b) exists only in FROM, where the parser expands it to one
    // pg_catalog.unnest per argument: no lookalike is consulted.
    if (name === 'unnest' && topLevelArguments(text, match.index! + match[0].length) > 1) continue;
    report(match, `${match[2]}(...) unqualified: call pg_catalog.${name}`);
  }
  for (const match of text.matchAll(COUNT_OF_A_VALUE))
    report(match, 'count(value) is count("any"): call pg_catalog.count');
  for (const { why, pattern } of PLANTABLE_COMPARISONS)
    for (const match of text.matchAll(pattern)) report(match, why);
  for (const match of text.matchAll(UNQUALIFIED_COLLATION))
    report(match, 'a collation found through the search_path: write COLLATE pg_catalog."C"');
  return findings.sort((a, b) => a.at - b.at).map(({ line, text, why }) => ({ line, text, why }));
}

/** One `CREATE [OR REPLACE] FUNCTION` in SQL text, and whether its body runs on a pinned search_path. */
export interface FunctionDefinition {
  /** The function's name as written (`{{audit_schema}}.key_of`). */
  readonly name: string;
  /** 1-based line of `CREATE`. */
  readonly line: number;
  /** A `SET search_path` clause: the body runs on that path, whoever calls it. */
  readonly pinned: boolean;
  readonly securityDefiner: boolean;
  /** Findings of {@link unqualifiedCatalogUses} in the body, at lines of the whole text. */
  readonly findings: readonly Finding[];
}

/**
 * `--` comments and the text of '…' constants as `§` (newlines and quotes kept), in one
 * pass: a constant may hold `--`, a comment an apostrophe.
 */
function maskCommentsAndConstants(text: string): string {
  const view = text.split('');
  for (let at = 0; at < view.length; at++) {
    if (text.startsWith('--', at)) {
      for (; at < view.length && text[at] !== '\n'; at++) view[at] = '\u00a7';
    } else if (text[at] === "'") {
      for (at++; at < view.length; at++) {
        if (text[at] === "'" && text[at + 1] === "'") view[at] = view[++at] = '\u00a7';
        else if (text[at] === "'") break;
        else if (text[at] !== '\n') view[at] = '\u00a7';
      }
    }
  }
  return view.join('');
}

const CREATE_FUNCTION =
  /CREATE\s+(?:OR\s+REPLACE\s+)?FUNCTION\s+([^\s(]+)\s*\(([\s\S]*?)\bAS\s+\$(\w*)\$([\s\S]*?)\$\3\$/gi;

/**
 * The functions `text` (SQL: a triggers/*.sql file, or a file's literal text) creates,
 * each body scanned as {@link unqualifiedCatalogUses} scans literals (`--` comments and
 * string constants masked). A body without a `SET search_path` clause is parsed under its
 * caller's search_path (an inlined SQL body, a PL/pgSQL body at first call), so its names
 * are resolved there, not where the function was created.
 */
export function functionDefinitions(text: string): FunctionDefinition[] {
  const masked = maskCommentsAndConstants(text);
  const definitions: FunctionDefinition[] = [];
  for (const match of masked.matchAll(CREATE_FUNCTION)) {
    const header = match[2]!;
    const bodyStart = match.index! + match[0].length - match[4]!.length - match[3]!.length - 2;
    // Only the body is scanned; everything else is masked, keeping lines.
    const bodyOnly =
      masked.slice(0, bodyStart).replace(/[^\n]/g, '\u00a7') +
      match[4]! +
      masked.slice(bodyStart + match[4]!.length).replace(/[^\n]/g, '\u00a7');
    definitions.push({
      name: match[1]!,
      line: masked.slice(0, match.index!).split('\n').length,
      pinned: /\bSET\s+search_path\b/i.test(header),
      securityDefiner: /\bSECURITY\s+DEFINER\b/i.test(header),
      findings: unqualifiedUsesIn(bodyOnly),
    });
  }
  return definitions;
}

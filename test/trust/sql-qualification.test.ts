import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import {
  functionDefinitions,
  literalText,
  unqualifiedCatalogUses,
} from '../support/sql-qualification';

/**
 * The kit's SQL names pg_catalog wherever a lookalike planted in `public` could win
 * (test/support/sql-qualification.ts says which calls and comparisons; the planted-
 * functions tests show each kind running with the kit's rights). Qualifying by hand left
 * a long tail; this keeps it from growing back.
 *
 * triggers/*.sql and migrations/ run on migrate's pinned target session: their statements
 * are not scanned, but the bodies of the functions they (and src/) create are. A body
 * without a SET search_path clause is parsed under its caller's search_path, wherever the
 * function was created (test/trust/helper-search-path.test.ts plants lookalikes against
 * those helpers); a body with one runs on that path, whoever calls it. A SECURITY DEFINER
 * function runs with its owner's rights in its caller's session, so it must pin its path,
 * but for {@link SECURITY_DEFINER_UNPINNED}.
 *
 * Not seen: SQL whose function name is not in a literal (`${fn}(`, a name concatenated
 * from parts), a call split across two literals, and names outside the curated lists.
 */

const ROOT = path.resolve(__dirname, '../..');

/**
 * Files whose every statement runs on a session whose search_path is pg_catalog only
 * (CATALOG_ONLY_SEARCH_PATH, src/postgres/pinned-settings.ts): no lookalike in public is
 * ever consulted there. A file that also talks to an unpinned session does not belong
 * here: qualify its calls instead.
 */
const PINNED_SESSION_FILES: Readonly<Record<string, string>> = {
  'src/engine/staging-writer.ts': "the engine's target session (ENGINE_TARGET_SETTINGS)",
  'src/engine/staging-tables.ts':
    "the engine's target session (readStagingTables, ENGINE_TARGET_SETTINGS)",
  'src/engine/position-store.ts': "the engine's target session (ENGINE_TARGET_SETTINGS)",
  'src/engine/schema-change-positions.ts': "the engine's target session (ENGINE_TARGET_SETTINGS)",
  'src/trust/engine-login.ts':
    "the engine's target session (requireEngineLogin, diagnoseEngineLogin on it)",
  'src/migrate/sync-staging.ts': "migrate's target session (migrate-target.ts's targetOptions)",
  'src/migrate/sync-columns.ts': "migrate's target session (migrate-target.ts's targetOptions)",
  'src/migrate/target-types.ts': "migrate's target session (migrate-target.ts's targetOptions)",
  'src/migrate/readded-tables.ts': "migrate's target session (migrate-target.ts's targetOptions)",
  'src/trust/secure-install.ts':
    "migrate's target session, and integrity's read transaction (SET LOCAL search_path)",
};

/**
 * Files creating SECURITY DEFINER functions that must see their caller's search_path, each with why;
 * their bodies qualify every name by hand (and are scanned as any unpinned body is).
 */
const SECURITY_DEFINER_UNPINNED: Readonly<Record<string, string>> = {
  'src/trust/logins.ts':
    "DMS's DDL capture (src/trust/logins.ts) records the DDL session's current_schema(), which a pinned path would replace",
};

function sourceFiles(dir: string, extension = '.ts'): string[] {
  return readdirSync(path.join(ROOT, dir), { withFileTypes: true }).flatMap((entry) => {
    const relative = `${dir}/${entry.name}`;
    if (entry.isDirectory()) return sourceFiles(relative, extension);
    return entry.name.endsWith(extension) ? [relative] : [];
  });
}

/** Every function the kit creates: triggers/*.sql as SQL, migrations/ and src/ from their literals. */
function kitFunctions() {
  const read = (file: string) => readFileSync(path.join(ROOT, file), 'utf8');
  return [
    ...sourceFiles('triggers', '.sql').map((file) => ({ file, text: read(file) })),
    ...[...sourceFiles('migrations'), ...sourceFiles('src')].map((file) => ({
      file,
      text: literalText(file, read(file)),
    })),
  ].flatMap(({ file, text }) =>
    functionDefinitions(text).map((definition) => ({ file, ...definition })),
  );
}

const findings = (file: string) =>
  unqualifiedCatalogUses(file, readFileSync(path.join(ROOT, file), 'utf8'));

describe("the kit's SQL in src/", () => {
  it('calls no lookalike-prone catalog function or operator unqualified, outside pinned sessions', () => {
    const report = sourceFiles('src')
      .filter((file) => !(file in PINNED_SESSION_FILES))
      .flatMap((file) =>
        findings(file).map((found) => `${file}:${found.line}: ${found.text}  ${found.why}`),
      );
    expect(report, report.join('\n')).toEqual([]);
  });

  it('allow-lists only files that exist and need it', () => {
    for (const file of Object.keys(PINNED_SESSION_FILES))
      expect(findings(file).length, `${file} has nothing to allow: drop it`).toBeGreaterThan(0);
  });
});

describe("the kit's functions (triggers/, migrations/, src/)", () => {
  const functions = kitFunctions();

  it('finds them', () => {
    expect(functions.length).toBeGreaterThan(40);
    expect(functions.map(({ name }) => name)).toContain('{{audit_schema}}.key_of');
  });

  it('call no lookalike-prone catalog function or operator unqualified in a body without SET search_path', () => {
    const report = functions
      .filter(({ pinned }) => !pinned)
      .flatMap(({ file, name, findings }) =>
        findings.map((found) => `${file}:${found.line}: ${name}: ${found.text}  ${found.why}`),
      );
    expect(report, report.join('\n')).toEqual([]);
  });

  it('pin search_path when SECURITY DEFINER, but in the files listed with why', () => {
    const unpinned = functions.filter(({ securityDefiner, pinned }) => securityDefiner && !pinned);
    const report = unpinned
      .filter(({ file }) => !(file in SECURITY_DEFINER_UNPINNED))
      .map(
        ({ file, line, name }) =>
          `${file}:${line}: ${name} is SECURITY DEFINER without SET search_path`,
      );
    expect(report, report.join('\n')).toEqual([]);
    expect([...new Set(unpinned.map(({ file }) => file))].sort()).toEqual(
      Object.keys(SECURITY_DEFINER_UNPINNED).sort(),
    );
  });
});

describe('the SQL qualification scanner', () => {
  const scan = (source: string) =>
    unqualifiedCatalogUses('fixture.ts', source).map((found) => [found.line, found.text]);

  it('finds an unqualified call in a string or template literal, at its line', () => {
    const source = [
      'const a = 1;',
      "await client.query('SELECT array_agg(name) FROM t');",
      'await sql`SELECT x',
      '  FROM ${table} WHERE y = ANY(SELECT unnest(${values}::text[]))`;',
      "const b = `SELECT format('%I', n), count(n), count(*) FROM t`;",
      "const c = 'SELECT pg_has_role($1, ' + \"'member')\";",
    ].join('\n');
    expect(scan(source)).toEqual([
      [2, 'array_agg('],
      [4, 'unnest('],
      [5, 'format('],
      [5, 'count('],
      [6, 'pg_has_role('],
    ]);
  });

  it('finds comparisons pg_catalog has no operator for', () => {
    const source = [
      "const a = `WHERE attrelid = ${name}::regclass AND c.oid <> 'x'::regtype`;",
      "const b = 'SELECT nullif(t.typbasetype, 0), setdatabase = 0 FROM t';",
      "const c = 'WHERE a.attrelid = to_regclass($1)';",
      "const d = 'WHERE $1::regclass = c.oid';",
      "const e = 'FROM pg_partition_tree(r) t JOIN pg_class c ON c.oid = t.relid';",
    ].join('\n');
    expect(scan(source)).toEqual([
      [1, '= $XXXXXX::regclass'],
      [1, "<> 'x'::regtype"],
      [2, 'nullif(t.typbasetype, 0)'],
      [2, 'setdatabase = 0'],
      [3, '= to_regclass('],
      [3, 'to_regclass('],
      [4, '::regclass ='],
      [5, '= t.relid'],
    ]);
  });

  it('finds a collation named without its schema', () => {
    const source = [
      'const a = `ORDER BY q.key COLLATE "C"`;',
      'const b = \'ORDER BY n COLLATE pg_catalog."C", m COLLATE "default"\';',
    ].join('\n');
    expect(scan(source)).toEqual([
      [1, 'COLLATE "C"'],
      [2, 'COLLATE "default"'],
    ]);
  });

  it('reads a quoted name as the name', () => {
    const source = `const a = 'SELECT "format"(x), pg_catalog."format"(y), "my_format"(z)';`;
    expect(scan(source)).toEqual([[1, '"format"(']]);
  });

  it('scans the bodies of the functions SQL creates, saying which pin search_path', () => {
    const sql = [
      '-- array_agg(x) in a comment',
      'CREATE OR REPLACE FUNCTION s.helper(a text[])',
      'RETURNS text LANGUAGE sql IMMUTABLE',
      "AS $function$ SELECT 'array_agg(' || array_to_string(a, ',') $function$;",
      'CREATE FUNCTION s.pinned() RETURNS text LANGUAGE plpgsql SECURITY DEFINER',
      'SET search_path = pg_catalog, pg_temp AS $body$',
      'BEGIN RETURN format($$%s$$, 1); END $body$;',
    ].join('\n');
    expect(
      functionDefinitions(sql).map(({ name, line, pinned, securityDefiner, findings }) => [
        name,
        line,
        pinned,
        securityDefiner,
        findings.map((found) => [found.line, found.text]),
      ]),
    ).toEqual([
      ['s.helper', 2, false, false, [[4, 'array_to_string(']]],
      ['s.pinned', 5, true, true, [[7, 'format(']]],
    ]);
  });

  it('passes qualified calls, casts to oid, multi-array unnest, and code or comments', () => {
    const source = [
      '// array_agg(x) in a comment',
      'const n = format(x);',
      "const a = 'SELECT pg_catalog.array_agg(name), pg_catalog.count(n), count(*) FROM t';",
      "const b = 'WHERE attrelid OPERATOR(pg_catalog.=) $1::regclass AND typbasetype <> 0::pg_catalog.oid';",
      'const c = `SELECT * FROM unnest($1::text[], ${ids}::int[]) AS u(a, b)`;',
      'const d = `SELECT ${schema}.format_row(x), ${schema}.format(x)`;',
      "const e = 'WHERE c.oid = $1::regclass::pg_catalog.oid';",
      "case 'pg_drop_replication_slot': if (isOp(next, '(')) return 1;",
    ].join('\n');
    expect(scan(source)).toEqual([]);
  });
});

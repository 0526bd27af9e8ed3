/**
 * Server CPU of the first-page query's parts (#14): the statement the API sends, and
 * variants of its text without one part each, prepared on one connection and executed
 * in turn for each sampled key (order rotated per key), backend CPU from
 * /proc/<pid>/schedstat per execution. Keys with at least 100 versions (a full page).
 * Usage: npx tsx bench/cases/history-sql-variants.ts [--rows N] [--keys K] [--rounds R]
 */
import { readFile } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import { Kysely, PostgresDialect } from 'kysely';
import pg from 'pg';
import { createHistory } from '../../src/history';
import { formatTextArray, quoteLiteral } from '../../src/postgres/identifiers';
import { withClient } from '../lib/servers';
import { percentile, round } from '../lib/stats';
import { generateAuditRows, migratedHistoryTarget, startHistoryServer } from './history';

async function cpuNs(pid: number): Promise<number> {
  return Number((await readFile(`/proc/${pid}/schedstat`, 'utf8')).split(' ')[0]);
}

const literal = (value: unknown): string => {
  if (value === null || value === undefined) return 'NULL';
  if (Array.isArray(value)) return quoteLiteral(formatTextArray(value.map(String)));
  return quoteLiteral(String(value));
};

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      rows: { type: 'string', default: '1000000' },
      keys: { type: 'string', default: '100' },
      rounds: { type: 'string', default: '3' },
      url: { type: 'string' },
    },
  });
  const server = values.url ? undefined : await startHistoryServer();
  try {
    let targetUrl = values.url;
    if (!targetUrl) {
      targetUrl = (await migratedHistoryTarget(server!)).targetUrl;
      await generateAuditRows(targetUrl, Number(values.rows));
    }
    const keys = await withClient(targetUrl, async (client) => {
      await client.query('SELECT setseed(0.3)');
      const { rows } = await client.query<{ id: string }>(`
        SELECT row_key ->> 'id' AS id FROM audit.audit_log WHERE source_table = 'items'
        GROUP BY 1 HAVING count(*) >= 100 ORDER BY random() LIMIT ${Number(values.keys)}`);
      return rows.map((row) => Number(row.id));
    });
    // The first page's statement as the API sends it, with its values.
    const recorded: { sql: string; parameters: readonly unknown[] }[] = [];
    const logged = new Kysely<unknown>({
      dialect: new PostgresDialect({ pool: new pg.Pool({ connectionString: targetUrl, max: 1 }) }),
      log: (event) => {
        if (event.level === 'query') recorded.push(event.query);
      },
    });
    const history = createHistory(logged);
    await history.history('public.items', { id: keys[0]! }, {});
    recorded.length = 0;
    await history.history('public.items', { id: keys[0]! }, {});
    await logged.destroy();
    const statement = recorded[0]!;
    console.log(statement.sql);
    console.log(JSON.stringify(statement.parameters));
    const keyText = `{"id":${keys[0]}}`;
    if (!statement.parameters.includes(keyText)) throw new Error('no row key parameter');
    const variants: Record<string, string> = { api: statement.sql, ...VARIANTS(statement.sql) };
    for (const [name, text] of Object.entries(variants))
      if (name !== 'api' && text === statement.sql)
        throw new Error(`variant ${name} changes nothing`);
    await withClient(targetUrl, async (client) => {
      const { rows } = await client.query<{ pid: number }>('SELECT pg_backend_pid() AS pid');
      const pid = rows[0]!.pid;
      const names = Object.keys(variants);
      for (const [i, name] of names.entries())
        await client.query(`PREPARE v${i} AS ${variants[name]}`);
      const run = async (i: number, key: number) => {
        const parameters = statement.parameters.map((p) => (p === keyText ? `{"id":${key}}` : p));
        const before = await cpuNs(pid);
        const { rowCount } = await client.query(
          `EXECUTE v${i}(${parameters.map(literal).join(', ')})`,
        );
        if (rowCount !== 100) throw new Error(`${names[i]}: ${rowCount} rows for key ${key}`);
        return ((await cpuNs(pid)) - before) / 1e6;
      };
      for (const key of keys.slice(0, 10)) for (let i = 0; i < names.length; i++) await run(i, key);
      const ms: number[][] = names.map(() => []);
      for (let round = 0; round < Number(values.rounds); round++)
        for (const [k, key] of keys.entries())
          for (let j = 0; j < names.length; j++) {
            const i = (j + k + round) % names.length;
            ms[i]!.push(await run(i, key));
          }
      console.log(
        `server CPU ms per first page (100 versions), ${keys.length} keys x ${values.rounds}`,
      );
      for (const [i, name] of names.entries()) {
        const list = ms[i]!;
        const mean = list.reduce((a, b) => a + b, 0) / list.length;
        console.log(
          `${name.padEnd(24)} mean ${round(mean, 3)} p50 ${round(percentile(list, 50), 3)} p90 ${round(percentile(list, 90), 3)}`,
        );
      }
    });
  } finally {
    await server?.stop();
  }
}

/** `text` with `from` replaced by `to`; an error if `from` is not in it. */
function replaced(text: string, from: string | RegExp, to: string): string {
  const out = text.replace(from, to);
  if (out === text) throw new Error(`not in the statement: ${String(from)}`);
  return out;
}

/** The statement without its context lateral (and its context column NULL). */
function withoutContext(text: string): string {
  const start = text.indexOf('left join lateral (');
  const end = text.indexOf(') as "ctx" on true');
  if (start < 0 || end < 0) throw new Error('no context lateral');
  return replaced(
    text.slice(0, start) + text.slice(end + ') as "ctx" on true'.length),
    /ctx\.context::text/,
    'NULL::text',
  );
}

/** The context lateral without its join to audited_table (its filter left in place). */
function withoutContextTableJoin(text: string): string {
  return replaced(
    text,
    /JOIN "audit"\."audited_table" AS ct\s+ON ct\.source_schema = c\.source_schema AND ct\.source_table = c\.source_table/,
    '',
  );
}

/** The context looked up by a scalar subquery in the select list instead of a lateral join. */
function contextAsScalar(text: string): string {
  const open = 'left join lateral (';
  const start = text.indexOf(open);
  const end = text.indexOf(') as "ctx" on true');
  if (start < 0 || end < 0) throw new Error('no context lateral');
  const body = replaced(
    text.slice(start + open.length, end),
    /coalesce\(c\.new_row, '\{\}'\) AS context/,
    "coalesce(c.new_row, '{}')::text",
  );
  return replaced(withoutContext(text), 'NULL::text as "context"', `(${body}) as "context"`);
}

/** The context tables found once per query (an InitPlan) instead of joined per version. */
function contextTablesOnce(text: string): string {
  return replaced(
    withoutContextTableJoin(text),
    /AND ct\.source_context/,
    `AND (c.source_schema, c.source_table) = ANY (ARRAY(
       SELECT (ct.source_schema, ct.source_table) FROM "audit"."audited_table" AS ct
        WHERE ct.source_context))`,
  );
}

/** Variants of the statement's text, each without one part. */
function VARIANTS(text: string): Record<string, string> {
  const docsNull = replaced(
    replaced(text, '"l"."old_row"::text', 'NULL::text'),
    '"l"."new_row"::text',
    'NULL::text',
  );
  return {
    'no context': withoutContext(text),
    // The context tables found once per query (an InitPlan) instead of joined per version.
    'context tables once': contextTablesOnce(text),
    'context scalar, tables once': contextAsScalar(contextTablesOnce(text)),
    'context, no ct join': replaced(withoutContextTableJoin(text), /AND ct\.source_context/, ''),
    'commit time ::text': replaced(text, /to_char\([^)]*\)/, '"l"."commit_timestamp"::text'),
    'no row documents': docsNull,
    'no schema/table/exact cols': replaced(
      replaced(text, /, "l"\."source_schema", "l"\."source_table"/, ''),
      ', "t"."exact_number_columns"',
      '',
    ),
    'ids only': withoutContext(docsNull).replace(
      /^select [\s\S]*? from "audit"\."audit_log"/i,
      'select l.id from "audit"."audit_log"',
    ),
  };
}

void main().catch((error: unknown) => {
  console.error(error);
  process.exitCode = 1;
});

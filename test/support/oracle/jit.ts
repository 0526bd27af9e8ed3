import { existsSync } from 'node:fs';
import path from 'node:path';
import pg from 'pg';
import { LOGICAL_REPLICATION_SETTINGS } from '../../../src/postgres/local-server';
import { startServerFromBinaries, type BinariesPostgres } from '../binaries-server';

/**
 * JIT on the target (#17 item 18): PostgreSQL's default where LLVM is present (Debian's,
 * RDS's and Aurora's builds; the embedded test servers have none). A JIT-compiled
 * staging statement costs ~1.6 s instead of ~10 ms, so nothing the kit runs may compile.
 * The oracle proves it with the server's own counters, not with timings: the server
 * below JIT-compiles every statement that may be compiled (every jit threshold 0) and
 * pg_stat_statements counts, per statement and nesting level, the functions compiled.
 */

/** Where Debian's PostgreSQL 15 lives (`PGAUDIT_PG_BIN` points elsewhere, as for pgAudit). */
const JIT_BIN = process.env.PGAUDIT_PG_BIN ?? '/usr/lib/postgresql/15/bin';

/** Whether a PostgreSQL with LLVM JIT can be started here, and why not. */
export type JitAvailability =
  { available: true; bin: string } | { available: false; reason: string };

/** Finds PostgreSQL binaries with LLVM JIT (llvmjit.so) beside them. */
export function detectJitServer(): JitAvailability {
  if (!existsSync(path.join(JIT_BIN, 'postgres')))
    return {
      available: false,
      reason: `no PostgreSQL binaries in ${JIT_BIN} (apt-get install postgresql-15)`,
    };
  const llvm = path.join(JIT_BIN, '..', 'lib', 'llvmjit.so');
  if (!existsSync(llvm))
    return { available: false, reason: `this PostgreSQL has no LLVM JIT (${llvm} missing)` };
  return { available: true, bin: JIT_BIN };
}

/**
 * Settings that make the server JIT-compile whatever it can: JIT on (the default, set
 * anyway), every cost threshold 0 (so even a one-row statement compiles, inlined and
 * optimised), and pg_stat_statements tracking nested statements too (those the kit's
 * trigger functions run), with room for a long fuzz run's statements.
 */
export const FORCED_JIT_SETTINGS: Readonly<Record<string, string>> = {
  jit: 'on',
  jit_above_cost: '0',
  jit_inline_above_cost: '0',
  jit_optimize_above_cost: '0',
  shared_preload_libraries: 'pg_stat_statements',
  'pg_stat_statements.track': 'all',
  'pg_stat_statements.max': '20000',
};

/**
 * Starts a throw-away server from `bin` (see {@link detectJitServer}) for the history
 * oracle: logical replication and commit timestamps as on the default test server,
 * plus {@link FORCED_JIT_SETTINGS}; pg_stat_statements is created in `postgres`.
 */
export async function startJitServer(bin: string): Promise<BinariesPostgres> {
  const server = await startServerFromBinaries(bin, {
    ...LOGICAL_REPLICATION_SETTINGS,
    ...FORCED_JIT_SETTINGS,
  });
  const admin = new pg.Client({ connectionString: server.url() });
  await admin.connect();
  try {
    await admin.query('CREATE EXTENSION IF NOT EXISTS pg_stat_statements');
  } finally {
    await admin.end();
  }
  return server;
}

/**
 * The harness's own sessions run with JIT off, so that anything pg_stat_statements
 * counts as compiled in the workload's databases was run by the kit (or by the DMS
 * stand-in, see {@link jitProblems}). Harmless where the server has no JIT.
 */
export const HARNESS_SESSION_OPTIONS = '-c jit=off';

const PROBE = 'history_oracle_jit_probe';

/** The databases a scenario ran in, by oid (read when they were created). */
export interface JitCheckedDatabases {
  readonly source: { name: string; oid: string };
  readonly target: { name: string; oid: string };
}

/**
 * What pg_stat_statements says was JIT-compiled in the scenario's databases, one line
 * per statement that must not have been (empty: none). Allowed: the DMS stand-in's own
 * top-level writes to staging on the DMS pipeline (DMS's session has JIT on, as the
 * server default says; only the statements the kit's triggers run inside it may not
 * compile). Before that, a probe in each database, in a session with JIT on, must
 * compile: else the server did not JIT at all and the check would prove nothing.
 * `admin` is a superuser session on the server (in any database but these two).
 */
export async function jitProblems(
  admin: pg.ClientBase,
  databases: JitCheckedDatabases,
  probe: { source: pg.ClientBase; target: pg.ClientBase },
  pipeline: 'engine' | 'dms',
): Promise<string[]> {
  const problems: string[] = [];
  // pg_stat_statements replaces constants: the alias names the probe.
  const probeSql = `SELECT count(*) AS ${PROBE} FROM pg_catalog.pg_class WHERE relname <> 'probe'`;
  for (const client of [probe.source, probe.target]) {
    await client.query('SET jit = on');
    await client.query(probeSql);
    await client.query('RESET jit');
  }
  const oids = [databases.source.oid, databases.target.oid];
  const { rows } = await admin.query<{
    dbid: string;
    toplevel: boolean;
    query: string;
    jit_functions: string;
  }>(
    `SELECT dbid::text, toplevel, query, jit_functions::text
       FROM pg_stat_statements
      WHERE dbid::text = ANY($1::text[]) AND jit_functions > 0`,
    [oids],
  );
  for (const database of [databases.source, databases.target])
    if (!rows.some((r) => r.dbid === database.oid && r.query.includes(PROBE)))
      problems.push(
        `JIT check: the probe in ${database.name} was not JIT-compiled: the server does not JIT, so the check proves nothing`,
      );
  const dmsOwn = (r: (typeof rows)[number]) =>
    pipeline === 'dms' &&
    r.dbid === databases.target.oid &&
    r.toplevel &&
    /^(INSERT INTO|UPDATE) /.test(r.query) &&
    /\bar_h_operation\b/.test(r.query);
  for (const row of rows) {
    if (row.query.includes(PROBE) || dmsOwn(row)) continue;
    const where = row.dbid === databases.source.oid ? 'source' : 'target';
    problems.push(
      `JIT check: a ${row.toplevel ? 'top-level' : 'nested'} statement on the ${where} was JIT-compiled (${row.jit_functions} functions): ${row.query.replace(/\s+/g, ' ').slice(0, 300)}`,
    );
  }
  // Forget the two databases' statements: a long fuzz run would fill the view.
  for (const oid of oids)
    await admin.query('SELECT pg_stat_statements_reset(0, $1::oid, 0)', [oid]);
  return problems;
}

import type { TestProject } from 'vitest/node';
import { claimTestRun, type CleanupReport } from './run-cleanup';
import { startTestServer } from './server';

declare module 'vitest' {
  export interface ProvidedContext {
    /** Superuser URL of the test server's `postgres` database. */
    pgAdminUrl: string;
    /** Which kind of server the suite runs on: embedded, container or url. */
    pgKind: string;
  }
}

/**
 * Starts one PostgreSQL server for the whole run; each test file makes its own databases.
 * A server given by `TEST_PG_URL` outlives the run, so what the run creates on it is
 * dropped at the end (and a crashed run's leftovers at the next start): run-cleanup.ts.
 */
export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const server = await startTestServer();
  project.provide('pgAdminUrl', server.adminUrl);
  project.provide('pgKind', server.kind);
  console.log(`test PostgreSQL: ${server.kind} (${server.version})`);
  if (server.kind !== 'url') return () => server.stop();
  const run = await claimTestRun(server.adminUrl);
  describeCleanup("an earlier run's leftovers", run.leftovers);
  return async () => {
    describeCleanup('what this run created', await run.release());
    await server.stop();
  };
}

/** One line for what a cleanup dropped (`what`), or why it dropped nothing; one per failure. */
function describeCleanup(what: string, report: CleanupReport): void {
  if (report.skipped) {
    console.log(`test PostgreSQL: kept ${what} (${report.skipped}): the last run to end drops it`);
    return;
  }
  const dropped = [
    [report.databases.length, 'databases'],
    [report.roles.length, 'roles'],
    [report.slots.length, 'replication slots'],
  ].filter(([count]) => Number(count) > 0);
  if (dropped.length > 0)
    console.log(
      `test PostgreSQL: dropped ${what}: ${dropped.map(([n, kind]) => `${n} ${kind}`).join(', ')}`,
    );
  for (const failure of report.failures) console.warn(`test PostgreSQL: could not drop ${failure}`);
}

import type { TestProject } from 'vitest/node';
import { startTestServer } from './server';

declare module 'vitest' {
  export interface ProvidedContext {
    /** Superuser URL of the test server's `postgres` database. */
    pgAdminUrl: string;
    /** Which kind of server the suite runs on: embedded, container or url. */
    pgKind: string;
  }
}

/** Starts one PostgreSQL server for the whole run; each test file makes its own databases. */
export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const server = await startTestServer();
  project.provide('pgAdminUrl', server.adminUrl);
  project.provide('pgKind', server.kind);
  console.log(`test PostgreSQL: ${server.kind} (${server.version})`);
  return () => server.stop();
}

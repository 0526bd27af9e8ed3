import { reachesServerLog } from '../../src/access-audit/message-levels';
import { withClient } from '../support/databases';
import { describeWithPgaudit } from './support/live-suite';
import type { PgauditServer } from './support/pgaudit-server';

/**
 * `pgaudit check` judges `log_min_messages` and `log_min_error_statement` by one order of
 * PostgreSQL's message levels (src/access-audit/message-levels.ts). Here the server
 * itself says what reaches its log: a message raised at each level a session can raise,
 * under each minimum, and the STATEMENT of an ERROR under each `log_min_error_statement`.
 * The minimums are the ones the server accepts (`pg_settings.enumvals`), not the kit's list.
 */
/** What PL/pgSQL can raise, by the level it is raised at (RAISE DEBUG is DEBUG1). */
const RAISED = [
  ['debug1', 'DEBUG'],
  ['log', 'LOG'],
  ['info', 'INFO'],
  ['notice', 'NOTICE'],
  ['warning', 'WARNING'],
  ['error', 'EXCEPTION'],
] as const;

const marker = (minimum: string, level: string) => `level_${level}_under_${minimum}_`;

describeWithPgaudit("PostgreSQL's message levels: what reaches the server log", (start) => {
  let server: PgauditServer;
  let log: string;
  /** The values each setting takes, as the server lists them. */
  let minimums: { messages: string[]; statements: string[] };

  beforeAll(async () => {
    server = await start();
    await withClient(server.adminUrl(), async (admin) => {
      const { rows } = await admin.query<{ name: string; values: string[] }>(
        `SELECT name, enumvals AS values FROM pg_settings
          WHERE name IN ('log_min_messages', 'log_min_error_statement')`,
      );
      const valuesOf = (name: string) => rows.find((row) => row.name === name)!.values;
      minimums = {
        messages: valuesOf('log_min_messages'),
        statements: valuesOf('log_min_error_statement'),
      };
      for (const minimum of minimums.messages) {
        await admin.query(`SET log_min_messages = '${minimum}'`);
        for (const [level, raise] of RAISED)
          await admin
            .query(`DO $$BEGIN RAISE ${raise} '${marker(minimum, level)}message'; END$$`)
            .catch(() => undefined);
      }
      // ERROR lines written (warning), their statements under each minimum.
      await admin.query("SET log_min_messages = 'warning'");
      for (const minimum of minimums.statements) {
        await admin.query(`SET log_min_error_statement = '${minimum}'`);
        await admin.query(`SELECT * FROM public.no_such_table_${minimum}`).catch(() => undefined);
      }
      await admin.query("SET log_min_error_statement = 'error'");
      // The server writes its log before the client gets the reply: no wait needed.
    });
    log = await server.readLog();
  });

  afterAll(async () => {
    await server?.stop();
  });

  it('log_min_messages: what the server wrote under each minimum is what reachesServerLog says', () => {
    expect(minimums.messages).toHaveLength(12);
    const written = (minimum: string) =>
      RAISED.filter(([level]) => log.includes(`:  ${marker(minimum, level)}message`)).map(
        ([level]) => level,
      );
    const expected = (minimum: string) =>
      RAISED.filter(([level]) => reachesServerLog(level, minimum)).map(([level]) => level);
    expect(minimums.messages.map((minimum) => [minimum, written(minimum)])).toEqual(
      minimums.messages.map((minimum) => [minimum, expected(minimum)]),
    );
  });

  it("log_min_error_statement: a refused statement's text is logged where reachesServerLog says an ERROR reaches the log", () => {
    expect(minimums.statements).toHaveLength(12);
    for (const minimum of minimums.statements)
      // The ERROR line is written either way, so a missing STATEMENT line is the setting's.
      expect(log).toContain(`ERROR:  relation "public.no_such_table_${minimum}" does not exist`);
    const logged = (minimum: string) =>
      log.includes(`STATEMENT:  SELECT * FROM public.no_such_table_${minimum}\n`);
    expect(minimums.statements.map((minimum) => [minimum, logged(minimum)])).toEqual(
      minimums.statements.map((minimum) => [minimum, reachesServerLog('error', minimum)]),
    );
  });

  it('a level or minimum PostgreSQL does not have reaches nothing', () => {
    expect(reachesServerLog('log', '')).toBe(false);
    expect(reachesServerLog('error', 'verbose')).toBe(false);
    expect(reachesServerLog('', 'debug5')).toBe(false);
  });
});

import { reachesServerLog } from '../../src/access-audit/message-levels';
import { withClient } from '../support/databases';
import { describeWithPgaudit } from './support/live-suite';
import type { PgauditServer } from './support/pgaudit-server';

/**
 * `pgaudit check` judges `log_min_messages` and `log_min_error_statement` by one order of
 * PostgreSQL's message levels (src/access-audit/message-levels.ts). Here the server
 * itself says what reaches its log: a message raised at each level a session can raise,
 * under each minimum, and the STATEMENT of an ERROR under each `log_min_error_statement`.
 */
const MINIMUMS = [
  'debug5',
  'debug4',
  'debug3',
  'debug2',
  'debug1',
  'log',
  'info',
  'notice',
  'warning',
  'error',
  'fatal',
  'panic',
] as const;
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

  beforeAll(async () => {
    server = await start();
    await withClient(server.adminUrl(), async (admin) => {
      for (const minimum of MINIMUMS) {
        await admin.query(`SET log_min_messages = '${minimum}'`);
        for (const [level, raise] of RAISED)
          await admin
            .query(`DO $$BEGIN RAISE ${raise} '${marker(minimum, level)}message'; END$$`)
            .catch(() => undefined);
      }
      // ERROR lines written (warning), their statements under each minimum.
      await admin.query("SET log_min_messages = 'warning'");
      for (const minimum of MINIMUMS) {
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

  it.each(MINIMUMS)('log_min_messages = %s', (minimum) => {
    const written = RAISED.filter(([level]) =>
      log.includes(`:  ${marker(minimum, level)}message`),
    ).map(([level]) => level);
    expect(written).toEqual(
      RAISED.filter(([level]) => reachesServerLog(level, minimum)).map(([level]) => level),
    );
  });

  it.each(MINIMUMS)("log_min_error_statement = %s: a refused statement's text", (minimum) => {
    const statement = `SELECT * FROM public.no_such_table_${minimum}`;
    // The ERROR line is written either way, so a missing STATEMENT line is the setting's.
    expect(log).toContain(`ERROR:  relation "public.no_such_table_${minimum}" does not exist`);
    expect(log.includes(`STATEMENT:  ${statement}\n`)).toBe(reachesServerLog('error', minimum));
  });

  it('a level or minimum PostgreSQL does not have reaches nothing', () => {
    expect(reachesServerLog('log', '')).toBe(false);
    expect(reachesServerLog('error', 'verbose')).toBe(false);
    expect(reachesServerLog('', 'debug5')).toBe(false);
  });
});

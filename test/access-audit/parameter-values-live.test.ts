import {
  AccessAuditPipeline,
  setupPgaudit,
  splitLogRecords,
  type AuditEvent,
} from '../../src/access-audit';
import type { LogFormat } from '../../src/access-audit/parser';
import { parseAccessAuditConfig } from '../../src/config/access-audit';
import { withClient } from '../support/databases';
import { createAuditedDatabase } from './support/audited-database';
import { describeWithPgaudit } from './support/live-suite';
import type { PgauditServer } from './support/pgaudit-server';

/**
 * Bind values as pgAudit writes them (`pgaudit.log_parameter`), on a real server: a
 * single value needs no quoting, so the whole PARAMETER field is the value itself, and
 * a value spelled like one of Object.prototype's members (`constructor`, `__proto__`)
 * must come out as that value, not be taken for a marker such as `<none>`.
 */
const DB = 'appdb';
const CONFIG = parseAccessAuditConfig({ auditedRoles: ['alice'] });
const FORMATS: readonly LogFormat[] = ['stderr', 'csvlog', 'jsonlog'];
const STATEMENT = 'SELECT $1::text AS value';
const VALUES = ['constructor', '__proto__', 'toString', 'hasOwnProperty', '<none>', 'plain'];

function events(log: string, logFormat: LogFormat): AuditEvent[] {
  const pipeline = new AccessAuditPipeline({ ...CONFIG, logFormat });
  return [
    ...splitLogRecords(log, logFormat).flatMap((record) => pipeline.push(record, undefined)),
    ...pipeline.flush(),
  ].flatMap((outcome) => (outcome.kind === 'verdict' ? [outcome.event] : []));
}

describeWithPgaudit('access audit: bind values on a live PostgreSQL', (start) => {
  let server: PgauditServer;

  beforeAll(async () => {
    server = await start({ allFormats: true });
    await createAuditedDatabase(server, DB, { logins: ['alice'] }, async (admin) => {
      await setupPgaudit(admin, CONFIG);
    });
    await withClient(server.userUrl('alice', DB), async (client) => {
      for (const value of VALUES) await client.query(STATEMENT, [value]);
    });
  });

  afterAll(async () => {
    await server?.stop();
  });

  it.each(FORMATS)('reads each single bind value as the value it is (%s)', async (format) => {
    const read = events(await server.readLog(format), format).filter(
      (event) => event.statement === STATEMENT,
    );
    expect(read.map((event) => [event.parameterStatus, event.parameters])).toEqual([
      ['logged', ['constructor']],
      ['logged', ['__proto__']],
      ['logged', ['toString']],
      ['logged', ['hasOwnProperty']],
      // pgAudit quotes no '<': a bind value spelled like a marker is read as the marker.
      ['none', []],
      ['logged', ['plain']],
    ]);
  });
});

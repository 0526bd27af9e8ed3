import { AccessAuditPipeline, type Classified } from '../../src/access-audit';
import { parseAccessAuditConfig, type AccessAuditConfig } from '../../src/config/access-audit';

// A pipeline reuses the parser of the pipeline built before it when their parser options
// are the same (pipeline.ts, parserFor). These pipelines, built one after another with
// different options, must each read the log as their own options say. (The parser's
// pgauditLogLevel changes nothing it reads: every level's word is one pgAudit writes.)

const BASE = { auditedRoles: ['alice'], serviceAccounts: ['app_svc'] };
const AUDIT = 'AUDIT: SESSION,1,1,WRITE,DELETE,TABLE,public.items,DELETE FROM items,<none>';
const RDS_LINE = `2026-12-01 23:22:08 UTC:10.0.0.5(37962):alice@appdb:[8]:LOG:  ${AUDIT}`;
const OTHER_PREFIX = '%m [%p] %u@%d ';
const OTHER_LINE = `2026-12-01 23:22:08.123 UTC [9] alice@appdb LOG:  ${AUDIT}`;
const CSV_LINE = `2026-12-01 23:22:08.123 UTC,"alice","appdb",10,"10.0.0.5:37962",s,1,"DELETE",2026-12-01 23:22:00 UTC,3/4,0,LOG,00000,"${AUDIT}",,,,,,,,,"psql","client backend",,0`;

function scan(config: Partial<AccessAuditConfig>, line: string): Classified<undefined>[] {
  const pipeline = new AccessAuditPipeline(parseAccessAuditConfig({ ...BASE, ...config }));
  return [...pipeline.push(line, undefined), ...pipeline.flush()];
}

/** What each outcome says: its rule or verdict, and the pid read from the line. */
function read(outcomes: readonly Classified<undefined>[]): (string | number | undefined)[][] {
  return outcomes.map((outcome) =>
    outcome.kind === 'verdict'
      ? [
          outcome.verdict.kind === 'alert' ? outcome.verdict.alert.rule : outcome.verdict.kind,
          outcome.event.pid,
        ]
      : ['unreadable', undefined],
  );
}

describe('pipelines built one after another read the log with their own parser options', () => {
  it('log_line_prefix: each pipeline reads its own prefix, and not the other', () => {
    for (let round = 0; round < 2; round++) {
      expect(read(scan({}, RDS_LINE))).toEqual([['human-dml', 8]]);
      expect(read(scan({ logLinePrefix: OTHER_PREFIX }, OTHER_LINE))).toEqual([['human-dml', 9]]);
      // A line that claims to be pgAudit's under a prefix it does not match: unreadable.
      expect(read(scan({}, OTHER_LINE))).toEqual([['unreadable', undefined]]);
      expect(read(scan({ logLinePrefix: OTHER_PREFIX }, RDS_LINE))).toEqual([
        ['unreadable', undefined],
      ]);
    }
  });

  it('logFormat: stderr and csvlog pipelines in turn', () => {
    for (let round = 0; round < 2; round++) {
      expect(read(scan({ logFormat: 'csvlog' }, CSV_LINE))).toEqual([['human-dml', 10]]);
      expect(read(scan({}, RDS_LINE))).toEqual([['human-dml', 8]]);
      expect(read(scan({}, CSV_LINE))).toEqual([]);
    }
  });
});

import { CsvError, splitCsv } from '../../access-audit/csv';
import { compileLogPrefix, RDS_LOG_LINE_PREFIX } from '../../access-audit/prefix';
import { AccessRuleEngine } from '../../access-audit/rules';
import type { AccessAuditConfig } from '../../config/access-audit';

/** What `sqs.format: raw` sends: the CloudWatch log event as delivered, and where it came from. */
export interface RawLogEvent {
  readonly id: string;
  /** Milliseconds since the epoch, as CloudWatch Logs gives it. */
  readonly timestamp: number;
  readonly message: string;
  readonly logGroup: string;
  readonly logStream: string;
}

/** Who wrote a failed statement's line, as far as the line says. */
interface FailureLine {
  readonly user: string | undefined;
  readonly database: string | undefined;
  readonly ambiguous: boolean;
}

/**
 * Severities of the lines that report a failed statement: stderr logs write `ERROR:`
 * then `STATEMENT:` with its text; csvlog and jsonlog carry the text in the ERROR record.
 */
const FAILURE_SEVERITIES = new Set(['ERROR', 'STATEMENT']);

/**
 * Decides which log events without a forwarded pgAudit record still go out raw: the
 * ERROR and STATEMENT lines of failed statements (a statement that fails before it
 * runs, from a typo to a missing privilege, has no pgAudit record). They go out for the
 * same people as records do: never for service accounts, the canary, ignored databases
 * or the queue's ignore lists; a line whose writer cannot be read unambiguously goes out.
 */
export function failedStatementFilter(config: AccessAuditConfig): (message: string) => boolean {
  const engine = new AccessRuleEngine(config);
  const ignoredUsers = new Set([config.canary.role, ...config.sqs.ignoreUsers]);
  const ignoredDatabases = new Set([...config.ignoreDatabases, ...config.sqs.ignoreDatabases]);
  const read = failureLineReader(config);
  return (message) => {
    const line = read(message);
    if (line === undefined) return false;
    if (line.ambiguous || line.user === undefined) return true;
    if (engine.isServiceAccount(line.user) || ignoredUsers.has(line.user)) return false;
    return line.database === undefined || !ignoredDatabases.has(line.database);
  };
}

function failureLineReader(
  config: Pick<AccessAuditConfig, 'logFormat' | 'logLinePrefix'>,
): (message: string) => FailureLine | undefined {
  switch (config.logFormat) {
    case 'stderr': {
      const matchPrefix = compileLogPrefix(config.logLinePrefix ?? RDS_LOG_LINE_PREFIX);
      return (message) => {
        const prefix = matchPrefix(message);
        if (prefix === undefined) return undefined;
        let pos = prefix.end;
        while (message.charCodeAt(pos) === 32) pos++;
        const colon = message.indexOf(':', pos);
        if (colon < 0 || !FAILURE_SEVERITIES.has(message.slice(pos, colon))) return undefined;
        const { user, database, identityAmbiguous } = prefix.fields;
        return { user, database, ambiguous: identityAmbiguous === true };
      };
    }
    case 'csvlog':
      return (message) => {
        let columns: string[];
        try {
          columns = splitCsv(message);
        } catch (error) {
          if (error instanceof CsvError) return undefined;
          throw error;
        }
        // user, database … error_severity (column 12).
        if (!FAILURE_SEVERITIES.has(columns[11] ?? '')) return undefined;
        return { user: columns[1], database: columns[2], ambiguous: false };
      };
    case 'jsonlog':
      return (message) => {
        let json: Record<string, unknown>;
        try {
          json = JSON.parse(message) as Record<string, unknown>;
        } catch {
          return undefined;
        }
        if (typeof json !== 'object' || json === null) return undefined;
        if (!FAILURE_SEVERITIES.has(String(json.error_severity))) return undefined;
        const text = (key: string) => (typeof json[key] === 'string' ? json[key] : undefined);
        return { user: text('user'), database: text('dbname'), ambiguous: false };
      };
  }
}

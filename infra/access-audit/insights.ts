import * as logs from 'aws-cdk-lib/aws-logs';
import type { AccessAuditConfig } from '../../src/config/access-audit';

/** The RDS log_line_prefix: the only one RDS writes, and the one these queries parse. */
const RDS_PREFIX = '%t:%r:%u@%d:[%p]:';

/**
 * How Logs Insights reads the prefix fields out of one PostgreSQL log message, as
 * `user`, `dbname`, `pid` and `client`, and which messages are pgAudit records.
 * `undefined` for a format the queries cannot read (a custom stderr prefix, csvlog).
 */
interface LogShape {
  readonly parse: string[];
  readonly auditRecord: string;
  readonly client: string;
}

function logShape(config: AccessAuditConfig): LogShape | undefined {
  if (config.logFormat === 'jsonlog')
    // jsonlog messages are JSON: Logs Insights discovers user, dbname, pid, remote_host itself.
    return { parse: [], auditRecord: 'message like /^AUDIT: /', client: 'remote_host' };
  if (config.logFormat === 'stderr' && config.logLinePrefix === RDS_PREFIX)
    return {
      parse: [
        '@message /^\\d{4}-\\d\\d-\\d\\d \\d\\d:\\d\\d:\\d\\d \\w+:(?<client>[^:]*):(?<user>[^@]*)@(?<dbname>[^:]*):\\[(?<pid>\\d+)\\]:/',
      ],
      auditRecord: '@message like /:LOG:  AUDIT: /',
      client: 'client',
    };
  return undefined;
}

/** Roles whose records are not human activity: service accounts, RDS's own, the canary. */
function nonHumanRoles(config: AccessAuditConfig): string {
  const roles = [...config.serviceAccounts, 'rdsadmin', config.canary.role];
  return `[${roles.map((role) => JSON.stringify(role)).join(', ')}]`;
}

/** A saved query: its name suffix and text. */
export interface RunbookQuery {
  readonly name: string;
  readonly query: logs.QueryString;
}

/**
 * The runbook's Logs Insights queries over the PostgreSQL log group ("When an alert
 * fires"): one session's statements (replace the placeholder pid and user with the
 * alert's), human activity in the chosen time window, and privilege changes. Empty
 * when the log's format is one the queries cannot parse.
 */
export function runbookQueries(config: AccessAuditConfig): RunbookQuery[] {
  const shape = logShape(config);
  if (shape === undefined) return [];
  const base = { ...(shape.parse.length > 0 ? { parseStatements: shape.parse } : {}) };
  return [
    {
      name: 'session-statements',
      query: new logs.QueryString({
        ...base,
        // Placeholders: put the alert's pid and user here before running.
        filterStatements: ['pid = 12345', 'user = "alice"'],
        fields: ['@timestamp', 'user', 'dbname', 'pid', shape.client, '@message'],
        sort: '@timestamp asc',
        limit: 10000,
      }),
    },
    {
      name: 'human-activity',
      query: humanActivity(config, shape, 1000),
    },
    {
      name: 'privilege-changes',
      query: new logs.QueryString({
        ...base,
        filterStatements: [
          shape.auditRecord,
          '@message like /AUDIT: (SESSION|OBJECT),\\d+,\\d+,ROLE,/',
        ],
        fields: ['@timestamp', 'user', 'dbname', 'pid', shape.client, '@message'],
        sort: '@timestamp desc',
        limit: 1000,
      }),
    },
  ];
}

/** pgAudit records of every role that is not a service account, RDS's own or the canary. */
export function humanActivity(
  config: AccessAuditConfig,
  shape: LogShape | undefined = logShape(config),
  limit = 50,
): logs.QueryString {
  const parse = shape?.parse ?? [];
  return new logs.QueryString({
    ...(parse.length > 0 ? { parseStatements: parse } : {}),
    filterStatements: [
      shape?.auditRecord ?? '@message like /AUDIT: /',
      ...(shape === undefined ? [] : [`user not in ${nonHumanRoles(config)}`]),
    ],
    fields: [
      '@timestamp',
      ...(shape === undefined ? [] : ['user', 'dbname', shape.client]),
      '@message',
    ],
    sort: '@timestamp desc',
    limit,
  });
}

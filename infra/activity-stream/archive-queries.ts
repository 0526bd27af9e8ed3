/** One saved Athena query of the activity archive. */
export interface ArchiveQuery {
  /** Construct id suffix. */
  readonly id: string;
  readonly name: string;
  readonly description: string;
  readonly sql: string;
}

/**
 * The saved queries of the activity archive's workgroup. Each has its time window written
 * in (edit it, as its first lines say), scans only the `dt` partitions that can hold it (an event is
 * filed under the UTC date Firehose received it, minutes after it happened, so the scan
 * runs to the day after the window), keeps one row per `event_id` (a retried Kinesis
 * record is archived again under the same id) and filters on the statement's own time.
 * Each also warns that events older than `glacierAfterDays` must be restored first.
 */
export function archiveQueries(
  database: string,
  table: string,
  glacierAfterDays: number,
): ArchiveQuery[] {
  const query = (
    id: string,
    name: string,
    description: string,
    filter: string,
    columns: string,
    edit = '',
  ): ArchiveQuery => ({
    id,
    name,
    description,
    sql: `-- ${description}
-- Edit the window: the two times (UTC, end excluded) and the dt range, which runs to the
-- day after the window (dt is the UTC date Firehose received the event).${edit}
-- Events older than ${glacierAfterDays} days are in S3 Glacier: restore them first, Athena
-- skips archived objects without an error.
SELECT ${columns}
FROM (
  SELECT *, row_number() OVER (PARTITION BY event_id ORDER BY dt) AS copy_number
  FROM "${database}"."${table}"
  WHERE dt BETWEEN '2026-11-01' AND '2026-12-01'
    AND from_iso8601_timestamp(event_time) >= TIMESTAMP '2026-11-01 00:00:00 UTC'
    AND from_iso8601_timestamp(event_time) < TIMESTAMP '2026-12-01 00:00:00 UTC'
    AND ${filter}
)
WHERE copy_number = 1
ORDER BY event_time`,
  });
  const common =
    'event_time, db_user, database_name, remote_host, application_name, class, command, object_name, statement, exit_code, error_message, verdict, rule';
  return [
    query(
      'UserActivity',
      'activity of a user',
      'Everything one database user did in a time window.',
      "db_user = 'alice'",
      common,
      ' And the user.',
    ),
    query(
      'TableActivity',
      'activity on a table',
      'Who read or changed one table in a time window.',
      "object_name = 'public.items'",
      common,
      ' And the table (schema-qualified).',
    ),
    query(
      'PrivilegeChanges',
      'privilege changes',
      'GRANT, REVOKE and CREATE, ALTER or DROP ROLE statements in a time window, failed ones included.',
      "class = 'ROLE'",
      common,
    ),
    query(
      'FailedLogins',
      'failed logins',
      'Connection attempts that failed (a CONNECT event with a non-zero exit code or an error) in a time window.',
      "(class = 'CONNECT' OR command = 'CONNECT') AND (coalesce(exit_code, 0) <> 0 OR error_message IS NOT NULL)",
      'event_time, db_user, database_name, remote_host, application_name, command, exit_code, error_message',
    ),
  ];
}

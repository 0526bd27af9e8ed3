import { GetMetricDataCommand, type CloudWatchClient } from '@aws-sdk/client-cloudwatch';
import {
  DescribeReplicationInstancesCommand,
  DescribeReplicationTasksCommand,
  DescribeTableStatisticsCommand,
  ReloadTablesCommand,
  type DatabaseMigrationServiceClient,
  type TableStatistics,
} from '@aws-sdk/client-database-migration-service';

/** One table's counters as `audit-trail status` shows them. */
export interface TableStatus {
  readonly schema: string;
  readonly table: string;
  readonly state: string;
  readonly fullLoadRows: number;
  readonly inserts: number;
  readonly updates: number;
  readonly deletes: number;
  readonly lastUpdate?: string;
  readonly validationState?: string;
}

/** The state of a replication task, its tables and its CDC latency. */
export interface TaskStatus {
  readonly arn: string;
  readonly identifier: string;
  readonly status: string;
  readonly migrationType?: string;
  readonly stopReason?: string;
  readonly lastFailure?: string;
  readonly fullLoadProgressPercent?: number;
  readonly tablesErrored?: number;
  readonly tables: readonly TableStatus[];
  /** Latest CDC latency in seconds (CloudWatch, last 15 minutes); undefined when no data. */
  readonly cdcLatency: { readonly sourceSeconds?: number; readonly targetSeconds?: number };
}

/** `arn:aws:dms:region:account:task:RESOURCEID` → `RESOURCEID`, the CloudWatch dimension value. */
export function taskResourceId(taskArn: string): string {
  const parts = taskArn.split(':');
  if (parts.length < 7 || parts[2] !== 'dms' || parts[5] !== 'task') {
    throw new Error(`not a DMS replication task ARN: ${taskArn}`);
  }
  return parts.slice(6).join(':');
}

/**
 * `arn:aws:dms:REGION:account:task:ID` → `REGION`: a task lives in the region its ARN
 * names, so commands given an ARN need no `--region`.
 */
export function taskRegion(taskArn: string): string {
  taskResourceId(taskArn);
  const region = taskArn.split(':')[3];
  if (!region) throw new Error(`DMS task ARN names no region: ${taskArn}`);
  return region;
}

/** Reads every page of a task's table statistics. */
async function tableStatistics(
  dms: DatabaseMigrationServiceClient,
  arn: string,
): Promise<TableStatistics[]> {
  const all: TableStatistics[] = [];
  let marker: string | undefined;
  do {
    const page = await dms.send(
      new DescribeTableStatisticsCommand({
        ReplicationTaskArn: arn,
        MaxRecords: 500,
        ...(marker && { Marker: marker }),
      }),
    );
    all.push(...(page.TableStatistics ?? []));
    marker = page.Marker;
  } while (marker);
  return all;
}

function toTableStatus(stats: TableStatistics): TableStatus {
  return {
    schema: stats.SchemaName ?? '',
    table: stats.TableName ?? '',
    state: stats.TableState ?? 'unknown',
    fullLoadRows: stats.FullLoadRows ?? 0,
    inserts: stats.Inserts ?? 0,
    updates: stats.Updates ?? 0,
    deletes: stats.Deletes ?? 0,
    ...(stats.LastUpdateTime && { lastUpdate: stats.LastUpdateTime.toISOString() }),
    ...(stats.ValidationState && { validationState: stats.ValidationState }),
  };
}

/** Latest CDCLatencySource / CDCLatencyTarget of a task from CloudWatch. */
async function cdcLatency(
  cloudwatch: CloudWatchClient,
  instanceIdentifier: string,
  taskArn: string,
  now: Date,
): Promise<TaskStatus['cdcLatency']> {
  const dimensions = [
    { Name: 'ReplicationInstanceIdentifier', Value: instanceIdentifier },
    { Name: 'ReplicationTaskIdentifier', Value: taskResourceId(taskArn) },
  ];
  const query = (id: string, metric: string) => ({
    Id: id,
    MetricStat: {
      Metric: { Namespace: 'AWS/DMS', MetricName: metric, Dimensions: dimensions },
      Period: 60,
      Stat: 'Maximum',
    },
  });
  const response = await cloudwatch.send(
    new GetMetricDataCommand({
      StartTime: new Date(now.getTime() - 15 * 60_000),
      EndTime: now,
      ScanBy: 'TimestampDescending',
      MetricDataQueries: [query('source', 'CDCLatencySource'), query('target', 'CDCLatencyTarget')],
    }),
  );
  const latest = (id: string) =>
    response.MetricDataResults?.find((result) => result.Id === id)?.Values?.[0];
  const source = latest('source');
  const target = latest('target');
  return {
    ...(source !== undefined && { sourceSeconds: source }),
    ...(target !== undefined && { targetSeconds: target }),
  };
}

/** Reads a task's state, per-table statistics and CDC latency. */
export async function describeTaskStatus(
  dms: DatabaseMigrationServiceClient,
  cloudwatch: CloudWatchClient,
  taskArn: string,
  now = new Date(),
): Promise<TaskStatus> {
  taskResourceId(taskArn);
  const described = await dms.send(
    new DescribeReplicationTasksCommand({
      Filters: [{ Name: 'replication-task-arn', Values: [taskArn] }],
      WithoutSettings: true,
    }),
  );
  const task = described.ReplicationTasks?.[0];
  if (task === undefined) throw new Error(`no replication task ${taskArn}`);
  const instances = await dms.send(
    new DescribeReplicationInstancesCommand({
      Filters: [{ Name: 'replication-instance-arn', Values: [task.ReplicationInstanceArn ?? ''] }],
    }),
  );
  const instanceIdentifier = instances.ReplicationInstances?.[0]?.ReplicationInstanceIdentifier;
  const stats = task.ReplicationTaskStats;
  return {
    arn: taskArn,
    identifier: task.ReplicationTaskIdentifier ?? '',
    status: task.Status ?? 'unknown',
    ...(task.MigrationType && { migrationType: task.MigrationType }),
    ...(task.StopReason && { stopReason: task.StopReason }),
    ...(task.LastFailureMessage && { lastFailure: task.LastFailureMessage }),
    ...(stats?.FullLoadProgressPercent !== undefined && {
      fullLoadProgressPercent: stats.FullLoadProgressPercent,
    }),
    ...(stats?.TablesErrored !== undefined && { tablesErrored: stats.TablesErrored }),
    tables: (await tableStatistics(dms, taskArn)).map(toTableStatus),
    cdcLatency: instanceIdentifier
      ? await cdcLatency(cloudwatch, instanceIdentifier, taskArn, now)
      : {},
  };
}

/** `schema.table` (or `table`, meaning `public.table`) → a DMS table reference. */
export function parseTableName(name: string): { SchemaName: string; TableName: string } {
  const dot = name.indexOf('.');
  const [schema, table] = dot === -1 ? ['public', name] : [name.slice(0, dot), name.slice(dot + 1)];
  if (schema === '' || table === '')
    throw new Error(`"${name}" is not a table name: expected schema.table`);
  return { SchemaName: schema, TableName: table };
}

/**
 * Reloads tables of a running task: DMS copies them again (a new snapshot in the audit
 * log once the staging rows are re-inserted), or with `validate-only` only re-validates.
 */
export async function reloadTables(
  dms: DatabaseMigrationServiceClient,
  taskArn: string,
  tables: readonly string[],
  option: 'data-reload' | 'validate-only' = 'data-reload',
): Promise<void> {
  await dms.send(
    new ReloadTablesCommand({
      ReplicationTaskArn: taskArn,
      TablesToReload: tables.map(parseTableName),
      ReloadOption: option,
    }),
  );
}

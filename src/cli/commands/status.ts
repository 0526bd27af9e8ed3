import type { Command } from '@commander-js/extra-typings';
import type { TaskStatus } from '../../dms/task-status';
import { CliError, UsageError } from '../errors';
import { jsonOption, regionOption, taskArnOption } from '../options';

/** Options of `audit-trail status`. */

function seconds(value: number | undefined): string {
  return value === undefined ? 'no data' : `${value} s`;
}

/** Human-readable status: the task line, the latency line, one line per table. */
export function formatTaskStatus(status: TaskStatus): string {
  const lines = [
    `task ${status.identifier}: ${status.status}${status.stopReason ? ` (${status.stopReason})` : ''}`,
    ...(status.lastFailure ? [`last failure: ${status.lastFailure}`] : []),
    ...(status.fullLoadProgressPercent !== undefined
      ? [`full load: ${status.fullLoadProgressPercent}%`]
      : []),
    `CDC latency: source ${seconds(status.cdcLatency.sourceSeconds)}, target ${seconds(status.cdcLatency.targetSeconds)}`,
    'tables:',
    ...status.tables.map(
      (table) =>
        `  ${table.schema}.${table.table}: ${table.state}, full load ${table.fullLoadRows} rows, ` +
        `${table.inserts} inserts, ${table.updates} updates, ${table.deletes} deletes` +
        (table.validationState ? `, validation ${table.validationState}` : ''),
    ),
  ];
  if (status.tables.length === 0) lines.push('  (none yet)');
  return `${lines.join('\n')}\n`;
}

/** AWS client options: `--region` if given, else the region in the task ARN. */
export async function clientOptions(
  region: string | undefined,
  taskArn: string,
): Promise<{ region: string }> {
  const { taskRegion } = await import('../../dms/task-status.js');
  return { region: region ?? taskRegion(taskArn) };
}

/**
 * `audit-trail status --task-arn ARN [--region R] [--json]`: the DMS task's state,
 * per-table statistics and CDC latency.
 */
export function registerStatus(program: Command): void {
  program
    .command('status')
    .description('show a DMS task: state, per-table statistics and CDC latency')
    .addOption(taskArnOption())
    .addOption(regionOption())
    .addOption(jsonOption('the status'))
    .action(async (options) => {
      let aws: { region: string };
      try {
        aws = await clientOptions(options.region, options.taskArn);
      } catch (error) {
        throw new UsageError(`--task-arn: ${(error as Error).message}`, {
          hint: 'give the TaskArn output of the stack (arn:aws:dms:REGION:ACCOUNT:task:ID)',
        });
      }
      const { CloudWatchClient, DatabaseMigrationServiceClient } = await import('./aws-clients.js');
      const { describeTaskStatus } = await import('../../dms/task-status.js');
      const dms = new DatabaseMigrationServiceClient(aws);
      const cloudwatch = new CloudWatchClient(aws);
      let status: TaskStatus;
      try {
        status = await describeTaskStatus(dms, cloudwatch, options.taskArn);
      } catch (error) {
        throw CliError.wrap('status', error, {
          code: 'AWS_REQUEST_FAILED',
          hint: 'check the task ARN, the region and your AWS credentials',
        });
      } finally {
        dms.destroy();
        cloudwatch.destroy();
      }
      process.stdout.write(
        options.json ? `${JSON.stringify(status, null, 2)}\n` : formatTaskStatus(status),
      );
    });
}

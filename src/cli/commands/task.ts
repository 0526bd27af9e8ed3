import type { DatabaseMigrationServiceClient } from '@aws-sdk/client-database-migration-service';
import type { Command, OptionValues } from '@commander-js/extra-typings';
import { CliError, UsageError } from '../errors';
import { jsonOption, regionOption, taskArnOption } from '../options';
import { clientOptions } from './status';

/** Options shared by the `task` subcommands. */
interface TaskOptions {
  readonly taskArn: string;
  readonly region?: string;
  readonly wait?: boolean;
  readonly validateOnly?: boolean;
  readonly json?: boolean;
}

/** What a `task` subcommand did: the task's status after it, and the tables it reloads. */
interface TaskOutcome {
  readonly status: string;
  readonly tables?: readonly string[];
}

/** Runs `work` with a DMS client, turning AWS errors into one-line CLI errors. */
async function withDms(
  options: TaskOptions,
  action: string,
  work: (client: DatabaseMigrationServiceClient) => Promise<TaskOutcome>,
) {
  const { taskResourceId } = await import('../../dms/task-status.js');
  const { DatabaseMigrationServiceClient } = await import('./aws-clients.js');
  try {
    taskResourceId(options.taskArn);
  } catch (error) {
    throw new UsageError(`--task-arn: ${(error as Error).message}`, {
      hint: 'give the TaskArn output of the stack (arn:aws:dms:REGION:ACCOUNT:task:ID)',
    });
  }
  const client = new DatabaseMigrationServiceClient(
    await clientOptions(options.region, options.taskArn),
  );
  try {
    const outcome = await work(client);
    process.stdout.write(
      options.json
        ? `${JSON.stringify({ taskArn: options.taskArn, action, ...outcome })}\n`
        : `${outcome.tables ? `reloading ${outcome.tables.join(', ')}` : outcome.status}\n`,
    );
  } catch (error) {
    throw CliError.wrap(`task ${action}`, error, {
      code: 'AWS_REQUEST_FAILED',
      hint: 'check the task ARN, the region and your AWS credentials',
    });
  } finally {
    client.destroy();
  }
}

/** The task ARN names no task in that account and region. */
function taskNotFound(taskArn: string): CliError {
  return new CliError(`no replication task ${taskArn}`, {
    code: 'TASK_NOT_FOUND',
    hint: 'check the task ARN and the region (--region)',
  });
}

/** Adds the options every `task` subcommand takes, keeping the command's option types. */
function withTaskOptions<Args extends unknown[], Opts extends OptionValues>(
  command: Command<Args, Opts>,
) {
  return command.addOption(taskArnOption()).addOption(regionOption()).addOption(jsonOption());
}

/**
 * `audit-trail task start|stop|reload`: controls the DMS task.
 * - `start`: a fresh start (full load + CDC) the first time, a resume afterwards.
 * - `stop`: stops CDC; changes wait in the source's replication slot (bounded by
 *   max_slot_wal_keep_size) until `start` resumes.
 * - `reload TABLE...`: copies tables again. Staging rows already present make DMS's
 *   inserts conflict: truncate the staging table first for a clean re-snapshot.
 */
export function registerTask(program: Command): void {
  const task = program.command('task').description('start, stop or reload tables of the DMS task');

  withTaskOptions(
    task.command('start').description('start the task (resume when it has run before)'),
  )
    .option('--no-wait', 'return once DMS accepted the request')
    .action((options) =>
      withDms(options, 'start', async (client) => {
        const { startOrResume, taskReplication } = await import('../../dms/replication.js');
        const handle = taskReplication(client);
        if (options.wait === false) {
          const state = await handle.describe(options.taskArn);
          if (state === undefined) throw taskNotFound(options.taskArn);
          if (state.status === 'running') return { status: 'running' };
          await handle.start(
            options.taskArn,
            state.hasRun ? 'resume-processing' : 'start-replication',
          );
          return { status: state.hasRun ? 'resuming' : 'starting' };
        }
        return { status: (await startOrResume(handle, options.taskArn)).status };
      }),
    );

  withTaskOptions(task.command('stop').description('stop the task'))
    .option('--no-wait', 'return once DMS accepted the request')
    .action((options) =>
      withDms(options, 'stop', async (client) => {
        const { stopIfActive, taskReplication, waitForStatus } =
          await import('../../dms/replication.js');
        const handle = taskReplication(client);
        const state = await handle.describe(options.taskArn);
        if (state === undefined) throw taskNotFound(options.taskArn);
        if (options.wait === false) {
          if (state.status !== 'running') return { status: state.status };
          await handle.stop(options.taskArn);
          return { status: 'stopping' };
        }
        await stopIfActive(handle, state);
        const stopped = new Set(['stopped', 'ready', 'failed']);
        return { status: (await waitForStatus(handle, options.taskArn, stopped)).status };
      }),
    );

  withTaskOptions(
    task.command('reload').description('reload tables (schema.table) of a running task'),
  )
    .argument('<tables...>', 'tables to reload, as schema.table')
    .option('--validate-only', 'only re-validate the tables (needs validation enabled)')
    .action((tables, options) =>
      withDms(options, 'reload', async (client) => {
        const { reloadTables } = await import('../../dms/task-status.js');
        await reloadTables(
          client,
          options.taskArn,
          tables,
          options.validateOnly ? 'validate-only' : 'data-reload',
        );
        return { status: 'reloading', tables };
      }),
    );
}

import { accessSync, constants, createReadStream, statSync } from 'node:fs';
import type { Readable } from 'node:stream';
import { type Command, InvalidArgumentError, Option } from '@commander-js/extra-typings';
import type pg from 'pg';
import type { LogFormat } from '../../access-audit/parser';
import type { AuditEvent } from '../../access-audit/types';
import type { AccessAuditConfig } from '../../config/access-audit';
import { CliError, UsageError } from '../errors';
import { configOption, jsonOption, requireUrl, sourceUrlOption } from '../options';

/**
 * `audit-trail pgaudit …`: set up and check pgAudit on the source, and read pgAudit
 * logs with the same parser and rule engine the alert Lambda uses.
 */
export function registerPgaudit(program: Command): void {
  const pgaudit = program
    .command('pgaudit')
    .description('Access audit: pgAudit setup, checks and log reading');

  pgaudit
    .command('setup')
    .description(
      'create the pgaudit extension and audit role, and set pgaudit.* on audited roles and service accounts',
    )
    .addOption(configOption())
    .addOption(sourceUrlOption())
    .addOption(jsonOption('the steps done'))
    .option(
      '--dry-run',
      'print the SQL it would run (a psql script, each statement after a comment saying what it does) and change nothing',
    )
    .action(async (options) => {
      const { planPgauditSetup, setupPgaudit } = await import('../../access-audit/setup.js');
      const config = await accessAuditSection(options.config);
      if (options.dryRun) {
        const steps = await withSource(options.sourceUrl, (client) =>
          planPgauditSetup(client, config),
        );
        process.stdout.write(
          options.json
            ? `${JSON.stringify({ dryRun: true, steps })}\n`
            : steps
                .map(
                  (step) =>
                    `-- ${step.done}\n${step.statements.map((sql) => `${sql};\n`).join('')}`,
                )
                .join(''),
        );
        return;
      }
      const steps = await withSource(options.sourceUrl, (client) => setupPgaudit(client, config));
      process.stdout.write(
        options.json
          ? `${JSON.stringify({ done: steps })}\n`
          : steps.map((step) => `done  ${step}\n`).join(''),
      );
    });

  pgaudit
    .command('check')
    .description('report each pgAudit prerequisite as OK or FAIL; exits non-zero on any FAIL')
    .addOption(configOption())
    .addOption(sourceUrlOption())
    .addOption(jsonOption('the checks'))
    .action(async (options) => {
      const { checkPgaudit } = await import('../../access-audit/setup.js');
      const config = await accessAuditSection(options.config);
      const results = await withSource(options.sourceUrl, (client) => checkPgaudit(client, config));
      if (options.json) process.stdout.write(`${JSON.stringify(results)}\n`);
      else
        for (const result of results) {
          const remedy = result.ok || result.remedy === undefined ? '' : ` → ${result.remedy}`;
          process.stdout.write(
            `${result.ok ? 'OK  ' : 'FAIL'}  ${result.item}: ${result.detail}${remedy}\n`,
          );
        }
      const failed = results.filter((result) => !result.ok).length;
      if (failed > 0)
        throw new CliError(`${failed} of ${results.length} pgAudit checks failed`, {
          code: 'CHECKS_FAILED',
          hint: 'each FAIL line says what to change; audit-trail pgaudit setup does what SQL can',
        });
    });

  pgaudit
    .command('canary')
    .description(
      'run the liveness canary as the canary role and wait until its record appears in a log file, read as the alert Lambda reads it',
    )
    .addOption(configOption())
    .addOption(sourceUrlOption())
    .requiredOption('--log-file <file>', "the server's log file the canary's record must reach")
    .option('--timeout <seconds>', 'how long to wait for the record', parseSeconds, 60)
    .action(async (options) => {
      const config = await accessAuditSection(options.config);
      const url = requireUrl(options.sourceUrl, '--source-url');
      const user = decodeURIComponent(new URL(url).username);
      if (user !== config.canary.role)
        throw new UsageError(
          `--source-url logs in as "${user}", but accessAudit.canary.role is "${config.canary.role}": only the canary role's record counts as the canary`,
          { hint: `connect as ${config.canary.role} (audit-trail pgaudit setup creates it)` },
        );
      const start = logFileSize(options.logFile);
      const { runCanary } = await import('../../access-audit/canary.js');
      const nonce = await withSource(url, (client) => runCanary(client));
      process.stdout.write(`ran   canary ${nonce} as ${user}\n`);
      const seen = await waitForCanary(options.logFile, start, nonce, config, options.timeout);
      if (seen === undefined)
        throw new CliError(
          `canary ${nonce} not seen in ${options.logFile} within ${options.timeout} s: pgAudit is not logging the canary role, or the log is not this server's`,
          {
            code: 'CANARY_NOT_SEEN',
            hint: "run audit-trail pgaudit check, and give the server's current log file",
          },
        );
      process.stdout.write(
        `seen  canary ${nonce}: ${seen.user ?? '?'}@${seen.database ?? '?'} pid ${seen.pid ?? '?'} at ${seen.timestamp ?? '?'}\n`,
      );
    });

  pgaudit
    .command('parse')
    .argument('[file]', 'PostgreSQL log file (stdin when omitted)')
    .description(
      'print the pgAudit records of a PostgreSQL log as NDJSON events; forged and unreadable records go to stderr',
    )
    .option('--log-line-prefix <prefix>', "the server's log_line_prefix", '%t:%r:%u@%d:[%p]:')
    .addOption(
      new Option('--log-format <format>', 'the log format')
        .choices(['stderr', 'csvlog', 'jsonlog'] as const satisfies readonly LogFormat[])
        .default('stderr'),
    )
    .action(async (file, options) => {
      const { readAuditLog } = await import('../../access-audit/stream.js');
      let skipped = 0;
      for await (const item of readAuditLog(openInput(file), options)) {
        if (item.kind === 'event') {
          await writeLine(JSON.stringify(item.event));
          continue;
        }
        if (item.kind === 'relayed') {
          // A copy: the worker's own record is printed as an event.
          process.stderr.write(
            `skipped a parallel worker's record logged again by its leader (pid ${item.event.pid ?? '?'})\n`,
          );
          continue;
        }
        skipped++;
        process.stderr.write(
          item.kind === 'forged'
            ? `skipped forged pgAudit record (${item.context}): ${JSON.stringify(item.event)}\n`
            : `skipped unreadable pgAudit record: ${item.error}\n`,
        );
      }
      if (skipped > 0) process.stderr.write(`${skipped} forged or unreadable records skipped\n`);
    });

  pgaudit
    .command('scan')
    .argument('[file]', 'PostgreSQL log file (stdin when omitted)')
    .description(
      'apply the access-audit rules to a PostgreSQL log and print NDJSON alerts, exactly as the alert Lambda decides them',
    )
    .addOption(configOption())
    .option('--all', 'print every pgAudit event with its verdict, not only alerts')
    .action(async (file, options) => {
      const { AccessAuditPipeline } = await import('../../access-audit/pipeline.js');
      const { scanAuditLog } = await import('../../access-audit/stream.js');
      const config = await accessAuditSection(options.config);
      const pipeline = new AccessAuditPipeline(config);
      for await (const outcome of scanAuditLog(openInput(file), pipeline)) {
        if (outcome.kind === 'unreadable') {
          process.stderr.write(`skipped unreadable pgAudit record: ${outcome.error}\n`);
          continue;
        }
        const { verdict, event } = outcome;
        if (verdict.kind === 'alert') await writeLine(JSON.stringify(verdict.alert));
        else if (options.all) await writeLine(JSON.stringify({ verdict, event }));
      }
    });
}

async function accessAuditSection(file: string): Promise<AccessAuditConfig> {
  const { loadConfig } = await import('../../config/load.js');
  const { parseAccessAuditConfig } = await import('../../config/access-audit.js');
  const config = await loadConfig(file);
  return config.accessAudit ?? parseAccessAuditConfig({});
}

async function withSource<T>(
  url: string | undefined,
  work: (client: pg.Client) => Promise<T>,
): Promise<T> {
  const sourceUrl = requireUrl(url, '--source-url');
  const { connectClient } = await import('../../postgres/connect.js');
  const { warnIfPlaintext } = await import('../../postgres/tls.js');
  warnIfPlaintext(sourceUrl);
  // Pinned output settings and the connect timeout, like every kit connection.
  const client = await connectClient(sourceUrl, 'audit-trail', 'source');
  try {
    return await work(client);
  } finally {
    await client.end();
  }
}

function parseSeconds(value: string): number {
  const seconds = Number(value);
  if (!Number.isFinite(seconds) || seconds <= 0)
    throw new InvalidArgumentError('must be a positive number of seconds');
  return seconds;
}

function logFileSize(file: string): number {
  try {
    return statSync(file).size;
  } catch (error) {
    throw new UsageError(`cannot read log file ${file}: ${(error as Error).message}`, {
      code: 'FILE_UNREADABLE',
    });
  }
}

/**
 * Reads the log from `start` again every 200 ms, through the same pipeline as the alert
 * Lambda, until the canary record with `nonce` appears; its event, or `undefined` at the
 * deadline.
 */
async function waitForCanary(
  file: string,
  start: number,
  nonce: string,
  config: AccessAuditConfig,
  timeoutSeconds: number,
): Promise<AuditEvent | undefined> {
  const { AccessAuditPipeline } = await import('../../access-audit/pipeline.js');
  const { scanAuditLog } = await import('../../access-audit/stream.js');
  const deadline = Date.now() + timeoutSeconds * 1000;
  for (;;) {
    const pipeline = new AccessAuditPipeline(config);
    for await (const outcome of scanAuditLog(createReadStream(file, { start }), pipeline)) {
      if (
        outcome.kind === 'verdict' &&
        outcome.verdict.kind === 'canary' &&
        outcome.verdict.nonce === nonce
      )
        return outcome.event;
    }
    if (Date.now() >= deadline) return undefined;
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}

function openInput(file: string | undefined): Readable {
  if (file === undefined || file === '-') return process.stdin;
  try {
    accessSync(file, constants.R_OK);
  } catch (error) {
    throw new UsageError(`cannot read log file ${file}: ${(error as Error).message}`, {
      code: 'FILE_UNREADABLE',
    });
  }
  return createReadStream(file);
}

/** Writes one line to stdout, waiting when the pipe is full. */
async function writeLine(line: string): Promise<void> {
  if (!process.stdout.write(`${line}\n`))
    await new Promise((resolve) => process.stdout.once('drain', resolve));
}

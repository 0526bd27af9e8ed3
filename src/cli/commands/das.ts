import { readFile } from 'node:fs/promises';
import type { Command } from '@commander-js/extra-typings';
import type { DasDecodeResult } from '../../access-audit/das/decode';
import type { DataKeySource } from '../../access-audit/das/keys';
import type { AccessAuditConfig } from '../../config/access-audit';
import { CliError, UsageError } from '../errors';
import { configOption } from '../options';

/**
 * `audit-trail das …`: decode captured Database Activity Stream records with the
 * plaintext data key, and apply the access-audit rules to them.
 */
export function registerDas(program: Command): void {
  const das = program
    .command('das')
    .description('Access audit: decode Database Activity Stream records captured from Kinesis');

  recordsCommand(das, 'decode')
    .description(
      'print the activity events of DAS records as NDJSON events (as `pgaudit parse` does); unreadable records go to stderr',
    )
    .action(async (records, options) => {
      const result = await decode(records, options.dataKeyFile);
      for (const { event } of result.events) await writeLine(JSON.stringify(event));
      reportFailures(result);
    });

  recordsCommand(das, 'scan')
    .addOption(configOption())
    .option('--all', 'print every activity event with its verdict, not only alerts')
    .description('apply the access-audit rules to DAS records and print NDJSON alerts')
    .action(async (records, options) => {
      const { AccessRuleEngine } = await import('../../access-audit/rules.js');
      const engine = new AccessRuleEngine(await accessAuditSection(options.config));
      const result = await decode(records, options.dataKeyFile);
      for (const { event } of result.events) {
        const verdict = engine.evaluate(event);
        if (verdict.kind === 'alert') await writeLine(JSON.stringify(verdict.alert));
        else if (options.all) await writeLine(JSON.stringify({ verdict, event }));
      }
      reportFailures(result);
    });
}

/** A `das` subcommand that reads captured records with their data key ({@link decode}'s two inputs). */
function recordsCommand(das: Command, name: string) {
  return das
    .command(name)
    .argument(
      '<records>',
      'JSON file: DAS records, `aws kinesis get-records` output or a Lambda Kinesis event',
    )
    .requiredOption(
      '--data-key-file <file>',
      'the plaintext 32-byte data key (raw bytes or base64)',
    );
}

async function decode(recordsFile: string, dataKeyFile: string): Promise<DasDecodeResult> {
  const keys = await readDataKey(dataKeyFile);
  const text = await readInput(recordsFile, 'records file');
  let json: unknown;
  try {
    json = JSON.parse(text.toString('utf8'));
  } catch (error) {
    throw new UsageError(`records file ${recordsFile} is not JSON: ${(error as Error).message}`);
  }
  const { decodeDasRecords } = await import('../../access-audit/das/decode.js');
  const { dasRecordTexts } = await import('../../access-audit/das/input.js');
  return decodeDasRecords(dasRecordTexts(json), keys);
}

/** The data key as 32 raw bytes, or base64 text of them (what `aws kms decrypt` prints). */
async function readDataKey(file: string): Promise<DataKeySource> {
  const { staticDataKeySource } = await import('../../access-audit/das/keys.js');
  const bytes = await readInput(file, 'data key file');
  const base64 = bytes.toString('utf8').trim();
  const key =
    bytes.length !== 32 && /^[A-Za-z0-9+/]+={0,2}$/.test(base64)
      ? Buffer.from(base64, 'base64')
      : bytes;
  try {
    return staticDataKeySource(key);
  } catch (error) {
    throw new UsageError(`--data-key-file ${file}: ${(error as Error).message}`);
  }
}

async function readInput(file: string, what: string): Promise<Buffer> {
  try {
    return await readFile(file);
  } catch (error) {
    throw new UsageError(`cannot read ${what} ${file}: ${(error as Error).message}`);
  }
}

/** Unreadable records on stderr, and exit 1: an activity record nobody could read may hide activity. */
function reportFailures(result: DasDecodeResult): void {
  for (const failure of result.failures) {
    const where =
      failure.event === undefined
        ? `record ${failure.record}`
        : `record ${failure.record} event ${failure.event}`;
    process.stderr.write(`unreadable DAS ${where}: ${failure.error}\n`);
  }
  const { heartbeat, rdsadmin } = result.dropped;
  if (heartbeat + rdsadmin > 0)
    process.stderr.write(`dropped ${heartbeat} heartbeat and ${rdsadmin} rdsadmin events\n`);
  if (result.failures.length > 0)
    throw new CliError(`${result.failures.length} DAS records or events could not be read`, {
      code: 'UNREADABLE_RECORDS',
      hint: 'an unreadable record may hide activity: check the data key and the records file',
    });
}

async function accessAuditSection(file: string): Promise<AccessAuditConfig> {
  const { loadConfig } = await import('../../config/load.js');
  const { parseAccessAuditConfig } = await import('../../config/access-audit.js');
  const config = await loadConfig(file);
  return config.accessAudit ?? parseAccessAuditConfig({});
}

/** Writes one line to stdout, waiting when the pipe is full. */
async function writeLine(line: string): Promise<void> {
  if (!process.stdout.write(`${line}\n`))
    await new Promise((resolve) => process.stdout.once('drain', resolve));
}

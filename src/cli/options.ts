import { Option } from '@commander-js/extra-typings';
import { DEFAULT_CONFIG_FILE } from '../config/default-file';
import { assertPostgresUrl } from '../postgres/url';
import { UsageError } from './errors';

/*
 * Every option that more than one command takes is defined here, once: the same flag,
 * description, default and environment variable wherever it appears.
 */

/** `-c, --config <file>`, also read from AUDIT_TRAIL_CONFIG, defaulting to ./audit-trail.config.json. */
export function configOption() {
  return new Option('-c, --config <file>', 'config file (JSON or TS module)')
    .env('AUDIT_TRAIL_CONFIG')
    .default(DEFAULT_CONFIG_FILE);
}

/** `--json`: the command's result as one JSON document on stdout (errors stay on stderr). */
export function jsonOption(what = 'the result') {
  return new Option('--json', `print ${what} as one JSON document`);
}

/** `--task-arn <arn>` (required): the DMS replication task. */
export function taskArnOption() {
  return new Option(
    '--task-arn <arn>',
    'replication task ARN (stack output TaskArn)',
  ).makeOptionMandatory();
}

/** `--region <region>`: the AWS region, when not the one in the task ARN. */
export function regionOption() {
  return new Option('--region <region>', 'AWS region (default: the region in the task ARN)');
}

/** `--source-url <url>`, also read from AUDIT_TRAIL_SOURCE_URL. */
export function sourceUrlOption() {
  return new Option('--source-url <url>', 'source PostgreSQL URL').env('AUDIT_TRAIL_SOURCE_URL');
}

/** `--target-url <url>`, also read from AUDIT_TRAIL_TARGET_URL. */
export function targetUrlOption() {
  return new Option(
    '--target-url <url>',
    'target PostgreSQL URL (staging tables and audit log)',
  ).env('AUDIT_TRAIL_TARGET_URL');
}

/** Checks a required URL option: present and a postgres:// URL. */
export function requireUrl(value: string | undefined, flag: string): string {
  if (value === undefined || value === '')
    throw new UsageError(`${flag} is required (or set its environment variable)`);
  return assertPostgresUrl(value, flag);
}

/** `--target-arn <arn>`: the target Aurora cluster, reached through the RDS Data API. */
export function targetArnOption() {
  return new Option(
    '--target-arn <arn>',
    'target Aurora cluster ARN: query through the RDS Data API (IAM, no network path) instead of --target-url',
  ).env('AUDIT_TRAIL_TARGET_ARN');
}

/** `--secret-arn <arn>`: the login the Data API runs as (the stack's AuditorSecretArn). */
export function secretArnOption() {
  return new Option(
    '--secret-arn <arn>',
    "with --target-arn: secret of the login to run as (the stack's AuditorSecretArn output)",
  ).env('AUDIT_TRAIL_SECRET_ARN');
}

/** `--database <name>`: the target database for the Data API. */
export function targetDatabaseOption() {
  return new Option(
    '--database <name>',
    "with --target-arn: target database (default: the config's deployment.target.databaseName)",
  ).env('AUDIT_TRAIL_TARGET_DATABASE');
}

/** How the target is reached: a PostgreSQL URL, or the Data API of an Aurora cluster. */
export type TargetConnection =
  | { readonly kind: 'url'; readonly url: string }
  | {
      readonly kind: 'data-api';
      readonly resourceArn: string;
      readonly secretArn: string;
      readonly database: string;
    };

/** Options naming the target, as `history` and `verify` take them. */
export interface TargetOptions {
  readonly targetUrl?: string | undefined;
  readonly targetArn?: string | undefined;
  readonly secretArn?: string | undefined;
  readonly database?: string | undefined;
}

/**
 * Checks the target options: either `--target-url`, or `--target-arn` with
 * `--secret-arn` (and a database, from `--database` or `defaultDatabase`), never both.
 */
export function requireTarget(options: TargetOptions, defaultDatabase: string): TargetConnection {
  if (options.targetArn === undefined || options.targetArn === '') {
    if (options.secretArn !== undefined)
      throw new UsageError('--secret-arn needs --target-arn (the Data API)');
    return { kind: 'url', url: requireUrl(options.targetUrl, '--target-url') };
  }
  if (options.targetUrl !== undefined && options.targetUrl !== '')
    throw new UsageError('give --target-url or --target-arn, not both');
  if (!/^arn:aws[\w-]*:rds:[a-z0-9-]+:\d{12}:cluster:[A-Za-z][\w-]*$/.test(options.targetArn))
    throw new UsageError(
      `--target-arn must be an Aurora cluster ARN (arn:aws:rds:REGION:ACCOUNT:cluster:NAME), got "${options.targetArn}"`,
    );
  if (options.secretArn === undefined || options.secretArn === '')
    throw new UsageError('--target-arn needs --secret-arn (the auditor login secret)');
  if (!/^arn:aws[\w-]*:secretsmanager:[a-z0-9-]+:\d{12}:secret:.+$/.test(options.secretArn))
    throw new UsageError(
      `--secret-arn must be a Secrets Manager secret ARN, got "${options.secretArn}"`,
    );
  return {
    kind: 'data-api',
    resourceArn: options.targetArn,
    secretArn: options.secretArn,
    database: options.database ?? defaultDatabase,
  };
}

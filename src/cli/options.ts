import { Option } from 'commander';
import { DEFAULT_CONFIG_FILE } from '../config';
import { assertPostgresUrl } from '../postgres/connect';
import { UsageError } from './errors';

/** `--config <file>`, defaulting to ./audit-trail.config.json. */
export function configOption(): Option {
  return new Option('-c, --config <file>', 'config file (JSON or TS module)').default(
    DEFAULT_CONFIG_FILE,
  );
}

/** `--source-url <url>`, also read from AUDIT_TRAIL_SOURCE_URL. */
export function sourceUrlOption(): Option {
  return new Option('--source-url <url>', 'source PostgreSQL URL').env('AUDIT_TRAIL_SOURCE_URL');
}

/** `--target-url <url>`, also read from AUDIT_TRAIL_TARGET_URL. */
export function targetUrlOption(): Option {
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

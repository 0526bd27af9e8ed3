import type { z } from 'zod';
import { AuditTrailError } from '../errors';

/** A config file that cannot be used; the message names the file and every bad field. */
export class ConfigError extends AuditTrailError {
  override readonly name = 'ConfigError';
  constructor(message: string, options: { readonly hint?: string } = {}) {
    super(message, { code: 'CONFIG_INVALID', kind: 'usage', ...options });
  }
}

/** Formats a zod issue path as `tables[0].primaryKey[1]`. */
export function formatPath(path: readonly PropertyKey[]): string {
  return path.reduce<string>((text, segment) => {
    if (typeof segment === 'number') return `${text}[${segment}]`;
    const name = String(segment);
    return text === '' ? name : `${text}.${name}`;
  }, '');
}

/** One line per issue, each starting with the field it is about. */
export function describeIssues(error: z.ZodError): string {
  return error.issues
    .map((issue) => `${formatPath(issue.path) || '(root)'}: ${issue.message}`)
    .join('\n');
}

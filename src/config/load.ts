import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { ConfigError, describeIssues } from './errors';
import { auditTrailConfigSchema, type AuditTrailConfig } from './schema';
import { DEFAULT_CONFIG_FILE } from './default-file';

export { DEFAULT_CONFIG_FILE } from './default-file';

/**
 * Validates a config object, applying defaults.
 * @throws ConfigError naming every invalid field.
 */
export function parseConfig(input: unknown, source = 'config'): AuditTrailConfig {
  const result = auditTrailConfigSchema.safeParse(input);
  if (!result.success) {
    throw new ConfigError(`${source} is invalid:\n${describeIssues(result.error)}`);
  }
  return result.data;
}

/**
 * Loads and validates a config file: JSON (`.json`), or a TypeScript/JavaScript
 * module (`.ts`, `.mts`, `.cts`, `.js`, `.mjs`, `.cjs`) whose default export (or
 * `config` export) has the same shape.
 * @throws ConfigError when the file is missing, unreadable or invalid.
 */
export async function loadConfig(file = DEFAULT_CONFIG_FILE): Promise<AuditTrailConfig> {
  const absolute = path.resolve(file);
  const raw = /\.(c|m)?(t|j)s$/.test(absolute)
    ? await importModuleConfig(absolute)
    : await readJsonConfig(absolute);
  return parseConfig(raw, file);
}

async function readJsonConfig(file: string): Promise<unknown> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (error) {
    throw new ConfigError(`cannot read config ${file}: ${(error as Error).message}`, {
      hint: 'give the file with -c/--config, or write a starter one with audit-trail init',
    });
  }
  try {
    return JSON.parse(text) as unknown;
  } catch (error) {
    throw new ConfigError(`config ${file} is not valid JSON: ${(error as Error).message}`);
  }
}

async function importModuleConfig(file: string): Promise<unknown> {
  // JavaScript needs nothing but Node; only TypeScript needs tsx.
  const load = /\.(c|m)?js$/.test(file)
    ? (url: string) => import(url)
    : await loadTsImport(file).then((tsImport) => (url: string) => tsImport(url, __filename));
  try {
    const loaded = (await load(pathToFileURL(file).href)) as Record<string, unknown>;
    return unwrapDefault(loaded);
  } catch (error) {
    throw new ConfigError(`cannot load config module ${file}: ${(error as Error).message}`);
  }
}

/**
 * tsx compiles TypeScript on the fly, so a .ts config needs no build step. It is an
 * optional peer dependency: a user with a JSON config does not need it installed.
 */
async function loadTsImport(file: string): Promise<typeof import('tsx/esm/api').tsImport> {
  try {
    return (await import('tsx/esm/api')).tsImport;
  } catch (error) {
    throw new ConfigError(
      `cannot load config module ${file}: it needs tsx, which is not installed (${(error as Error).message.split('\n')[0]}). Install it (npm install --save-dev tsx) or write the config as JSON (audit-trail.config.json).`,
    );
  }
}

/** ESM/CJS interop can nest the default export once or twice. */
function unwrapDefault(module: Record<string, unknown>): unknown {
  let value: unknown = module.config ?? module.default ?? module;
  while (isRecord(value) && 'default' in value && !('tables' in value || 'accessAudit' in value))
    value = value.default;
  return value;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null;
}

import { z } from 'zod';
import { auditTrailConfigSchema } from './schema';

/** Where the kit ships the generated schema, relative to the package root. */
export const CONFIG_JSON_SCHEMA_FILE = 'audit-trail.config.schema.json';

/**
 * The JSON Schema (draft 2020-12) of `audit-trail.config.json`, generated from the zod
 * schema that validates it, so editors complete and check the same file the kit reads.
 * Refinements zod cannot express (a key column also ignored, two tables on one staging
 * table) are still checked when the kit loads the file.
 *
 * @example
 * ```json
 * { "$schema": "./node_modules/audit-trail-kit/audit-trail.config.schema.json", "tables": [] }
 * ```
 */
export function configJsonSchema(): Record<string, unknown> {
  return {
    ...z.toJSONSchema(auditTrailConfigSchema, { io: 'input', unrepresentable: 'any' }),
    title: 'audit-trail kit configuration',
  };
}

import { readFileSync } from 'node:fs';
import path from 'node:path';
import { CONFIG_JSON_SCHEMA_FILE, configJsonSchema, parseConfig } from '../src/config';

const ROOT = path.resolve(__dirname, '..');

describe('config JSON Schema', () => {
  it('the shipped file is what the zod schema generates (npm run config-schema)', () => {
    const shipped = JSON.parse(readFileSync(path.join(ROOT, CONFIG_JSON_SCHEMA_FILE), 'utf8'));
    expect(shipped).toEqual(configJsonSchema());
  });

  it('describes the fields and defaults the kit reads', () => {
    const schema = configJsonSchema() as {
      properties: Record<string, { default?: unknown }>;
      required?: string[];
      additionalProperties?: boolean;
    };
    expect(schema.properties.auditSchema?.default).toBe(
      parseConfig({ tables: [{ table: 't' }] }).auditSchema,
    );
    // An access-audit-only config lists no tables; the zod refinement refuses one with neither.
    expect(schema.required ?? []).toEqual([]);
    expect(schema.properties.tables?.default).toEqual([]);
    expect(schema.additionalProperties).toBe(false);
  });

  it('the examples point at it and load', () => {
    for (const example of ['aws.config.json', 'rds-instance.config.json']) {
      const text = JSON.parse(readFileSync(path.join(ROOT, 'examples', example), 'utf8'));
      expect(text.$schema).toBe(`../${CONFIG_JSON_SCHEMA_FILE}`);
      expect(() => parseConfig(text)).not.toThrow();
    }
  });
});

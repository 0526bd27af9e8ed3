import type { Command } from '@commander-js/extra-typings';

/** `audit-trail config-schema`: prints the config's JSON Schema (generated from the zod schema). */
export function registerConfigSchema(program: Command): void {
  program
    .command('config-schema')
    .description('print the JSON Schema of audit-trail.config.json')
    .action(async () => {
      const { configJsonSchema } = await import('../../config/index.js');
      process.stdout.write(`${JSON.stringify(configJsonSchema(), null, 2)}\n`);
    });
}

import { z } from 'zod';
import { identifierSchema } from './identifier';

/** One audited source table. */
export const auditedTableSchema = z
  .object({
    /** Source schema. @default "public" */
    schema: identifierSchema.default('public'),
    /** Source table name. */
    table: identifierSchema,
    /**
     * Primary key columns, in key order. When omitted they are read from the
     * source catalog; a table without a primary key is refused.
     */
    primaryKey: z.array(identifierSchema).min(1).optional(),
    /** Columns whose changes are not history (for example `updated_at`). @default [] */
    ignoreColumns: z.array(identifierSchema).default([]),
  })
  .strict()
  .superRefine((table, ctx) => {
    const ignoredKey = table.primaryKey?.find((column) => table.ignoreColumns.includes(column));
    if (ignoredKey !== undefined) {
      ctx.addIssue({
        code: 'custom',
        path: ['ignoreColumns'],
        message: `must not contain primary key column "${ignoredKey}"`,
      });
    }
  });

export type AuditedTableConfig = z.infer<typeof auditedTableSchema>;

/** The change-history part of the config: where the audit log lives and what is audited. */
export const changeHistoryShape = {
  /** Target schema that holds staging tables and the audit log. @default "audit" */
  auditSchema: identifierSchema.default('audit'),
  /** The audited tables; each appears once. */
  tables: z
    .array(auditedTableSchema)
    .min(1, 'must list at least one table')
    .superRefine((tables, ctx) => {
      const seen = new Set<string>();
      tables.forEach((table, index) => {
        const name = JSON.stringify([table.schema, table.table]);
        if (seen.has(name)) {
          ctx.addIssue({
            code: 'custom',
            path: [index, 'table'],
            message: `"${table.schema}.${table.table}" is listed twice`,
          });
        }
        seen.add(name);
      });
    }),
};

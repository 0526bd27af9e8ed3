import { z } from 'zod';
import { identifierSchema } from './identifier';

/**
 * The context fields an application can attach to a source transaction, and the source
 * column each is stored in. `metadata` (free-form JSON) is not listed: it can never be
 * required.
 */
export const AUDIT_CONTEXT_COLUMNS = {
  actor: 'actor',
  onBehalfOf: 'on_behalf_of',
  requestId: 'request_id',
  client: 'client',
  reason: 'reason',
} as const;

/** A text field of the audit context (`actor`, `onBehalfOf`, `requestId`, `client`, `reason`). */
export type AuditContextField = keyof typeof AUDIT_CONTEXT_COLUMNS;

const contextFields = Object.keys(AUDIT_CONTEXT_COLUMNS) as [
  AuditContextField,
  ...AuditContextField[],
];

/** The column holding the source transaction id: the context table's primary key. */
export const CONTEXT_TRANSACTION_COLUMN = 'transaction_id';

/**
 * The source context table (`audit-trail migrate --source-context` installs it): one row
 * per source transaction that sets context (who, on whose behalf, which request, which
 * client, why), written by the application helpers in that transaction. It is audited
 * like any configured table, so it travels with the changes through DMS or the engine.
 */
export const sourceContextSchema = z
  .object({
    /** Source schema of the context table (created if missing). @default "audit_context" */
    schema: identifierSchema.default('audit_context'),
    /** Name of the context table. @default "transaction_context" */
    table: identifierSchema.default('transaction_context'),
    /**
     * Fields every context must carry: NOT NULL on the source, and required by the typed
     * helpers. @default []
     */
    require: z
      .array(z.enum(contextFields))
      .default([])
      .refine((fields) => new Set(fields).size === fields.length, 'must not repeat a field'),
    /** Source roles (the application's) that may INSERT context rows. @default [] */
    grantInsertTo: z.array(identifierSchema).default([]),
  })
  .strict();

export type SourceContextConfig = z.infer<typeof sourceContextSchema>;

/**
 * The audited-table entry for the context table: keyed by the transaction id, nothing
 * ignored. The config appends it to `tables`, so every consumer (DMS mappings, engine
 * publication, migrate, verify) captures it without a second list.
 */
export function contextTableEntry(context: Pick<SourceContextConfig, 'schema' | 'table'>): {
  schema: string;
  table: string;
  primaryKey: string[];
  ignoreColumns: string[];
} {
  return {
    schema: context.schema,
    table: context.table,
    primaryKey: [CONTEXT_TRANSACTION_COLUMN],
    ignoreColumns: [],
  };
}

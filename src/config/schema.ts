import { z } from 'zod';
import { accessAuditSchema } from './access-audit';
import { changeHistoryShape, NOTHING_TO_AUDIT } from './change-history';
import { deploymentSchema } from './deployment';
import { contextTableEntry, CONTEXT_TRANSACTION_COLUMN } from './source-context';
import { stagingTableName } from '../staging/header-columns';

/**
 * The whole `audit-trail.config.json`. Every other artefact (DMS mappings, target
 * migrations, CDK resources, the local engine's publication) is derived from it.
 */
export const auditTrailConfigSchema = z
  .object({
    /** JSON Schema reference, allowed so editors can validate the file. */
    $schema: z.string().optional(),
    ...changeHistoryShape,
    /** Access audit (pgAudit) settings. */
    accessAudit: accessAuditSchema.optional(),
    /** AWS deployment settings. */
    deployment: deploymentSchema.optional(),
  })
  .strict()
  .superRefine((config, ctx) => {
    // The source context table alone is audited, so it counts as change history.
    const history = config.tables.length > 0 || config.sourceContext !== undefined;
    if (!history && config.accessAudit === undefined)
      ctx.addIssue({ code: 'custom', path: ['tables'], message: NOTHING_TO_AUDIT });
    const refusal = activityStreamRefusal(config);
    if (refusal) ctx.addIssue({ code: 'custom', ...refusal });
    const clash = contextTableClash(config);
    if (clash) ctx.addIssue({ code: 'custom', ...clash });
  })
  .transform(withContextTable);

type ParsedConfig = {
  readonly tables: readonly {
    schema: string;
    table: string;
    primaryKey?: string[] | undefined;
    ignoreColumns: string[];
  }[];
  readonly sourceContext?: { schema: string; table: string } | undefined;
};

/**
 * The source context table may be listed in `tables` only exactly as the kit audits it
 * (so a parsed config parses again unchanged); no other table may share its staging table.
 */
function contextTableClash(
  config: ParsedConfig,
): { path: (string | number)[]; message: string } | undefined {
  const context = config.sourceContext;
  if (context === undefined) return undefined;
  const staging = stagingTableName(context.table);
  for (const [index, table] of config.tables.entries()) {
    const label = `${table.schema}.${table.table}`;
    if (table.schema === context.schema && table.table === context.table) {
      const asTheKitAudits =
        (table.primaryKey === undefined ||
          (table.primaryKey.length === 1 && table.primaryKey[0] === CONTEXT_TRANSACTION_COLUMN)) &&
        table.ignoreColumns.length === 0;
      if (!asTheKitAudits)
        return {
          path: ['tables', index, 'table'],
          message: `"${label}" is the source context table: it is audited automatically, leave it out`,
        };
    } else if (stagingTableName(table.table) === staging) {
      return {
        path: ['tables', index, 'table'],
        message: `"${label}" and the source context table "${context.schema}.${context.table}" would share the staging table ${staging} in the audit schema`,
      };
    }
  }
  return undefined;
}

/** Appends the source context table to the audited tables (once). */
function withContextTable<Config extends ParsedConfig>(config: Config): Config {
  const context = config.sourceContext;
  if (context === undefined) return config;
  const listed = config.tables.some(
    (table) => table.schema === context.schema && table.table === context.table,
  );
  return listed ? config : { ...config, tables: [...config.tables, contextTableEntry(context)] };
}

/**
 * Database Activity Streams exist for provisioned Aurora clusters only: not for RDS for
 * PostgreSQL DB instances (an `activityStream` setting, in `accessAudit` or on
 * `deployment.source`, with an instance source is refused rather than deployed to do
 * nothing), and not for Aurora Serverless v2, which the kit's new source cluster is (so
 * enabling them needs an existing provisioned cluster).
 */
export function activityStreamRefusal(config: {
  readonly accessAudit?: object | undefined;
  readonly deployment?: { readonly source: object } | undefined;
}): { path: (string | number)[]; message: string } | undefined {
  const source = config.deployment?.source as {
    engine?: string;
    mode?: string;
    activityStream?: unknown;
  };
  const audit = config.accessAudit as { activityStream?: { enabled?: boolean } } | undefined;
  if (source?.engine !== 'postgres') {
    if (source?.mode !== 'new' || audit?.activityStream?.enabled !== true) return undefined;
    return {
      path: ['accessAudit', 'activityStream', 'enabled'],
      message:
        'Database Activity Streams are not supported on Aurora Serverless v2, and the source cluster the kit creates (deployment.source.mode "new") is Serverless v2: enable them for an existing provisioned cluster (memory-optimized classes such as db.r6g)',
    };
  }
  const message =
    'Database Activity Streams are not available for RDS for PostgreSQL DB instances (deployment.source.engine "postgres"); use the pgAudit access audit, or an Aurora source';
  if (source.activityStream !== undefined) {
    return { path: ['deployment', 'source', 'activityStream'], message };
  }
  if (audit?.activityStream !== undefined)
    return { path: ['accessAudit', 'activityStream'], message };
  return undefined;
}

/** A validated config, with every default applied. */
export type AuditTrailConfig = z.infer<typeof auditTrailConfigSchema>;

/** A config as a user writes it (defaults may be left out). */
export type AuditTrailConfigInput = z.input<typeof auditTrailConfigSchema>;

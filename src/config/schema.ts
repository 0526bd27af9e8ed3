import { z } from 'zod';
import { accessAuditSchema } from './access-audit';
import { changeHistoryShape } from './change-history';
import { deploymentSchema } from './deployment';

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
    const refusal = activityStreamRefusal(config);
    if (refusal) ctx.addIssue({ code: 'custom', ...refusal });
  });

/**
 * Database Activity Streams exist for Aurora clusters only, not for RDS for PostgreSQL
 * DB instances: an `activityStream` setting (in `accessAudit` or on `deployment.source`)
 * with an instance source is refused rather than deployed to do nothing.
 */
export function activityStreamRefusal(config: {
  readonly accessAudit?: object | undefined;
  readonly deployment?: { readonly source: object } | undefined;
}): { path: (string | number)[]; message: string } | undefined {
  const source = config.deployment?.source as { engine?: string; activityStream?: unknown };
  if (source?.engine !== 'postgres') return undefined;
  const message =
    'Database Activity Streams are not available for RDS for PostgreSQL DB instances (deployment.source.engine "postgres"); use the pgAudit access audit, or an Aurora source';
  if (source.activityStream !== undefined) {
    return { path: ['deployment', 'source', 'activityStream'], message };
  }
  const audit = config.accessAudit as { activityStream?: unknown } | undefined;
  if (audit?.activityStream !== undefined)
    return { path: ['accessAudit', 'activityStream'], message };
  return undefined;
}

/** A validated config, with every default applied. */
export type AuditTrailConfig = z.infer<typeof auditTrailConfigSchema>;

/** A config as a user writes it (defaults may be left out). */
export type AuditTrailConfigInput = z.input<typeof auditTrailConfigSchema>;

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
  .strict();

/** A validated config, with every default applied. */
export type AuditTrailConfig = z.infer<typeof auditTrailConfigSchema>;

/** A config as a user writes it (defaults may be left out). */
export type AuditTrailConfigInput = z.input<typeof auditTrailConfigSchema>;

import { z } from 'zod';

/**
 * The `accessAudit` section: pgAudit settings and alert rules.
 * Filled in by the access-audit feature; optional so change history works alone.
 */
export const accessAuditSchema = z.object({}).passthrough();

export type AccessAuditConfig = z.infer<typeof accessAuditSchema>;

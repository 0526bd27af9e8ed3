import { z } from 'zod';

/** S3 Object Lock retention modes (the names S3 uses). */
export const OBJECT_LOCK_MODES = ['COMPLIANCE', 'GOVERNANCE'] as const;
export type ObjectLockMode = (typeof OBJECT_LOCK_MODES)[number];

/** A key prefix inside the anchors bucket: path segments, no leading slash. */
const prefixSchema = z
  .string()
  .regex(
    /^([A-Za-z0-9!_.*'()-]+\/)*$/,
    'must be empty or path segments ending with "/" (letters, digits, !_.*\'()-), such as "chain-heads/"',
  );

/**
 * `deployment.anchors`: where the audit log's chain head is anchored outside the
 * database. A scheduled Lambda reads the head every `everyMinutes` (as a read-only login
 * of the reader role) and writes it to an S3 bucket under Object Lock, out of reach of
 * anyone who controls the database. `verify --integrity --anchors s3://BUCKET/PREFIX`
 * then proves the log still holds every anchored head.
 */
export const chainAnchorsSchema = z
  .object({
    /** Deploy the anchors bucket and the scheduled Lambda. @default true */
    enabled: z.boolean().default(true),
    /** Minutes between two anchors. @default 5 */
    everyMinutes: z.number().int().min(1).max(1440).default(5),
    /**
     * Days each anchor is locked (no delete or overwrite, by anyone, root included, in
     * compliance mode). Keep at least as long as the audit log's own retention.
     * @default 365 (2555, seven years, in production)
     */
    retentionDays: z.number().int().min(1).max(36_500).optional(),
    /**
     * Object Lock mode. `COMPLIANCE`: nobody can shorten or lift the lock. `GOVERNANCE`:
     * principals with `s3:BypassGovernanceRetention` can (for test stacks that must be
     * torn down).
     * @default "COMPLIANCE" in production, "GOVERNANCE" otherwise
     */
    mode: z.enum(OBJECT_LOCK_MODES).optional(),
    /** Key prefix of the anchor objects. @default "chain-heads/" */
    prefix: prefixSchema.default('chain-heads/'),
  })
  .strict();

export type ChainAnchorsConfig = z.infer<typeof chainAnchorsSchema>;

/** The anchors section with the production-dependent defaults filled in. */
export interface ResolvedChainAnchors {
  readonly enabled: boolean;
  readonly everyMinutes: number;
  readonly retentionDays: number;
  readonly mode: ObjectLockMode;
  readonly prefix: string;
}

/** Fills `retentionDays` and `mode` from `production` where the config leaves them out. */
export function resolveChainAnchors(
  anchors: ChainAnchorsConfig,
  production: boolean,
): ResolvedChainAnchors {
  return {
    enabled: anchors.enabled,
    everyMinutes: anchors.everyMinutes,
    retentionDays: anchors.retentionDays ?? (production ? 2555 : 365),
    mode: anchors.mode ?? (production ? 'COMPLIANCE' : 'GOVERNANCE'),
    prefix: anchors.prefix,
  };
}

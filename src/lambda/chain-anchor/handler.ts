import { PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { z } from 'zod';
import { OBJECT_LOCK_MODES, type ObjectLockMode } from '../../config/chain-anchors';
import { describeIssues } from '../../config/errors';
import { anchorLine, anchorObjectKey, readChainHead } from '../../trust/anchors';
import type { Anchor } from '../../trust/integrity';
import { databaseUrl, type DatabaseLocation } from '../shared/database-url';

/** What the anchor Lambda is told through its environment (set by the ChainAnchor construct). */
export interface ChainAnchorSettings {
  /** The Object Lock bucket. */
  readonly bucket: string;
  /** Key prefix, empty or ending with "/". */
  readonly prefix: string;
  readonly auditSchema: string;
  /** Days each anchor object is locked. */
  readonly retentionDays: number;
  readonly mode: ObjectLockMode;
  /** The target, reached as the read-only anchor login. */
  readonly target: DatabaseLocation;
}

const environmentSchema = z.object({
  ANCHOR_BUCKET: z.string().min(3),
  ANCHOR_PREFIX: z.string().default(''),
  AUDIT_SCHEMA: z.string().min(1),
  RETENTION_DAYS: z.coerce.number().int().min(1),
  OBJECT_LOCK_MODE: z.enum(OBJECT_LOCK_MODES),
  TARGET_SECRET_ARN: z.string().min(1),
  TARGET_HOST: z.string().min(1).optional(),
  TARGET_PORT: z.string().regex(/^\d+$/).optional(),
  TARGET_DATABASE: z.string().min(1),
});

/** Reads {@link ChainAnchorSettings} from the environment; a bad variable is named. */
export function settingsFromEnvironment(
  env: Readonly<Record<string, string | undefined>>,
): ChainAnchorSettings {
  const parsed = environmentSchema.safeParse(env);
  if (!parsed.success)
    throw new Error(`chain anchor Lambda environment:\n${describeIssues(parsed.error)}`);
  const e = parsed.data;
  return {
    bucket: e.ANCHOR_BUCKET,
    prefix: e.ANCHOR_PREFIX,
    auditSchema: e.AUDIT_SCHEMA,
    retentionDays: e.RETENTION_DAYS,
    mode: e.OBJECT_LOCK_MODE,
    target: {
      SecretArn: e.TARGET_SECRET_ARN,
      DatabaseName: e.TARGET_DATABASE,
      ...(e.TARGET_HOST !== undefined && { Host: e.TARGET_HOST }),
      ...(e.TARGET_PORT !== undefined && { Port: e.TARGET_PORT }),
    },
  };
}

/** Clients and clock, replaced in tests. */
export interface ChainAnchorDependencies {
  readonly s3: S3Client;
  readonly secrets: SecretsManagerClient;
  /** @default the RDS CA bundle written to /tmp */
  readonly caFile?: string;
  readonly log?: (message: string) => void;
}

/** What one run wrote. */
export interface ChainAnchorResult {
  /** The anchored head; null when the chain is still empty (nothing written). */
  readonly anchor: Anchor | null;
  readonly key?: string;
  readonly versionId?: string;
}

const DAY_MS = 24 * 60 * 60 * 1000;

/**
 * Reads the chain head and writes it, as the JSON line `audit-trail anchor --append`
 * writes, to its own object. The lock is set on the object itself (mode and
 * retain-until date), not left to the bucket default, so an anchor is locked for as
 * long as the config says even if someone weakens the bucket's default later.
 */
export async function writeChainAnchor(
  settings: ChainAnchorSettings,
  deps: ChainAnchorDependencies,
): Promise<ChainAnchorResult> {
  const log = deps.log ?? console.log;
  const url = await databaseUrl(deps.secrets, settings.target, deps.caFile);
  const anchor = await readChainHead(url, settings.auditSchema);
  if (anchor === null) {
    log(`audit-trail anchor: ${settings.auditSchema}.audit_chain is empty; nothing anchored`);
    return { anchor: null };
  }
  const key = anchorObjectKey(settings.prefix, anchor);
  const response = await deps.s3.send(
    new PutObjectCommand({
      Bucket: settings.bucket,
      Key: key,
      Body: anchorLine(anchor),
      ContentType: 'application/x-ndjson',
      // Object Lock requires an integrity checksum on the upload.
      ChecksumAlgorithm: 'SHA256',
      ObjectLockMode: settings.mode,
      ObjectLockRetainUntilDate: new Date(Date.parse(anchor.at) + settings.retentionDays * DAY_MS),
    }),
  );
  log(
    `audit-trail anchor: block ${anchor.blockNo} ${anchor.blockHash} -> s3://${settings.bucket}/${key}`,
  );
  return {
    anchor,
    key,
    ...(response.VersionId !== undefined && { versionId: response.VersionId }),
  };
}

let clients: ChainAnchorDependencies | undefined;

/** Lambda entry point (EventBridge schedule). */
export async function handler(): Promise<ChainAnchorResult> {
  clients ??= { s3: new S3Client({}), secrets: new SecretsManagerClient({}) };
  return writeChainAnchor(settingsFromEnvironment(process.env), clients);
}

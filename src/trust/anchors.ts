import { appendFile, readFile } from 'node:fs/promises';
import { GetObjectCommand, ListObjectVersionsCommand, S3Client } from '@aws-sdk/client-s3';
import { z } from 'zod';
import { AuditTrailError } from '../errors';
import { connectClient } from '../postgres/connect';
import { quoteQualified } from '../postgres/identifiers';
import type { Anchor } from './integrity';

const anchorSchema = z
  .object({
    auditSchema: z.string().min(1),
    blockNo: z.number().int().nonnegative(),
    blockHash: z.string().regex(/^[0-9a-f]{64}$/, 'must be 64 hex digits'),
    lastRowId: z.string().regex(/^\d+$/),
    at: z.string().min(1),
  })
  .strict();

/** An anchors file or bucket that cannot be read; names the line or object. */
export class AnchorFileError extends AuditTrailError {
  constructor(message: string) {
    super(message, { code: 'ANCHOR_FILE', kind: 'usage' });
  }
}

/** Where anchors are read from besides a local file. */
export interface AnchorSources {
  /** Client for `s3://` locations. @default a new S3Client with the default credential chain */
  readonly s3?: S3Client;
}

/**
 * Reads anchors from a JSON-lines file (`audit-trail anchor --append`) or from every
 * version of every object under an `s3://BUCKET/PREFIX` (needs s3:ListBucketVersions
 * and s3:GetObjectVersion, and kms:Decrypt on the bucket key) (the scheduled anchor Lambda's bucket; the
 * prefix may go down to a day, `s3://b/chain-heads/audit/2026-12-01`, since object
 * keys carry the anchor time).
 */
export async function readAnchors(
  location: string,
  sources: AnchorSources = {},
): Promise<Anchor[]> {
  const s3 = parseS3Location(location);
  if (s3) return readS3Anchors(s3.bucket, s3.prefix, sources.s3 ?? new S3Client({}));
  let text: string;
  try {
    text = await readFile(location, 'utf8');
  } catch (error) {
    throw new AnchorFileError(`cannot read anchors file ${location}: ${(error as Error).message}`);
  }
  return parseAnchorLines(text, location);
}

/** `s3://bucket/prefix` split, or undefined for anything else (a file path). */
export function parseS3Location(location: string): { bucket: string; prefix: string } | undefined {
  const match = /^s3:\/\/([^/]+)\/?(.*)$/.exec(location);
  if (!match) return undefined;
  return { bucket: match[1]!, prefix: match[2]! };
}

/** Objects fetched at once from the anchors bucket. */
const S3_READ_CONCURRENCY = 16;

/** One stored version of an anchor object. */
interface AnchorObject {
  readonly key: string;
  readonly versionId: string | undefined;
}

/**
 * Reads every version of every object under the prefix, not just the current ones: a
 * delete marker or an overwrite (by anyone with more rights than the anchor Lambda)
 * hides an object from a plain listing, but Object Lock keeps its versions.
 */
async function readS3Anchors(bucket: string, prefix: string, s3: S3Client): Promise<Anchor[]> {
  const where = `s3://${bucket}/${prefix}`;
  let objects: AnchorObject[];
  try {
    objects = await listVersions(s3, bucket, prefix);
  } catch (error) {
    throw new AnchorFileError(`cannot list anchors in ${where}: ${(error as Error).message}`);
  }
  if (objects.length === 0)
    throw new AnchorFileError(`no anchors in ${where}: check the bucket and prefix`);
  const anchors: Anchor[] = [];
  for (let start = 0; start < objects.length; start += S3_READ_CONCURRENCY) {
    const batch = objects.slice(start, start + S3_READ_CONCURRENCY);
    const texts = await Promise.all(batch.map((object) => readS3Object(s3, bucket, object)));
    texts.forEach((text, index) =>
      anchors.push(...parseAnchorLines(text, `s3://${bucket}/${batch[index]!.key}`)),
    );
  }
  return anchors;
}

/** Every object version under `prefix`, page by page (the SDK has no paginator for it). */
async function listVersions(s3: S3Client, bucket: string, prefix: string): Promise<AnchorObject[]> {
  const objects: AnchorObject[] = [];
  let keyMarker: string | undefined;
  let versionIdMarker: string | undefined;
  for (;;) {
    const page = await s3.send(
      new ListObjectVersionsCommand({
        Bucket: bucket,
        Prefix: prefix,
        ...(keyMarker !== undefined && { KeyMarker: keyMarker }),
        ...(versionIdMarker !== undefined && { VersionIdMarker: versionIdMarker }),
      }),
    );
    for (const version of page.Versions ?? [])
      if (version.Key) objects.push({ key: version.Key, versionId: version.VersionId });
    if (!page.IsTruncated) return objects;
    keyMarker = page.NextKeyMarker;
    versionIdMarker = page.NextVersionIdMarker;
  }
}

async function readS3Object(s3: S3Client, bucket: string, object: AnchorObject): Promise<string> {
  try {
    const response = await s3.send(
      new GetObjectCommand({
        Bucket: bucket,
        Key: object.key,
        ...(object.versionId !== undefined && { VersionId: object.versionId }),
      }),
    );
    return (await response.Body?.transformToString('utf8')) ?? '';
  } catch (error) {
    throw new AnchorFileError(
      `cannot read s3://${bucket}/${object.key}: ${(error as Error).message}`,
    );
  }
}

/** Parses JSON lines of anchors (blank lines skipped); errors name `source` and the line. */
export function parseAnchorLines(text: string, source: string): Anchor[] {
  const anchors: Anchor[] = [];
  for (const [index, line] of text.split('\n').entries()) {
    if (line.trim() === '') continue;
    let parsed: unknown;
    try {
      parsed = JSON.parse(line);
    } catch {
      throw new AnchorFileError(`${source} line ${index + 1}: not JSON`);
    }
    const result = anchorSchema.safeParse(parsed);
    if (!result.success) {
      const issue = result.error.issues[0];
      throw new AnchorFileError(
        `${source} line ${index + 1}: ${issue?.path.join('.') || '(line)'} ${issue?.message ?? 'is invalid'}`,
      );
    }
    anchors.push(result.data);
  }
  return anchors;
}

/** How long reading the chain head may take before the statement is cancelled. */
const CHAIN_HEAD_STATEMENT_TIMEOUT_MS = 30_000;

/** The current chain head of the audit log at `targetUrl`, or null for an empty chain. */
export async function readChainHead(
  targetUrl: string,
  auditSchema: string,
): Promise<Anchor | null> {
  const client = await connectClient(targetUrl, 'audit-trail-anchor', 'target', {
    statement_timeout: CHAIN_HEAD_STATEMENT_TIMEOUT_MS,
  });
  try {
    const { rows } = await client.query<{
      block_no: string;
      block_hash: string;
      last_row_id: string;
    }>(
      `SELECT block_no::text, pg_catalog.encode(block_hash, 'hex') AS block_hash, last_row_id::text
         FROM ${quoteQualified(auditSchema, 'audit_chain')} ORDER BY block_no DESC LIMIT 1`,
    );
    const row = rows[0];
    if (!row) return null;
    return {
      auditSchema,
      blockNo: Number(row.block_no),
      blockHash: row.block_hash,
      lastRowId: row.last_row_id,
      at: new Date().toISOString(),
    };
  } finally {
    await client.end();
  }
}

/** One anchor as the JSON line both the file and the bucket hold. */
export function anchorLine(anchor: Anchor): string {
  return `${JSON.stringify(anchor)}\n`;
}

/**
 * The S3 key of `anchor` under `prefix`: `<prefix><auditSchema>/<at>-block-<blockNo>.json`,
 * so keys sort by time and a prefix can select a schema, a year or a day.
 */
export function anchorObjectKey(prefix: string, anchor: Anchor): string {
  return `${prefix}${anchor.auditSchema}/${anchor.at}-block-${anchor.blockNo}.json`;
}

/** Appends one anchor as a JSON line. */
export async function appendAnchor(file: string, anchor: Anchor): Promise<void> {
  await appendFile(file, anchorLine(anchor), 'utf8');
}

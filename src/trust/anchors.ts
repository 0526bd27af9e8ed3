import { appendFile, readFile } from 'node:fs/promises';
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

/** An anchors file that cannot be read; names the line. */
export class AnchorFileError extends AuditTrailError {
  constructor(message: string) {
    super(message, { code: 'ANCHOR_FILE', kind: 'usage' });
  }
}

/** Reads a JSON-lines anchors file (blank lines skipped). */
export async function readAnchors(file: string): Promise<Anchor[]> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (error) {
    throw new AnchorFileError(`cannot read anchors file ${file}: ${(error as Error).message}`);
  }
  const anchors: Anchor[] = [];
  for (const [index, line] of text.split('\n').entries()) {
    if (line.trim() === '') continue;
    let parsed: unknown;
    try {
      parsed = JSON.parse(line);
    } catch {
      throw new AnchorFileError(`${file} line ${index + 1}: not JSON`);
    }
    const result = anchorSchema.safeParse(parsed);
    if (!result.success) {
      const issue = result.error.issues[0];
      throw new AnchorFileError(
        `${file} line ${index + 1}: ${issue?.path.join('.') || '(line)'} ${issue?.message ?? 'is invalid'}`,
      );
    }
    anchors.push(result.data);
  }
  return anchors;
}

/** The current chain head of the audit log at `targetUrl`, or null for an empty chain. */
export async function readChainHead(
  targetUrl: string,
  auditSchema: string,
): Promise<Anchor | null> {
  const client = await connectClient(targetUrl, 'audit-trail-anchor', 'target');
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

/** Appends one anchor as a JSON line. */
export async function appendAnchor(file: string, anchor: Anchor): Promise<void> {
  await appendFile(file, `${JSON.stringify(anchor)}\n`, 'utf8');
}

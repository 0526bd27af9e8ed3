import { createHash } from 'node:crypto';
import { sql, type Kysely, type Transaction } from 'kysely';
import { createKysely } from '../postgres/connect';
import { quoteQualified } from '../postgres/identifiers';
import { blockHeaderText, canonicalBlockHeaderPartsSql, canonicalRowSql } from './canonical';

/** A chain head written outside the database (`audit-trail anchor --append`). */
export interface Anchor {
  readonly auditSchema: string;
  readonly blockNo: number;
  /** sha256 of the block, hex. */
  readonly blockHash: string;
  readonly lastRowId: string;
  /** When the anchor was taken (ISO 8601). */
  readonly at: string;
}

/** What is wrong, where. */
export interface IntegrityFinding {
  /**
   * `altered`: a row's content no longer hashes to what its block recorded;
   * `missing`: a row its block lists is gone (and no retention checkpoint covers it);
   * `extra`: a row no block lists (inserted outside the capture path);
   * `out-of-order`: a row carries the content recorded for another position;
   * `block-altered` / `broken-link` / `missing-block`: the chain itself was changed;
   * `anchor-mismatch` / `anchor-missing`: an anchored head is not in the chain as
   * anchored (a rewritten past, or a truncated tail);
   * `foreign-trigger`: code from outside the kit runs on a kit table.
   */
  readonly kind:
    | 'altered'
    | 'missing'
    | 'extra'
    | 'out-of-order'
    | 'block-altered'
    | 'broken-link'
    | 'missing-block'
    | 'anchor-mismatch'
    | 'anchor-missing'
    | 'foreign-trigger';
  readonly block?: number;
  readonly rowId?: string;
  readonly detail: string;
}

/** The result of {@link verifyIntegrity}. */
export interface IntegrityReport {
  readonly ok: boolean;
  readonly blocks: number;
  readonly rows: number;
  /** The chain head, as `anchor` would record it. */
  readonly head: {
    readonly blockNo: number;
    readonly blockHash: string;
    readonly lastRowId: string;
  } | null;
  /** Rows through this block were removed by retention (prune_audit_log). */
  readonly prunedThroughBlock: number | null;
  readonly anchorsChecked: number;
  /** Every finding counted; the first {@link MAX_LISTED} listed, first broken first. */
  readonly findingCount: number;
  readonly findings: readonly IntegrityFinding[];
}

/** Options for {@link verifyIntegrity}. */
export interface VerifyIntegrityOptions {
  /** The target as a PostgreSQL URL; or give {@link db}. */
  readonly targetUrl?: string;
  /**
   * The target as a kysely instance (such as the Data API dialect's), used instead of
   * {@link targetUrl} and left open. @default a connection to targetUrl
   */
  readonly db?: Kysely<unknown>;
  /**
   * Rows fetched per cursor read. The Data API answers at most 1 MiB per call.
   * @default 5000
   */
  readonly fetchSize?: number;
  readonly auditSchema: string;
  /** Anchors to check the chain against. @default none */
  readonly anchors?: readonly Anchor[];
}

const MAX_LISTED = 20;
const FETCH_SIZE = 5000;
const GENESIS_PREV = Buffer.alloc(32);

const sha256 = (data: Buffer | string) => createHash('sha256').update(data).digest();

/**
 * Recomputes every row hash, block hash and link of the audit log's hash chain, outside
 * the database (the canonical texts come from pg_catalog built-ins only, the hashing is
 * done here), and checks the anchors. Both tables are read through server-side cursors
 * in one REPEATABLE READ snapshot, so memory stays flat whatever the log's size.
 */
export async function verifyIntegrity(options: VerifyIntegrityOptions): Promise<IntegrityReport> {
  const db = options.db ?? openTarget(options.targetUrl);
  try {
    return await db
      .transaction()
      .setIsolationLevel('repeatable read')
      .setAccessMode('read only')
      .execute(async (trx) => {
        // Nothing the database owner put on a search path is used to build the texts.
        await sql`SET LOCAL search_path = pg_catalog, pg_temp`.execute(trx);
        // Read only: its commit changes nothing and closes the cursors.
        return check(trx, options);
      });
  } finally {
    if (options.db === undefined) await db.destroy();
  }
}

function openTarget(targetUrl: string | undefined): Kysely<unknown> {
  if (targetUrl === undefined) throw new TypeError('verifyIntegrity needs targetUrl or db');
  return createKysely<unknown>(targetUrl, {
    max: 1,
    label: 'target',
    applicationName: 'audit-trail-verify',
  });
}

/** Runs one statement of fixed text in the check's transaction. */
async function query<Row>(trx: Transaction<unknown>, text: string): Promise<Row[]> {
  return (await sql.raw<Row>(text).execute(trx)).rows;
}

interface BlockRow {
  block_no: string;
  kind: string;
  id_count: number;
  hash_count: number;
  /** The row ids, comma-separated, when the block lists at most {@link INLINE_ROWS}. */
  row_ids: string | null;
  /** The row hashes (hex), comma-separated, likewise. */
  row_hashes: string | null;
  last_row_id: string;
  prev_hash: string;
  block_hash: string;
  header_prefix: string;
  header_suffix: string;
}

/** One row a block lists: its id and the hash recorded for it (hex). */
interface Listed {
  readonly id: string;
  readonly hash: string;
}

/**
 * Rows of a block carried inline in the block's own answer. The Data API refuses an
 * answer row over 64 KB; 500 ids and hashes take about 43 KB. Larger blocks are read
 * through their own cursors, a page at a time.
 */
const INLINE_ROWS = 500;

/** Row hashes remembered to name a moved row: the previous block's, up to this many. */
const REMEMBERED_ROWS = 10_000;

/** A block's listed rows in order, with a look-up of the hashes read so far around them. */
interface BlockRows {
  next(): Promise<Listed | null>;
  /** The listed row whose recorded hash is `hash`, among those in reach (page or block). */
  find(hash: string): string | undefined;
  close(): Promise<void>;
}

function inlineRows(block: BlockRow): BlockRows {
  const ids = block.row_ids === '' || block.row_ids === null ? [] : block.row_ids.split(',');
  const hashes =
    block.row_hashes === '' || block.row_hashes === null ? [] : block.row_hashes.split(',');
  let index = 0;
  return {
    next: () => {
      const listed = index < ids.length ? { id: ids[index]!, hash: hashes[index] ?? '' } : null;
      index += 1;
      return Promise.resolve(listed);
    },
    find: (hash) => {
      const at = hashes.indexOf(hash);
      return at >= 0 ? ids[at] : undefined;
    },
    close: () => Promise.resolve(),
  };
}

function pagedRows(
  trx: Transaction<unknown>,
  chain: string,
  block: BlockRow,
  fetchSize: number,
): BlockRows {
  const cursor = new Cursor<{ id: string | null; hash: string | null }>(
    trx,
    fetchSize,
    `SELECT u.id::text, pg_catalog.encode(u.h, 'hex') AS hash
       FROM ${chain} AS c, ROWS FROM (pg_catalog.unnest(c.row_ids), pg_catalog.unnest(c.row_hashes)) WITH ORDINALITY AS u(id, h, n)
      WHERE c.block_no = ${blockNumber(block)} ORDER BY u.n`,
  );
  return {
    next: async () => {
      const row = await cursor.next();
      return row ? { id: row.id ?? '', hash: row.hash ?? '' } : null;
    },
    find: (hash) => cursor.page.find((row) => row.hash === hash)?.id ?? undefined,
    close: () => cursor.close(),
  };
}

/** A block number read from the chain, checked to be digits before it goes into SQL. */
function blockNumber(block: BlockRow): string {
  if (!/^\d+$/.test(block.block_no)) throw new Error(`unexpected block number ${block.block_no}`);
  return block.block_no;
}

/** sha256 of the block's header text, its row ids streamed when they are not inline. */
async function headerHash(
  trx: Transaction<unknown>,
  chain: string,
  block: BlockRow,
  fetchSize: number,
): Promise<Buffer> {
  const hash = createHash('sha256').update(blockHeaderText.open(block.header_prefix));
  if (block.row_ids !== null) {
    const ids = block.row_ids === '' ? [] : block.row_ids.split(',');
    ids.forEach((id, index) => hash.update(blockHeaderText.id(id, index === 0)));
  } else {
    const ids = new Cursor<{ id: string }>(
      trx,
      fetchSize,
      `SELECT u.id::text FROM ${chain} AS c, pg_catalog.unnest(c.row_ids) WITH ORDINALITY AS u(id, n)
        WHERE c.block_no = ${blockNumber(block)} ORDER BY u.n`,
    );
    let first = true;
    for (let row = await ids.next(); row; row = await ids.next()) {
      hash.update(blockHeaderText.id(row.id, first));
      first = false;
    }
    await ids.close();
  }
  return hash.update(blockHeaderText.close(block.header_suffix)).digest();
}

async function check(
  trx: Transaction<unknown>,
  options: VerifyIntegrityOptions,
): Promise<IntegrityReport> {
  const chain = quoteQualified(options.auditSchema, 'audit_chain');
  const log = quoteQualified(options.auditSchema, 'audit_log');
  const findings: IntegrityFinding[] = [];
  let findingCount = 0;
  const report = (finding: IntegrityFinding) => {
    findingCount += 1;
    if (findings.length < MAX_LISTED) findings.push(finding);
  };
  for (const found of await foreignTriggers(trx, options.auditSchema))
    report({ kind: 'foreign-trigger', detail: found });

  const pruned = await query<{ block_no: string | null; last_row_id: string | null }>(
    trx,
    `SELECT b.block_no::text, b.last_row_id::text FROM ${chain} b
      WHERE b.block_no = (SELECT max(p.pruned_through) FROM ${chain} p WHERE p.kind = 'prune')`,
  );
  const prunedThroughBlock = pruned[0]?.block_no ? Number(pruned[0].block_no) : null;
  const prunedLastRowId = BigInt(pruned[0]?.last_row_id ?? '0');

  const anchors = new Map<number, Anchor>();
  for (const anchor of options.anchors ?? [])
    if (anchor.auditSchema === options.auditSchema) anchors.set(anchor.blockNo, anchor);

  const fetchSize = options.fetchSize ?? FETCH_SIZE;
  const header = canonicalBlockHeaderPartsSql('c');
  const inline = (array: string) =>
    `CASE WHEN pg_catalog.cardinality(c.row_ids) <= ${INLINE_ROWS} AND pg_catalog.cardinality(c.row_hashes) <= ${INLINE_ROWS} THEN ${array} END`;
  const blocks = new Cursor<BlockRow>(
    trx,
    fetchSize,
    `SELECT c.block_no::text, c.kind,
            pg_catalog.cardinality(c.row_ids) AS id_count, pg_catalog.cardinality(c.row_hashes) AS hash_count,
            ${inline(`pg_catalog.array_to_string(c.row_ids, ',')`)} AS row_ids,
            ${inline(`pg_catalog.array_to_string(ARRAY(SELECT pg_catalog.encode(h, 'hex')
              FROM pg_catalog.unnest(c.row_hashes) WITH ORDINALITY AS u(h, n) ORDER BY n), ',')`)} AS row_hashes,
            c.last_row_id::text, pg_catalog.encode(c.prev_hash, 'hex') AS prev_hash,
            pg_catalog.encode(c.block_hash, 'hex') AS block_hash,
            ${header.prefix} AS header_prefix, ${header.suffix} AS header_suffix
       FROM ${chain} AS c ORDER BY c.block_no`,
  );
  const rows = new Cursor<{ id: string; canonical: string }>(
    trx,
    fetchSize,
    `SELECT a.id::text, ${canonicalRowSql('a')} AS canonical FROM ${log} AS a ORDER BY a.id`,
  );

  let expectedNo = 0;
  let previousHash = GENESIS_PREV;
  let blockCount = 0;
  let rowCount = 0;
  let head: IntegrityReport['head'] = null;
  let previousBlockRows = new Map<string, string>();
  let row = await rows.next();
  for (let block = await blocks.next(); block; block = await blocks.next()) {
    blockCount += 1;
    const blockNo = Number(block.block_no);
    if (blockNo !== expectedNo)
      report({
        kind: 'missing-block',
        block: blockNo,
        detail: `blocks ${expectedNo}..${blockNo - 1} are missing before block ${blockNo}`,
      });
    const prev = Buffer.from(block.prev_hash, 'hex');
    if (!prev.equals(previousHash))
      report({
        kind: 'broken-link',
        block: blockNo,
        detail: `block ${blockNo} does not link to the block before it (prev_hash ${block.prev_hash})`,
      });
    const blockHash = createHash('sha256')
      .update(prev)
      .update(await headerHash(trx, chain, block, fetchSize));
    const anchor = anchors.get(blockNo);
    if (anchor) {
      anchors.delete(blockNo);
      if (anchor.blockHash !== block.block_hash)
        report({
          kind: 'anchor-mismatch',
          block: blockNo,
          detail: `block ${blockNo} differs from the head anchored at ${anchor.at}: the chain was rewritten`,
        });
    }
    const listed =
      block.row_ids !== null ? inlineRows(block) : pagedRows(trx, chain, block, fetchSize);
    const blockRows = new Map<string, string>();
    for (let entry = await listed.next(); entry; entry = await listed.next()) {
      const { id, hash: recorded } = entry;
      if (recorded !== '') blockHash.update(Buffer.from(recorded, 'hex'));
      if (blockRows.size < REMEMBERED_ROWS) blockRows.set(recorded, id);
      const wanted = /^\d+$/.test(id) ? BigInt(id) : -1n;
      while (row && BigInt(row.id) < wanted) {
        report({
          kind: 'extra',
          block: blockNo,
          rowId: row.id,
          detail: `audit row ${row.id} is in no block: inserted outside the capture path`,
        });
        rowCount += 1;
        row = await rows.next();
      }
      if (row && BigInt(row.id) === wanted) {
        rowCount += 1;
        const hash = sha256(row.canonical).toString('hex');
        if (hash !== recorded) {
          const earlier = previousBlockRows.get(hash);
          const elsewhere = listed.find(hash) ?? blockRows.get(hash);
          report(
            earlier !== undefined
              ? {
                  kind: 'out-of-order',
                  block: blockNo,
                  rowId: row.id,
                  detail: `audit row ${row.id} holds the content the block before ${blockNo} recorded for row ${earlier}`,
                }
              : elsewhere !== undefined
                ? {
                    kind: 'out-of-order',
                    block: blockNo,
                    rowId: row.id,
                    detail: `audit row ${row.id} holds the content block ${blockNo} recorded for row ${elsewhere}`,
                  }
                : {
                    kind: 'altered',
                    block: blockNo,
                    rowId: row.id,
                    detail: `audit row ${row.id} was altered after block ${blockNo} sealed it`,
                  },
          );
        }
        row = await rows.next();
      } else if (wanted > prunedLastRowId || wanted < 0n) {
        report({
          kind: 'missing',
          block: blockNo,
          rowId: id,
          detail: `audit row ${id} of block ${blockNo} is missing (no retention checkpoint covers it)`,
        });
      }
    }
    await listed.close();
    if (
      blockHash.digest('hex') !== block.block_hash ||
      Number(block.id_count) !== Number(block.hash_count)
    )
      report({
        kind: 'block-altered',
        block: blockNo,
        detail: `block ${blockNo} (${block.kind}) does not hash to its recorded block_hash`,
      });
    // Kept for one block, so a row moved across a block boundary is named as such.
    previousBlockRows = blockRows;
    previousHash = Buffer.from(block.block_hash, 'hex');
    head = { blockNo, blockHash: block.block_hash, lastRowId: block.last_row_id };
    expectedNo = blockNo + 1;
  }
  for (; row; row = await rows.next()) {
    rowCount += 1;
    report({
      kind: 'extra',
      rowId: row.id,
      detail: `audit row ${row.id} is in no block: inserted outside the capture path`,
    });
  }
  for (const anchor of anchors.values())
    report({
      kind: 'anchor-missing',
      block: anchor.blockNo,
      detail: `block ${anchor.blockNo}, anchored at ${anchor.at}, is not in the chain (it ends at ${head?.blockNo ?? 'nothing'}): the tail was truncated or the chain rebuilt`,
    });
  return {
    ok: findingCount === 0,
    blocks: blockCount,
    rows: rowCount,
    head,
    prunedThroughBlock,
    anchorsChecked: (options.anchors ?? []).filter((a) => a.auditSchema === options.auditSchema)
      .length,
    findingCount,
    findings,
  };
}

async function foreignTriggers(trx: Transaction<unknown>, auditSchema: string): Promise<string[]> {
  const { rows } = await sql<{ text: string }>`
    SELECT pg_catalog.format('%I on %I.%I runs %s', t.tgname, n.nspname, c.relname, t.tgfoid::regprocedure) AS text
       FROM pg_catalog.pg_trigger t
       JOIN pg_catalog.pg_class c ON c.oid = t.tgrelid
       JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
       JOIN pg_catalog.pg_proc p ON p.oid = t.tgfoid
      WHERE n.nspname = ${auditSchema} AND NOT t.tgisinternal AND p.pronamespace <> n.oid
      ORDER BY 1`.execute(trx);
  return rows.map((row) => row.text);
}

let cursorSerial = 0;

/** A server-side cursor read in batches: memory holds one batch. */
class Cursor<Row> {
  private readonly name = `audit_trail_integrity_${++cursorSerial}`;
  private buffer: Row[] = [];
  private position = 0;
  /** The rows of the last read. */
  get page(): readonly Row[] {
    return this.buffer;
  }
  private declared = false;
  private done = false;

  constructor(
    private readonly trx: Transaction<unknown>,
    private readonly fetchSize: number,
    private readonly text: string,
  ) {}

  async next(): Promise<Row | null> {
    if (this.position === this.buffer.length && !this.done) {
      if (!this.declared) {
        await query(this.trx, `DECLARE ${this.name} NO SCROLL CURSOR FOR ${this.text}`);
        this.declared = true;
      }
      const rows = await query<Row>(this.trx, `FETCH ${this.fetchSize} FROM ${this.name}`);
      this.buffer = rows;
      this.position = 0;
      if (rows.length === 0) this.done = true;
    }
    return this.buffer[this.position++] ?? null;
  }

  /** Frees the cursor before the transaction ends (blocks read through their own). */
  async close(): Promise<void> {
    if (this.declared) await query(this.trx, `CLOSE ${this.name}`);
    this.declared = false;
    this.done = true;
  }
}

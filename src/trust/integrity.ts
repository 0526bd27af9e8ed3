import { createHash } from 'node:crypto';
import { sql, type Kysely, type Transaction } from 'kysely';
import { createKysely } from '../postgres/connect';
import { CATALOG_ONLY_SEARCH_PATH } from '../postgres/pinned-settings';
import { quoteIdent, quoteLiteral, quoteQualified } from '../postgres/identifiers';
import { triggerStateProblem } from '../postgres/trigger-state';
import { describeForeignTrigger, foreignTriggers } from './secure-install';
import { noProgress, type ProgressReporter, type ProgressTask } from '../support/progress';
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
   * `foreign-trigger`: code from outside the kit runs on a kit table;
   * `kit-trigger`: one of the kit's triggers on the audit log or the chain is missing,
   * disabled, or no longer fires in every `session_replication_role` (the seal at commit,
   * the append-only and retention guards: see {@link kitTriggerFindings}).
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
    | 'foreign-trigger'
    | 'kit-trigger';
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
   * Rows fetched per cursor read. The Data API answers at most 1 MiB per call. A read's
   * rows live until the check has used them, long enough for V8 to move them to its old
   * space, which it then lets grow before collecting: the process's peak follows this
   * size more than the log's (1,250,001 rows, the CLI: about 215 MB at 5000, 145 MB at
   * 1000, BENCHMARKS 3d).
   * @default 1000
   */
  readonly fetchSize?: number;
  readonly auditSchema: string;
  /** Anchors to check the chain against. @default none */
  readonly anchors?: readonly Anchor[];
  /**
   * Where the check reports how many audit rows it has hashed (a bar on the CLI's
   * terminal). Given one, the audit log's rows are counted first, in the same
   * snapshot, for the total. @default none
   */
  readonly progress?: ProgressReporter;
}

const MAX_LISTED = 20;
const FETCH_SIZE = 1000;
const GENESIS_PREV = Buffer.alloc(32);

const sha256 = (data: Buffer | string) => createHash('sha256').update(data).digest();

/**
 * Recomputes every row hash, block hash and link of the audit log's hash chain, outside
 * the database (the canonical texts come from pg_catalog built-ins only, the hashing is
 * done here), and checks the anchors. Both tables are read through server-side cursors
 * in one REPEATABLE READ snapshot, {@link VerifyIntegrityOptions.fetchSize} rows a read,
 * so memory stays flat whatever the log's size and its blocks' sizes.
 *
 * @example
 * ```ts
 * const report = await verifyIntegrity({ targetUrl, auditSchema: 'audit', anchors });
 * if (!report.ok) console.error(report.findings[0]?.detail);
 * ```
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
        await sql`SET LOCAL search_path = ${sql.raw(CATALOG_ONLY_SEARCH_PATH)}`.execute(trx);
        // Read only: its commit changes nothing and closes the cursors.
        const task = await startProgress(trx, options);
        try {
          return await check(trx, options, task);
        } finally {
          task.done();
        }
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
  last_row_id: string;
  prev_hash: string;
  block_hash: string;
  header_prefix: string;
  header_suffix: string;
}

/** One row a block lists, as the listing cursors read it: its id and recorded hash (hex). */
interface ListedRow {
  block_no: string;
  id: string | null;
  hash?: string | null;
}

/** Row hashes remembered to name a moved row: the previous block's, up to this many. */
const REMEMBERED_ROWS = 10_000;

/**
 * The chain's listed rows, read through two cursors that stream every block's row ids
 * (and their recorded hashes) in chain order, a page at a time whatever the blocks'
 * sizes. Two, because a block's hash covers its header (which names all its row ids)
 * before its row hashes: the first reads a block's ids, then the second its ids and
 * hashes. Before, blocks of up to 500 rows came inline in the block cursor's rows, 5,000
 * blocks to a page: up to 2.5 million ids and hashes (some 200 MB of strings) at once.
 */
class ChainListing {
  private readonly ids: Cursor<ListedRow>;
  private readonly listed: Cursor<ListedRow>;

  constructor(trx: Transaction<unknown>, chain: string, fetchSize: number) {
    this.ids = new Cursor(
      trx,
      fetchSize,
      `SELECT c.block_no::text, u.id::text
         FROM ${chain} AS c, pg_catalog.unnest(c.row_ids) WITH ORDINALITY AS u(id, n)
        ORDER BY c.block_no, u.n`,
    );
    this.listed = new Cursor(
      trx,
      fetchSize,
      `SELECT c.block_no::text, u.id::text, pg_catalog.encode(u.h, 'hex') AS hash
         FROM ${chain} AS c,
              ROWS FROM (pg_catalog.unnest(c.row_ids), pg_catalog.unnest(c.row_hashes)) WITH ORDINALITY AS u(id, h, n)
        ORDER BY c.block_no, u.n`,
    );
  }

  /** sha256 of the block's header text, its row ids streamed. */
  async headerHash(block: BlockRow): Promise<Buffer> {
    const hash = createHash('sha256');
    let text = blockHeaderText.open(block.header_prefix);
    for (let index = 0; index < Number(block.id_count); index += 1) {
      const row = listedOf(block, await this.ids.next());
      // jsonb prints a NULL array element as null.
      text += blockHeaderText.id(row.id ?? 'null', index === 0);
      // Hashed in pieces of about 64 KB: one update per id costs more than the id.
      if (text.length >= 65_536) {
        hash.update(text);
        text = '';
      }
    }
    return hash.update(text + blockHeaderText.close(block.header_suffix)).digest();
  }

  /** How many rows `block` lists: as many as the longer of its two arrays. */
  static count(block: BlockRow): number {
    return Math.max(Number(block.id_count), Number(block.hash_count));
  }

  /** The next row `block` lists (call {@link ChainListing.count} times per block). */
  async next(block: BlockRow): Promise<Listed> {
    const row = listedOf(block, await this.listed.next());
    return { id: row.id ?? '', hash: row.hash ?? '' };
  }

  /** The row of `block` recorded with `hash`, among the listed rows read in the last page. */
  find(block: BlockRow, hash: string): string | undefined {
    return (
      this.listed.page.find((row) => row.block_no === block.block_no && row.hash === hash)?.id ??
      undefined
    );
  }
}

/** The listing cursors and the block cursor read one snapshot: a mismatch is a bug. */
function listedOf(block: BlockRow, row: ListedRow | null): ListedRow {
  if (row?.block_no !== block.block_no)
    throw new Error(
      `verify --integrity: the row listing of block ${block.block_no} ended early (at ${row?.block_no ?? 'the end'})`,
    );
  return row;
}

/** One row a block lists: its id and the hash recorded for it (hex). */
interface Listed {
  readonly id: string;
  readonly hash: string;
}

/** The check's progress; the log's rows are counted only when someone is shown it and it wants totals. */
async function startProgress(
  trx: Transaction<unknown>,
  options: VerifyIntegrityOptions,
): Promise<ProgressTask> {
  const label = `verify --integrity ${options.auditSchema}`;
  if (options.progress === undefined) return noProgress.start(label);
  if (options.progress.countsTotals === false) return options.progress.start(label);
  const log = quoteQualified(options.auditSchema, 'audit_log');
  const [counted] = await query<{ count: string }>(
    trx,
    `SELECT pg_catalog.count(*)::text AS count FROM ${log}`,
  );
  return options.progress.start(label, Number(counted?.count ?? 0));
}

async function check(
  trx: Transaction<unknown>,
  options: VerifyIntegrityOptions,
  task: ProgressTask,
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
    report({ kind: 'foreign-trigger', detail: describeForeignTrigger(found, options.auditSchema) });
  for (const detail of await kitTriggerFindings(trx, options.auditSchema))
    report({ kind: 'kit-trigger', detail });

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
  const blocks = new Cursor<BlockRow>(
    trx,
    fetchSize,
    `SELECT c.block_no::text, c.kind,
            pg_catalog.cardinality(c.row_ids) AS id_count, pg_catalog.cardinality(c.row_hashes) AS hash_count,
            c.last_row_id::text, pg_catalog.encode(c.prev_hash, 'hex') AS prev_hash,
            pg_catalog.encode(c.block_hash, 'hex') AS block_hash,
            ${header.prefix} AS header_prefix, ${header.suffix} AS header_suffix
       FROM ${chain} AS c ORDER BY c.block_no`,
  );
  const listing = new ChainListing(trx, chain, fetchSize);
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
      .update(await listing.headerHash(block));
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
    const blockRows = new Map<string, string>();
    for (let index = ChainListing.count(block); index > 0; index -= 1) {
      const { id, hash: recorded } = await listing.next(block);
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
        task.advance(1);
        row = await rows.next();
      }
      if (row && BigInt(row.id) === wanted) {
        rowCount += 1;
        task.advance(1);
        const hash = sha256(row.canonical).toString('hex');
        if (hash !== recorded) {
          const earlier = previousBlockRows.get(hash);
          const elsewhere = listing.find(block, hash) ?? blockRows.get(hash);
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
    task.advance(1);
    report({
      kind: 'extra',
      rowId: row.id,
      detail: `audit row ${row.id} is in no block: inserted outside the capture path, or its seal at commit did not run`,
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

/**
 * The kit's triggers on the audit log that must exist (triggers/trust.sql: the seal at
 * commit; triggers/append-only.sql: the guards). The statement guards on both tables
 * (kit_guard_*) are checked for their state only.
 */
const REQUIRED_AUDIT_LOG_TRIGGERS = [
  'seal_at_commit',
  'audit_log_append_only',
  'audit_log_no_truncate',
  'audit_log_retention_only',
] as const;

/**
 * One line for each of the kit's triggers on the audit log and the chain that is missing
 * or not ENABLE ALWAYS, as installed. `ALTER TABLE ... ENABLE TRIGGER USER` after a
 * DISABLE leaves a trigger firing only while session_replication_role is origin: with
 * DMS applying as replica, its one-row captures are then not sealed and the guards do
 * not run for it. (Triggers whose function is outside the audit schema are
 * `foreign-trigger` findings.)
 */
async function kitTriggerFindings(
  trx: Transaction<unknown>,
  auditSchema: string,
): Promise<string[]> {
  const schema = quoteIdent(auditSchema);
  const log = quoteQualified(auditSchema, 'audit_log');
  const chain = quoteQualified(auditSchema, 'audit_chain');
  const rows = await query<{ table_name: string; trigger: string; enabled: string | null }>(
    trx,
    `SELECT c.relname AS table_name, t.tgname AS trigger, t.tgenabled::text AS enabled
       FROM pg_catalog.pg_trigger AS t
       JOIN pg_catalog.pg_class AS c ON c.oid = t.tgrelid
       JOIN pg_catalog.pg_proc AS p ON p.oid = t.tgfoid
      WHERE t.tgrelid OPERATOR(pg_catalog.=) ANY (ARRAY[${quoteLiteral(log)}::pg_catalog.regclass,
                                                          ${quoteLiteral(chain)}::pg_catalog.regclass]::pg_catalog.oid[])
        AND NOT t.tgisinternal
        AND p.pronamespace OPERATOR(pg_catalog.=) ${quoteLiteral(schema)}::pg_catalog.regnamespace
      ORDER BY 1, 2`,
  );
  const findings: string[] = [];
  const present = new Set(rows.filter((r) => r.table_name === 'audit_log').map((r) => r.trigger));
  for (const name of REQUIRED_AUDIT_LOG_TRIGGERS)
    if (!present.has(name)) findings.push(`${quoteIdent(name)} on ${log} is missing`);
  for (const row of rows) {
    const problem = triggerStateProblem(
      quoteQualified(auditSchema, row.table_name),
      row.trigger,
      row.enabled ?? '',
    );
    if (problem !== undefined) findings.push(problem);
  }
  return findings;
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

  /** The next row, or null at the end. Reads the next batch when this one is used up. */
  next(): Promise<Row | null> {
    // Most calls take a row of the batch in hand: no async frame for those.
    if (this.position < this.buffer.length) return Promise.resolve(this.buffer[this.position++]!);
    return this.read();
  }

  private async read(): Promise<Row | null> {
    if (this.done) return null;
    if (!this.declared) {
      await query(this.trx, `DECLARE ${this.name} NO SCROLL CURSOR FOR ${this.text}`);
      this.declared = true;
    }
    this.buffer = await query<Row>(this.trx, `FETCH ${this.fetchSize} FROM ${this.name}`);
    this.position = 0;
    if (this.buffer.length === 0) this.done = true;
    return this.buffer[this.position++] ?? null;
  }
}

import type pg from 'pg';

/** Rows fetched per round trip: memory stays flat whatever the table size. */
const FETCH_SIZE = 2000;

/** A row of a keyed stream: its key as JSON text (the sort key), and the row as JSON text or null. */
export interface KeyedRow {
  readonly key: string;
  readonly row: string | null;
  /**
   * The row's jsonb columns holding the JSON `null` literal (which the row shows as null,
   * as it shows SQL NULL), as a JSON array sorted in byte order; null for none. Part of
   * the row: two rows are the same when both `row` and this are.
   */
  readonly json_nulls: string | null;
}

let cursorSerial = 0;

/**
 * Reads a query's `(key, row)` rows through a server-side cursor, in the query's order.
 * The query must order by `key` in byte order (COLLATE "C"), as {@link mergeByKey} expects.
 */
export class KeyedRowCursor {
  private readonly name = `audit_trail_verify_${++cursorSerial}`;
  private buffer: KeyedRow[] = [];
  private position = 0;
  private declared = false;
  private done = false;

  constructor(
    private readonly client: pg.Client,
    private readonly text: string,
    private readonly values: unknown[],
  ) {}

  async next(): Promise<KeyedRow | null> {
    if (this.position === this.buffer.length && !this.done) await this.fetch();
    return this.buffer[this.position++] ?? null;
  }

  private async fetch(): Promise<void> {
    if (!this.declared) {
      await this.client.query(
        `DECLARE ${this.name} NO SCROLL CURSOR FOR ${this.text}`,
        this.values,
      );
      this.declared = true;
    }
    const { rows } = await this.client.query<KeyedRow>(`FETCH ${FETCH_SIZE} FROM ${this.name}`);
    this.buffer = rows;
    this.position = 0;
    if (rows.length === 0) {
      this.done = true;
      await this.client.query(`CLOSE ${this.name}`);
    }
  }
}

/** One key of a {@link mergeByKey}: the row from each side that has it. */
export interface MergedKey {
  readonly key: string;
  readonly left: KeyedRow | null;
  readonly right: KeyedRow | null;
}

/**
 * Merges two key-ordered streams (a merge join): each key once, with the row from each
 * side that has it. Keys compare as UTF-8 bytes, the order COLLATE "C" sorts them in.
 * @example
 * for await (const { key, left, right } of mergeByKey(sourceRows, auditRows)) {
 *   if (!right) console.log(`${key} is missing from the audit log`);
 * }
 */
export async function* mergeByKey(
  left: KeyedRowCursor,
  right: KeyedRowCursor,
): AsyncGenerator<MergedKey> {
  let l = await left.next();
  let r = await right.next();
  while (l || r) {
    const order = !l ? 1 : !r ? -1 : Buffer.compare(Buffer.from(l.key), Buffer.from(r.key));
    yield {
      key: (order <= 0 ? l : r)!.key,
      left: order <= 0 ? l : null,
      right: order >= 0 ? r : null,
    };
    if (order <= 0) l = await left.next();
    if (order >= 0) r = await right.next();
  }
}

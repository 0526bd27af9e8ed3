import { verifyIntegrity } from '../../src/trust/integrity';
import { changeSeq } from '../support/dms-apply';
import { createDmsTarget, type DmsTarget } from '../support/dms-target';

/**
 * Migration 0028: a chain block of a multi-row statement (here 100 rows, the engine
 * bench's shape) is stored in its heap row, not toasted, and a block too big for a page
 * still is; the chain verifies either way.
 */
describe('migration 0028: chain blocks inline up to a page', () => {
  let target: DmsTarget;
  beforeAll(async () => {
    target = await createDmsTarget(`CREATE TABLE items (id int PRIMARY KEY, name text)`, {
      tables: [{ table: 'items' }],
    });
  });
  afterAll(() => target?.close());

  /** Inserts `rows` new keys from `first` in one staging statement: one block of `rows`. */
  async function insertRows(first: number, rows: number): Promise<void> {
    const at = '2026-12-06 10:00:00';
    await target.client.query(
      `INSERT INTO audit.items_staging (id, name, ar_h_operation, ar_h_commit_timestamp, ar_h_change_seq,
           ar_h_transaction_id, ar_h_stream_position, ar_h_indicator)
         SELECT g, 'item ' || g, 'INSERT', $1, $2 || lpad(g::text, 10, '0'), '900', '0/1', 'I'
           FROM generate_series($3::int, $3::int + $4::int - 1) AS g`,
      [at, changeSeq(at).slice(0, 25), first, rows],
    );
  }

  /** The newest block's row count, and the bytes of the chain's toast table. */
  async function newestBlock(): Promise<{ rows: number; toastBytes: number }> {
    const { rows } = await target.client.query<{ rows: number; toast_bytes: string }>(
      `SELECT (SELECT cardinality(row_ids) FROM audit.audit_chain ORDER BY block_no DESC LIMIT 1) AS rows,
                pg_relation_size(reltoastrelid)::text AS toast_bytes
           FROM pg_class WHERE oid = 'audit.audit_chain'::regclass`,
    );
    return { rows: rows[0]!.rows, toastBytes: Number(rows[0]!.toast_bytes) };
  }

  it('keeps a 100-row block in its heap row and toasts a 1,000-row one', async () => {
    await insertRows(1, 100);
    expect(await newestBlock()).toEqual({ rows: 100, toastBytes: 0 });
    await insertRows(1001, 1000);
    const big = await newestBlock();
    expect(big.rows).toBe(1000);
    expect(big.toastBytes).toBeGreaterThan(0);
    expect(
      await verifyIntegrity({ targetUrl: target.targetUrl, auditSchema: 'audit' }),
    ).toMatchObject({
      ok: true,
      findingCount: 0,
      rows: 1100,
    });
  });
});

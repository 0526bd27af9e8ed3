import { afterAll, describe, expect, it } from 'vitest';
import { installCaptureFloor, type CaptureFloor } from '../../bench/lib/capture-floor';
import { ITEMS_DDL } from '../../bench/lib/engine-capture';
import { stagingTriggerSwitch } from '../../bench/lib/staging-triggers';
import { quoteQualified } from '../../src/postgres/identifiers';
import { stagingTableName } from '../../src/staging/header-columns';
import { createDmsTarget, type DmsTarget } from '../support/dms-target';
import { withClient } from '../support/databases';

// The floor variants of bench/tools/instructions.ts measure "the cheapest capture there could
// be": a floor that recorded nothing, or recorded less than one row per change, would read
// as cheap as no capture at all and make the bench's conclusion wrong.
describe('capture floor (bench/tools/instructions.ts --floor)', () => {
  const staging = quoteQualified('audit', stagingTableName('items'));
  const targets: DmsTarget[] = [];
  afterAll(() => Promise.all(targets.map((target) => target.close())));

  /** A migrated target with the kit's staging triggers off and `floor` installed. */
  async function floorTarget(floor: CaptureFloor): Promise<string> {
    const target = await createDmsTarget(ITEMS_DDL, { tables: [{ table: 'items' }] });
    targets.push(target);
    const { setEnabled } = await stagingTriggerSwitch(target.targetUrl, staging);
    await setEnabled(false);
    await installCaptureFloor(
      target.targetUrl,
      'audit',
      { table: stagingTableName('items'), sourceTable: 'items', key: 'id' },
      floor,
    );
    return target.targetUrl;
  }

  it.each<CaptureFloor>(['trigger', 'bare', 'rule'])(
    '%s: one log row per DMS change, holding the row as it was applied',
    async (floor) => {
      const url = await floorTarget(floor);
      await withClient(url, async (client) => {
        await client.query(
          `INSERT INTO ${staging} (id, name, price, qty, ar_h_operation, ar_h_commit_timestamp, ar_h_change_seq)
           VALUES (7, 'seven', 1.50, 1, 'INSERT', '2026-12-06 07:00:00.000001', '1')`,
        );
        await client.query(
          `UPDATE ${staging} SET qty = 2, ar_h_operation = 'UPDATE', ar_h_change_seq = '2' WHERE id = 7`,
        );
        const { rows } = await client.query<{
          operation: string;
          row_key: unknown;
          qty_before: number | null;
          qty_after: number;
        }>(
          `SELECT operation, row_key, (old_row->>'qty')::int AS qty_before, (new_row->>'qty')::int AS qty_after
             FROM audit.floor_log ORDER BY id`,
        );
        expect(rows).toEqual([
          { operation: 'INSERT', row_key: { id: 7 }, qty_before: null, qty_after: 1 },
          { operation: 'UPDATE', row_key: { id: 7 }, qty_before: 1, qty_after: 2 },
        ]);
        // The kit's own log stays empty: only the floor captured.
        const { rows: kit } = await client.query(`SELECT 1 FROM audit.audit_log`);
        expect(kit).toEqual([]);
      });
    },
  );
});

import { parseConfig, type AuditTrailConfigInput } from '../../src/config';
import { migrateTarget } from '../../src/migrate/migrate-target';
import { quoteIdent } from '../../src/postgres/identifiers';
import { kitRoles } from '../../src/trust/roles';
import { verifyAuditTrail } from '../../src/verify';
import { cdc, DmsApplier, fullLoad } from '../support/dms-apply';
import { createTestDatabase, withClient } from '../support/databases';
import { asLogin, createLogin } from '../trust/support';

/**
 * Two powers DMS's target login (the writer role) holds because DMS needs them, and what
 * `verify` (source against audit) makes of each: the README's trust model says which it
 * detects, and this file is where that is checked.
 */
const both: AuditTrailConfigInput = { tables: [{ table: 'items' }, { table: 'other' }] };
const otherOnly: AuditTrailConfigInput = { tables: [{ table: 'other' }] };

interface Install {
  readonly sourceUrl: string;
  readonly targetUrl: string;
  /** DMS's target login: the writer role and nothing else. */
  readonly dmsUrl: string;
}

/** items 1 'uno' and 2 'two' on the source and, applied as DMS does, in history. */
async function install(): Promise<Install> {
  const sourceUrl = await createTestDatabase('wpsrc');
  const targetUrl = await createTestDatabase('wptgt');
  await withClient(sourceUrl, (client) =>
    client.query(`CREATE TABLE items (id int PRIMARY KEY, name text);
                  CREATE TABLE other (id int PRIMARY KEY);
                  INSERT INTO items VALUES (1, 'uno'), (2, 'two');`),
  );
  await migrateTarget({ config: parseConfig(both), sourceUrl, targetUrl });
  const dms = await createLogin(targetUrl, 'dms');
  await withClient(targetUrl, (client) =>
    client.query(
      `GRANT ${quoteIdent(kitRoles(parseConfig(both)).writer)} TO ${quoteIdent(dms.name)}`,
    ),
  );
  await asLogin(dms.url, async (client) => {
    const items = new DmsApplier(client, 'audit', 'items', ['id']);
    await items.insert({ id: '1', name: 'one' }, cdc('INSERT', '2026-11-22 10:00:00', 1));
    await items.insert({ id: '2', name: 'two' }, cdc('INSERT', '2026-11-22 10:00:01', 2));
    await items.update({ id: '1' }, { name: 'uno' }, cdc('UPDATE', '2026-11-22 10:00:02', 3));
  });
  return { sourceUrl, targetUrl, dmsUrl: dms.url };
}

const verify = (at: Install) =>
  verifyAuditTrail({ config: parseConfig(both), sourceUrl: at.sourceUrl, targetUrl: at.targetUrl });

/** Key 2's versions, in the order recorded. */
async function keyTwo(at: Install): Promise<string[]> {
  const { rows } = await withClient(at.targetUrl, (client) =>
    client.query<{ v: string }>(
      `SELECT operation || ' ' || coalesce(new_row ->> 'name', '-') AS v FROM audit.audit_log
        WHERE source_table = 'items' AND row_key = '{"id": 2}' ORDER BY id`,
    ),
  );
  return rows.map((row) => row.v);
}

describe("the writer role's powers DMS needs, and what verify makes of them", () => {
  it('a staging row given a future change sequence silences the later real changes of its key: verify reports the key', async () => {
    const at = await install();
    expect((await verify(at)).ok).toBe(true);
    await asLogin(at.dmsUrl, (client) =>
      new DmsApplier(client, 'audit', 'items', ['id']).update(
        { id: '2' },
        { name: 'two' },
        cdc('UPDATE', '2099-01-01 00:00:00', 99),
      ),
    );
    // The source's real change, as DMS applies it: older than the forged sequence, so
    // skip_applied_change takes it for a replay and keeps the row as it is.
    await withClient(at.sourceUrl, (client) =>
      client.query(`UPDATE items SET name = 'dos' WHERE id = 2`),
    );
    await asLogin(at.dmsUrl, (client) =>
      new DmsApplier(client, 'audit', 'items', ['id']).update(
        { id: '2' },
        { name: 'dos' },
        cdc('UPDATE', '2026-11-23 10:00:00', 4),
      ),
    );
    expect(await keyTwo(at)).not.toContain('UPDATE dos');
    const report = await verify(at);
    expect(report.ok).toBe(false);
    expect(report.mismatches.map((m) => [m.table, m.key, m.kind])).toEqual([
      ['public.items', { id: 2 }, 'different'],
    ]);
  });

  it('finish_reload called before the load copied every row records a DELETE for the rest: verify does not report it once the load ends', async () => {
    const at = await install();
    // The table removed from the config and added back: a reload against its baseline.
    await migrateTarget({ config: parseConfig(otherOnly), ...at });
    await migrateTarget({ config: parseConfig(both), ...at });
    await asLogin(at.dmsUrl, async (client) => {
      const items = new DmsApplier(client, 'audit', 'items', ['id']);
      await items.insert({ id: '1', name: 'uno' }, fullLoad('2026-11-24 09:00:00'));
      // DMS's login ends the reload with row 2 not copied yet.
      await client.query(
        `SELECT audit.finish_reload('public', 'items', '2026-11-24 09:00:00'::timestamp)`,
      );
    });
    // Until the load copies it, verify reports row 2 (its newest version is the DELETE).
    const during = await verify(at);
    expect(during.mismatches.map((m) => [m.table, m.key])).toEqual([['public.items', { id: 2 }]]);
    await asLogin(at.dmsUrl, (client) =>
      new DmsApplier(client, 'audit', 'items', ['id']).insert(
        { id: '2', name: 'two' },
        fullLoad('2026-11-24 09:00:00'),
      ),
    );
    // Row 2 never left the source, yet history says it was deleted and came back.
    expect(await keyTwo(at)).toEqual(['INSERT two', 'DELETE -', 'SNAPSHOT two']);
    const report = await verify(at);
    expect(report.mismatches).toEqual([]);
    expect(report.ok).toBe(true);
  });
});

import { AuditTrailError } from '../../src/errors';
import { grantSql } from '../../src/trust/grant';
import { kitRoles } from '../../src/trust/roles';
import { withClient } from '../support/databases';
import { createLogin } from '../trust/support';
import { createPipeline, type Pipeline } from './helpers';
import { errorOf } from '../support/settled';

const CONFIG = { tables: [{ schema: 'public', table: 'items' }] };

/** Far past any WAL a test server writes. */
const FAR = 'FFFF/0';

/**
 * The engine role (the engine's login, beside writer; not DMS's since migration 0027) may
 * INSERT and UPDATE the engine's position: the engine needs it. The row trigger refuses moving a loaded position back,
 * but a position written further than the source has ever written (a row inserted for
 * a slot that has none, as while a reload waits for its next start, or one moved on)
 * made the engine skip every change up to it and exit 0: history lost, silently. The
 * source never wrote past its WAL, so such a position is refused at start.
 */
describe('engine: a position past the source’s WAL', () => {
  let p: Pipeline;
  let writerUrl: string;
  afterEach(async () => p?.dispose());

  const setup = async () => {
    p = await createPipeline(
      `CREATE TABLE items (id int PRIMARY KEY, name text); INSERT INTO items VALUES (1, 'a');`,
      CONFIG,
    );
    await p.replicate();
    const login = await createLogin(p.targetUrl, 'forging_engine');
    await p.target(grantSql(kitRoles(p.config), 'engine', login.name));
    writerUrl = login.url;
  };
  const asWriter = (sql: string) =>
    withClient(writerUrl, (client) => client.query(sql, [p.slotName]));
  const keys = async () => {
    const { rows } = await p.target('SELECT id FROM audit.items_staging ORDER BY id');
    return rows.map((row: { id: number }) => row.id);
  };
  const runEngine = () => errorOf(p.replicate());

  const expectRefused = async (error: unknown) => {
    expect(error).toBeInstanceOf(AuditTrailError);
    const refusal = error as AuditTrailError;
    expect(refusal.code).toBe('POSITION_AHEAD_OF_SOURCE');
    expect(refusal.exitCode).toBe(1);
    expect(refusal.message).toMatch(
      new RegExp(
        `^the position of replication slot "${p.slotName}" on the target \\(commit ${FAR}, ` +
          `end [0-9A-F]+/[0-9A-F]+, acknowledged [0-9A-F]+/[0-9A-F]+\\) is past the source's WAL ` +
          `\\(written up to [0-9A-F]+/[0-9A-F]+\\)`,
      ),
    );
    expect(refusal.message).toMatch(/Nothing was applied$/);
    expect(refusal.hint).toMatch(/cdc_engine_position/);
    // Nothing applied past it: key 2 is neither applied nor skipped for good.
    expect(await keys()).toEqual([1]);
  };

  it('refuses a loaded row an engine login inserted for a slot that had none', async () => {
    await setup();
    // The owner deletes the row to reload (README "Exactly once"); before the next
    // start, an engine login inserts a loaded position of its own.
    const { rows } = await p.target(
      `DELETE FROM audit.cdc_engine_position WHERE slot_name = $1 RETURNING acked_lsn::text AS acked`,
      [p.slotName],
    );
    const acked = (rows[0] as { acked: string }).acked;
    await asWriter(
      `INSERT INTO audit.cdc_engine_position
         (slot_name, initial_load_done, last_commit_lsn, last_end_lsn, acked_lsn)
       VALUES ($1, true, '${FAR}', '${acked}', '${acked}')`,
    );
    await p.source(`INSERT INTO items VALUES (2, 'x')`);
    await expectRefused(await runEngine());
  });

  it('refuses a loaded row an engine login moved on past the source’s WAL', async () => {
    await setup();
    await asWriter(
      `UPDATE audit.cdc_engine_position SET last_commit_lsn = '${FAR}' WHERE slot_name = $1`,
    );
    await p.source(`INSERT INTO items VALUES (2, 'x')`);
    await expectRefused(await runEngine());
  });
});

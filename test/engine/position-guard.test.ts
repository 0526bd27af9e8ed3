import pg from 'pg';
import { AuditTrailError } from '../../src/errors';
import { formatLsn } from '../../src/engine/lsn';
import { PositionStore, type StoredPosition } from '../../src/engine/position-store';
import { grantSql } from '../../src/trust/grant';
import { kitRoles } from '../../src/trust/roles';
import { withClient } from '../support/databases';
import { createLogin } from '../trust/support';
import { createPipeline, type Pipeline } from './helpers';
import { errorOf } from '../support/settled';

const CONFIG = { tables: [{ schema: 'public', table: 'items' }] };

/** The change sequence a position's state last issued, as the error prints it. */
const lastSeq = (position: StoredPosition) =>
  `${position.lastSeqPrefix}${position.lastSeqCounter.toString().padStart(19, '0')}`;

/**
 * The stored position only moves forward. Written backwards, it replays what the target
 * already has (with the change sequence kept, as new versions: a second INSERT, and
 * UPDATEs the source never made, which verify does not see) or issues change sequences
 * at or below ones already recorded. With the slot lock one engine writes per slot; a
 * bug, or a second engine with the lock bypassed, is refused by the write itself, in the
 * target transaction that also holds the staging rows it describes.
 */
describe('engine: the stored position never moves backwards', () => {
  let p: Pipeline;
  let store: PositionStore;

  beforeAll(async () => {
    p = await createPipeline(
      `CREATE TABLE items (id int PRIMARY KEY, name text); INSERT INTO items VALUES (1, 'a');`,
      CONFIG,
    );
    store = new PositionStore('audit', p.slotName);
    await p.replicate();
    await p.source(`UPDATE items SET name = 'b' WHERE id = 1`);
    await p.replicate();
  });
  afterAll(async () => p?.dispose());

  const stored = () => withClient(p.targetUrl, async (client) => (await store.read(client))!);

  /** `write` in a target transaction that is rolled back (so each case starts alike). */
  const attemptWrite = (position: StoredPosition) =>
    withClient(p.targetUrl, async (client) => {
      await client.query('BEGIN');
      try {
        await store.write(client, position);
        return null;
      } catch (error) {
        return error;
      } finally {
        await client.query('ROLLBACK');
      }
    });

  it.each([
    ['the commit LSN', (at: StoredPosition) => ({ ...at, lastCommitLsn: at.lastCommitLsn - 1n })],
    [
      'the change sequence (counter)',
      (at: StoredPosition) => ({
        ...at,
        lastCommitLsn: at.lastCommitLsn + 1000n,
        lastEndLsn: at.lastEndLsn + 1000n,
        lastSeqCounter: at.lastSeqCounter - 1n,
      }),
    ],
    [
      'the change sequence (timestamp part)',
      (at: StoredPosition) => ({
        ...at,
        lastCommitLsn: at.lastCommitLsn + 1000n,
        lastSeqPrefix: '2000010100000000',
        lastSeqCounter: at.lastSeqCounter + 1n,
      }),
    ],
  ])('refuses a write that moves %s back, naming the slot and both positions', async (_, back) => {
    const at = await stored();
    expect(at.lastCommitLsn).toBeGreaterThan(0n);
    const attempted = back(at);
    const error = await attemptWrite(attempted);
    expect(error).toBeInstanceOf(AuditTrailError);
    expect((error as AuditTrailError).code).toBe('POSITION_BACKWARDS');
    expect((error as AuditTrailError).exitCode).toBe(1);
    expect((error as Error).message).toBe(
      `refused to move the position of replication slot "${p.slotName}" backwards: the ` +
        `target holds commit ${formatLsn(at.lastCommitLsn)}, change sequence ${lastSeq(at)}; ` +
        `this write has commit ${formatLsn(attempted.lastCommitLsn)}, change sequence ${lastSeq(attempted)}`,
    );
    expect(await stored()).toEqual(at);
  });

  it('refuses a write that marks a loaded position not loaded, as POSITION_BACKWARDS (the row trigger’s rule, met by the write itself)', async () => {
    const at = await stored();
    const attempted: StoredPosition = {
      ...at,
      initialLoadDone: false,
      lastCommitLsn: at.lastCommitLsn + 1000n,
      lastEndLsn: at.lastEndLsn + 1000n,
      lastSeqCounter: at.lastSeqCounter + 1n,
    };
    const error = await attemptWrite(attempted);
    expect((error as AuditTrailError).code).toBe('POSITION_BACKWARDS');
    expect((error as Error).message).toBe(
      `refused to move the position of replication slot "${p.slotName}" backwards: the ` +
        `target holds commit ${formatLsn(at.lastCommitLsn)}, change sequence ${lastSeq(at)}; ` +
        `this write has commit ${formatLsn(attempted.lastCommitLsn)}, change sequence ${lastSeq(attempted)}, not loaded`,
    );
    expect(await stored()).toEqual(at);
  });

  it('takes the same position again, and one further on', async () => {
    const at = await stored();
    expect(await attemptWrite(at)).toBeNull();
    expect(
      await attemptWrite({
        ...at,
        lastCommitLsn: at.lastCommitLsn + 1n,
        lastEndLsn: at.lastEndLsn + 1n,
        lastSeqCounter: at.lastSeqCounter + 1n,
      }),
    ).toBeNull();
  });

  it('an engine whose write is refused commits none of that transaction, and stops', async () => {
    const engine = p.engine();
    const running = engine.run().then(
      () => 'stopped',
      (error: unknown) => error,
    );
    try {
      while (engine.status().phase !== 'streaming') await sleep(50);
      // Another writer (a second engine with the lock bypassed) moved the change sequence
      // on: this engine's next sequences would sort before ones it may have recorded.
      const at = await stored();
      const ahead = { ...at, lastSeqPrefix: '2999010100000000' };
      await withClient(p.targetUrl, (client) => store.write(client, ahead));
      await p.source(`INSERT INTO items VALUES (2, 'x')`);
      const outcome = await Promise.race([running, appliedKey(p, 2)]);
      expect(outcome).toBeInstanceOf(AuditTrailError);
      expect((outcome as AuditTrailError).code).toBe('POSITION_BACKWARDS');
      expect(await stagingKeys(p)).toEqual([1]);
      const { rows } = await p.target(`SELECT count(*)::int AS n FROM audit.audit_log`);
      expect(rows[0].n).toBe(2);
      expect(await stored()).toEqual(ahead);
    } finally {
      await engine.stop();
      await running;
    }
    // The next engine resumes from the stored position: the change once, verify clean.
    await p.replicate();
    expect(await stagingKeys(p)).toEqual([1, 2]);
    expect((await p.verify()).mismatches).toEqual([]);
  });

  it('compares with what another writer commits meanwhile, not with what it read', async () => {
    const at = await stored();
    const further = (by: bigint): StoredPosition => ({
      ...at,
      lastCommitLsn: at.lastCommitLsn + by,
      lastEndLsn: at.lastEndLsn + by,
      lastSeqCounter: at.lastSeqCounter + by,
    });
    // The engine's target sessions run READ COMMITTED (text-client.ts).
    const [first, second] = [new pg.Client(p.targetUrl), new pg.Client(p.targetUrl)];
    await Promise.all([first.connect(), second.connect()]);
    try {
      await first.query('BEGIN');
      await store.write(first, further(10n));
      await second.query('BEGIN');
      // Further than the stored row, not than the first writer's: it waits for that one.
      const writing = errorOf(store.write(second, further(5n)));
      await waitUntilBlocked(first, second);
      await first.query('COMMIT');
      const error = await writing;
      expect((error as AuditTrailError | null)?.code).toBe('POSITION_BACKWARDS');
      await second.query('ROLLBACK');
      expect(await stored()).toEqual(further(10n));
    } finally {
      await Promise.all([first.end(), second.end()]);
    }
  });

  describe('a direct UPDATE of the position table', () => {
    let engineUrl: string;
    beforeAll(async () => {
      const login = await createLogin(p.targetUrl, 'position_engine');
      await p.target(grantSql(kitRoles(p.config), 'engine', login.name));
      engineUrl = login.url;
    });

    /** Runs `set` on this slot's row as an engine login or the test's superuser. */
    const update = (as: 'engine login' | 'superuser', set: string) =>
      errorOf(
        withClient(as === 'engine login' ? engineUrl : p.targetUrl, (client) =>
          client.query(`UPDATE audit.cdc_engine_position SET ${set} WHERE slot_name = $1`, [
            p.slotName,
          ]),
        ),
      ) as Promise<Error | null>;

    /**
     * `column = column - 1` for a pg_lsn column: PostgreSQL 13 has no pg_lsn - number,
     * so through the distance from 0/0 (pg_lsn - pg_lsn, numeric) and back to its text.
     */
    const lsnBack = (column: string): string =>
      `${column} = (SELECT pg_catalog.format('%s/%s', pg_catalog.to_hex(x.n >> 32), pg_catalog.to_hex(x.n & 4294967295))::pg_lsn
                      FROM (SELECT (${column} - '0/0'::pg_lsn)::bigint - 1 AS n) AS x)`;

    it.each([
      ['engine login', 'the commit LSN', lsnBack('last_commit_lsn')],
      ['engine login', 'the change sequence (counter)', `last_seq_counter = last_seq_counter - 1`],
      [
        'engine login',
        'the change sequence (timestamp part)',
        `last_seq_prefix = '2000010100000000'`,
      ],
      ['engine login', 'the acknowledged position', lsnBack('acked_lsn')],
      ['engine login', 'the acknowledged position (to NULL)', `acked_lsn = NULL`],
      ['engine login', 'a loaded position (to not loaded)', `initial_load_done = false`],
      ['superuser', 'the commit LSN', lsnBack('last_commit_lsn')],
    ] as const)('as the %s, refuses one that moves %s back', async (as, _, set) => {
      const before = await stored();
      const error = await update(as, set);
      expect(error?.message).toMatch(
        new RegExp(`^refused to move the position of replication slot "${p.slotName}" backwards`),
      );
      expect(await stored()).toEqual(before);
    });

    it('takes one that moves nothing back', async () => {
      expect(
        await update('engine login', `updated_at = now(), leaves_recorded = leaves_recorded`),
      ).toBeNull();
      expect(
        await update('engine login', `acked_lsn = GREATEST(acked_lsn, last_end_lsn)`),
      ).toBeNull();
    });
  });
});

/** Waits until `waiting`'s statement waits for a lock `holder` holds. */
async function waitUntilBlocked(holder: pg.Client, waiting: pg.Client): Promise<void> {
  const pid = (client: pg.Client) => (client as unknown as { processID: number }).processID;
  for (;;) {
    const { rows } = await holder.query<{ blocked: boolean }>(
      'SELECT $1::int = ANY (pg_blocking_pids($2::int)) AS blocked',
      [pid(holder), pid(waiting)],
    );
    if (rows[0]?.blocked) return;
    await sleep(20);
  }
}

async function stagingKeys(p: Pipeline): Promise<number[]> {
  const { rows } = await p.target(`SELECT id FROM audit.items_staging ORDER BY id`);
  return rows.map((row: { id: number }) => row.id);
}

/** Resolves with 'applied' once staging holds `id` (within 20 s). */
async function appliedKey(p: Pipeline, id: number): Promise<string> {
  for (let waited = 0; waited < 20_000; waited += 100) {
    if ((await stagingKeys(p)).includes(id)) return 'applied';
    await sleep(100);
  }
  return 'neither applied nor refused';
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

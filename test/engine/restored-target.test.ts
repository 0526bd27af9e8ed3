import { AuditTrailError } from '../../src/errors';
import { withClient } from '../support/databases';
import { enableKitTriggers } from '../support/kit-triggers';
import { openApplierSession } from './applier-session';
import { createPipeline, type Pipeline } from './helpers';
import { errorOf, until } from '../support/settled';

const CONFIG = { tables: [{ schema: 'public', table: 'items' }] };

/**
 * The slot is never told more than the target records, so a slot whose confirmed
 * position is past what the target records means the target lost what it was told:
 * restored from a backup, its changes since the backup are never sent again. The
 * engine refuses to stream on past them; an idle engine's keepalive acknowledgements
 * (positions past the last applied commit) are recorded first, so they are not it.
 */
describe('engine: a target behind its slot', () => {
  let p: Pipeline;
  afterEach(async () => p?.dispose());

  /**
   * The slot's confirmed position once the last run's walsender is gone: the engine's
   * final acknowledgement is sent before it disconnects, but the walsender applies it when
   * it reads it, which under load can be after `replicate()` has returned (a CI run read it
   * before it moved). A walsender reads every message before the end of its connection,
   * so once the slot has no active process the position is final.
   */
  const slotConfirmed = async () => {
    for (let attempt = 0; attempt < 100; attempt++) {
      const { rows } = await p.source(
        'SELECT active_pid, confirmed_flush_lsn::text AS lsn FROM pg_replication_slots WHERE slot_name = $1',
        [p.slotName],
      );
      if (rows[0]!.active_pid === null) return rows[0]!.lsn as string;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    throw new Error(`the slot ${p.slotName} is still held 10 s after the engine stopped`);
  };
  const storedEnd = async (url = p.targetUrl) =>
    withClient(url, async (c) => {
      const { rows } = await c.query(
        'SELECT last_end_lsn::text AS lsn FROM audit.cdc_engine_position WHERE slot_name = $1',
        [p.slotName],
      );
      return rows[0]!.lsn as string;
    });
  /** A pipeline on `items` (replicated once) with an unaudited table `other` beside it. */
  const createPipelineWithOther = async () => {
    const pipeline = await createPipeline(
      `CREATE TABLE items (id int PRIMARY KEY, name text); CREATE TABLE other (id int);
       INSERT INTO items VALUES (1, 'a');`,
      CONFIG,
    );
    await pipeline.replicate();
    return pipeline;
  };
  /** WAL the engine is sent nothing of: an idle engine confirms past it. */
  const writeOnlyUnaudited = () => p.source(`INSERT INTO other SELECT generate_series(1, 100)`);
  const keys = async (url = p.targetUrl) =>
    withClient(url, async (c) => {
      const { rows } = await c.query('SELECT id, name FROM audit.items_staging ORDER BY id');
      return rows.map((row) => `${row.id}:${row.name}`);
    });

  it('is refused when restored from a backup, naming the slot and both positions', async () => {
    p = await createPipeline(
      `CREATE TABLE items (id int PRIMARY KEY, name text); INSERT INTO items VALUES (1, 'a');`,
      CONFIG,
    );
    await p.replicate();
    await p.source(`INSERT INTO items VALUES (2, 'x')`);
    await p.replicate();
    // The "backup": a copy of the target as it is now.
    const db = new URL(p.targetUrl).pathname.slice(1);
    const restored = `${db}_restored`;
    await withClient(p.targetUrl.replace(`/${db}`, '/postgres'), (c) =>
      c.query(`CREATE DATABASE ${restored} TEMPLATE ${db}`),
    );
    const restoredUrl = p.targetUrl.replace(`/${db}`, `/${restored}`);
    // Applied to the live target and told to the slot, then the target is "restored".
    await p.source(`INSERT INTO items VALUES (3, 'y')`);
    await p.source(`UPDATE items SET name = 'b' WHERE id = 1`);
    await p.replicate();
    await p.source(`INSERT INTO items VALUES (4, 'z')`);
    const confirmed = await slotConfirmed();
    const stored = await storedEnd(restoredUrl);

    const error = await errorOf(p.engine({ targetUrl: restoredUrl }).runUntilIdle());

    expect(error).toBeInstanceOf(AuditTrailError);
    const refusal = error as AuditTrailError;
    expect(refusal.code).toBe('TARGET_BEHIND_SLOT');
    expect(refusal.kind).toBe('finding');
    expect(refusal.message).toContain(`"${p.slotName}"`);
    expect(refusal.message).toContain(confirmed);
    expect(refusal.message).toContain(stored);
    expect(refusal.hint).toMatch(/cdc_engine_position/);
    expect(refusal.hint).toMatch(/staging tables/);
    // Nothing applied past the gap: key 4 is not streamed onto the restored target.
    expect(await keys(restoredUrl)).toEqual(['1:a', '2:x']);
    // The live target, which has every change, goes on.
    await p.replicate();
    expect(await keys()).toEqual(['1:b', '2:x', '3:y', '4:z']);
  });

  it('is not refused after idle acknowledgements past the last applied commit', async () => {
    p = await createPipelineWithOther();
    await p.source(`INSERT INTO items VALUES (2, 'x')`);
    await p.replicate();
    await writeOnlyUnaudited();
    await p.replicate();
    expect(BigIntLsn(await slotConfirmed())).toBeGreaterThan(BigIntLsn(await storedEnd()));

    await p.source(`INSERT INTO items VALUES (3, 'y')`);
    await p.replicate();
    expect(await keys()).toEqual(['1:a', '2:x', '3:y']);
  });

  it('an until-idle run acknowledges the idle position it stops at, with keepalives queued behind it', async () => {
    // Under load the server's keepalives (one per 50 ms probe) queue up while the engine
    // works: the keepalive that reaches the stop position had another behind it, and a run
    // that acknowledged only with nothing queued stopped without moving the slot (a CI
    // run on PostgreSQL 16). Here every keepalive is handed over only once another is queued.
    p = await createPipelineWithOther();
    await writeOnlyUnaudited();
    const session = await openApplierSession(p, 'idle-ack-queued-test');
    try {
      const applier = await session.applier();
      const { repl } = session;
      const next = repl.next.bind(repl);
      repl.next = async () => {
        const message = await next();
        if (message?.kind === 'keepalive')
          await until(() => repl.pending > 0, 'another message queued');
        return message;
      };
      await applier.apply();
    } finally {
      await session.close();
    }
    expect(BigIntLsn(await slotConfirmed())).toBeGreaterThan(BigIntLsn(await storedEnd()));
    // What the slot was told is recorded first.
    const { rows } = await p.target(
      `SELECT acked_lsn::text AS lsn FROM audit.cdc_engine_position WHERE slot_name = $1`,
      [p.slotName],
    );
    expect(rows[0].lsn).toBe(await slotConfirmed());
  });

  it('is not refused when the position was written by an older engine (no acknowledgement recorded), but warns when the slot is past it', async () => {
    p = await createPipelineWithOther();
    await writeOnlyUnaudited();
    await p.replicate();
    // As an older engine leaves it: idle acknowledgements not recorded (the position
    // table's guard refuses that edit: switched off for it).
    await p.target(
      `ALTER TABLE audit.cdc_engine_position DISABLE TRIGGER cdc_engine_position_forward_only;
       UPDATE audit.cdc_engine_position SET acked_lsn = NULL;
       ${enableKitTriggers('cdc_engine_position')}`,
    );
    const [confirmed, appliedUpTo] = [await slotConfirmed(), await storedEnd()];
    expect(BigIntLsn(confirmed)).toBeGreaterThan(BigIntLsn(appliedUpTo));

    await p.source(`INSERT INTO items VALUES (2, 'x')`);
    const logged: { level: string; message: string; fields?: unknown }[] = [];
    await p.replicate({
      logger: { log: (level, message, fields) => logged.push({ level, message, fields }) },
    });
    expect(await keys()).toEqual(['1:a', '2:x']);
    // The slot past the applied position is what an older idle engine leaves, and what a
    // restore leaves: it cannot be told apart, so it is said, with what tells (verify).
    // (The previous run's walsender may still hold the slot for a moment: the engine then
    // waits and says so, a warning of its own, not the one this test is about.)
    const warnings = logged.filter(
      (line) => line.level === 'warn' && line.message !== 'replication slot in use; waiting',
    );
    expect(warnings).toEqual([
      {
        level: 'warn',
        message:
          'cannot tell whether the target is behind its slot: its position was written by an ' +
          'older engine, which did not record what it acknowledged. If the target was restored ' +
          'from a backup since, the changes in between are lost: run audit-trail verify',
        fields: { slot: p.slotName, confirmed, appliedUpTo },
      },
    ]);
    // From then on the slot's position is recorded, and a restore is refused again.
    const { rows } = await p.target(
      'SELECT acked_lsn IS NOT NULL AS recorded FROM audit.cdc_engine_position',
    );
    expect(rows[0]!.recorded).toBe(true);
  });

  it('does not warn on an older engine’s position the slot is not past', async () => {
    p = await createPipeline(
      `CREATE TABLE items (id int PRIMARY KEY, name text); INSERT INTO items VALUES (1, 'a');`,
      CONFIG,
    );
    await p.replicate();
    // As an older engine leaves it right after a commit the slot was told of: applied up
    // to the slot's position, no acknowledgement recorded.
    const confirmed = await slotConfirmed();
    await p.target(
      `ALTER TABLE audit.cdc_engine_position DISABLE TRIGGER cdc_engine_position_forward_only;
       UPDATE audit.cdc_engine_position SET acked_lsn = NULL, last_end_lsn = '${confirmed}';
       ${enableKitTriggers('cdc_engine_position')}`,
    );
    await p.source(`INSERT INTO items VALUES (2, 'x')`);
    const logged: { level: string; message: string }[] = [];
    await p.replicate({ logger: { log: (level, message) => logged.push({ level, message }) } });
    expect(await keys()).toEqual(['1:a', '2:x']);
    // (The previous run's walsender may still hold the slot for a moment: the engine then
    // waits and says so, a warning of its own, not the one this test is about.)
    const warnings = logged.filter(
      (line) => line.level === 'warn' && line.message !== 'replication slot in use; waiting',
    );
    expect(warnings).toEqual([]);
    expect(logged.map((line) => line.message)).toContain(
      'position written by an older engine; recording the slot position',
    );
  });
});

function BigIntLsn(text: string): bigint {
  const [high, low] = text.split('/');
  return (BigInt(`0x${high}`) << 32n) + BigInt(`0x${low}`);
}

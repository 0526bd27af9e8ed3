import type pg from 'pg';
import { parseLsn } from '../../src/engine/lsn';
import type { PositionStore, StoredPosition } from '../../src/engine/position-store';
import { refusePositionAheadOfSource } from '../../src/engine/target-behind-slot';

/**
 * The start's check that the stored position is WAL the source had written, on a standby
 * source (logical decoding on a standby, PostgreSQL 16+). A standby that restarted after a
 * crash accepts connections while it still replays its own WAL from its last
 * restartpoint, its replay position behind what it had replayed and sent before
 * (reproduced on a PostgreSQL 15 standby: pg_last_wal_replay_lsn() 0/5B377308 at the first
 * connection after replaying up to 0/5C7CD618, pg_last_wal_receive_lsn() NULL until it
 * streamed again). The engine must not call such a position forged or lost (exit 1, hint:
 * reload): it waits for the standby to stream, then checks. The answers of the source's
 * statement are given here; forged-position.test runs the statement on a primary.
 */

interface SourceAnswer {
  readonly lsn: string | null;
  readonly replaying_own_wal: boolean;
}

/** A source whose position statement answers `answers` in turn (the last one again after). */
function sourceAnswering(answers: readonly SourceAnswer[]) {
  let asked = 0;
  const source = {
    query: async () => ({ rows: [answers[Math.min(asked++, answers.length - 1)]] }),
  } as unknown as pg.ClientBase;
  return { source, asked: () => asked };
}

const stored: StoredPosition = {
  initialLoadDone: true,
  lastCommitLsn: parseLsn('0/5C7CD5E0'),
  lastEndLsn: parseLsn('0/5C7CD618'),
  lastSeqPrefix: '20261205060000000000',
  lastSeqCounter: 7n,
};

const positions = { auditSchema: 'audit' } as unknown as PositionStore;
const acknowledged = parseLsn('0/5C7CD618');

function check(answers: readonly SourceAnswer[], stopped = () => false, maxWaitMs = 60_000) {
  const { source, asked } = sourceAnswering(answers);
  const warnings: string[] = [];
  const logger = {
    log: (level: string, message: string) => {
      if (level === 'warn') warnings.push(message);
    },
  };
  const checked = refusePositionAheadOfSource(
    { source, positions },
    'slot_a',
    stored,
    acknowledged,
    { logger, stopped, maxWaitMs, pollMs: 1 },
  );
  return { checked, warnings, asked };
}

describe('stored position against a standby source', () => {
  it('waits for a restarted standby replaying its own WAL, warning once, and starts once it streams past the position', async () => {
    const { checked, warnings, asked } = check([
      { lsn: '0/5B377308', replaying_own_wal: true },
      { lsn: '0/5BF00000', replaying_own_wal: true },
      { lsn: '0/5C7CD618', replaying_own_wal: false },
    ]);
    await expect(checked).resolves.toBe(true);
    expect(asked()).toBe(3);
    expect(warnings).toEqual([
      'the source is a standby still replaying its own WAL (restarted?), behind the stored position: waiting for it to stream from its primary before checking the position',
    ]);
  });

  it('still refuses a position past what the standby has once it streams (POSITION_AHEAD_OF_SOURCE)', async () => {
    const { checked } = check([
      { lsn: '0/5B377308', replaying_own_wal: true },
      { lsn: '0/5C000000', replaying_own_wal: false },
    ]);
    await expect(checked).rejects.toMatchObject({
      code: 'POSITION_AHEAD_OF_SOURCE',
      message: expect.stringContaining('written up to 0/5C000000'),
    });
  });

  it('refuses at once on a primary or a streaming standby: no wait', async () => {
    for (const answer of [
      { lsn: '0/5B377308', replaying_own_wal: false },
      { lsn: '0/5C000000', replaying_own_wal: false },
    ]) {
      const { checked, warnings, asked } = check([answer]);
      await expect(checked).rejects.toMatchObject({ code: 'POSITION_AHEAD_OF_SOURCE' });
      expect(asked()).toBe(1);
      expect(warnings).toEqual([]);
    }
  });

  it('ends the wait when the engine is asked to stop, nothing checked', async () => {
    let polls = 0;
    const { checked } = check([{ lsn: '0/5B377308', replaying_own_wal: true }], () => ++polls > 2);
    await expect(checked).resolves.toBe(false);
  });

  it('refuses once the wait reaches its budget (SOURCE_STANDBY_BEHIND): nothing waits forever', async () => {
    // A standby whose primary is down (or that only restores from an archive) may never
    // stream: the engine's outage budget bounds the wait.
    const { checked, warnings } = check(
      [{ lsn: '0/5B377308', replaying_own_wal: true }],
      () => false,
      30,
    );
    await expect(checked).rejects.toMatchObject({
      code: 'SOURCE_STANDBY_BEHIND',
      exitCode: 2,
      message: expect.stringContaining(
        'replayed its WAL only up to 0/5B377308, behind the position 0/5C7CD618',
      ),
    });
    expect(warnings).toHaveLength(1);
  });
});

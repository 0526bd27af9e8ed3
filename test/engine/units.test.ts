import { ChangeSequence, CHANGE_SEQ_LENGTH } from '../../src/engine/change-sequence';
import { formatLsn, parseLsn } from '../../src/engine/lsn';
import { formatUtcTimestamp } from '../../src/engine/pg-time';
import { decodePgOutput, UNCHANGED_TOAST } from '../../src/engine/pgoutput';
import { isConnectionLoss, reconnectDelay } from '../../src/engine/reconnect';
import { SchemaChangeError } from '../../src/engine/relation-binding';

/** µs since 2000-01-01 UTC for an ISO instant plus extra microseconds. */
const pgTime = (iso: string, micros = 0) =>
  (BigInt(Date.parse(iso)) - 946_684_800_000n) * 1000n + BigInt(micros);

describe('engine building blocks', () => {
  it('formats and parses LSNs as PostgreSQL prints them', () => {
    expect(formatLsn(parseLsn('16/b374d848'))).toBe('16/B374D848');
    expect(parseLsn('0/10')).toBe(16n);
    expect(() => parseLsn('16-B3')).toThrow(/not an LSN/);
  });

  it('formats protocol timestamps as timestamp(6) UTC text, keeping microseconds (also before 2000)', () => {
    expect(formatUtcTimestamp(pgTime('2026-01-31T23:59:59.123Z', 456))).toBe(
      '2026-01-31 23:59:59.123456',
    );
    expect(formatUtcTimestamp(pgTime('1999-12-31T23:59:59.999Z', 999))).toBe(
      '1999-12-31 23:59:59.999999',
    );
  });

  it('issues 35-character DMS-shaped change sequences that never go backwards', () => {
    const sequence = new ChangeSequence('', 0n);
    const first = sequence.next(pgTime('2026-05-01T10:00:00.129Z'));
    expect(first).toBe('2026050110000012' + '1'.padStart(19, '0'));
    const earlierClock = sequence.next(pgTime('2026-05-01T09:59:59.000Z'));
    expect(earlierClock.length).toBe(CHANGE_SEQ_LENGTH);
    expect(earlierClock > first).toBe(true);
    const resumed = new ChangeSequence(...(Object.values(sequence.state()) as [string, bigint]));
    expect(resumed.next(pgTime('2026-05-01T10:00:01Z')) > earlierClock).toBe(true);
  });

  it('gives each commit time the prefix of its UTC date, time and hundredths, however its header was formatted before', () => {
    // The prefix as it was first defined (from the Date's ISO text), for times across and
    // beyond four-digit years, ms boundaries, and before 1970 and 2000.
    const definedPrefix = (time: bigint) => {
      const iso = new Date(Number((time + 946_684_800_000_000n) / 1000n)).toISOString();
      return iso.replace(/[-:T]/g, '').slice(0, 14) + iso.slice(20, 22);
    };
    const times = [
      pgTime('2026-05-01T10:00:00.129Z'),
      pgTime('2026-05-01T10:00:00.129Z', 999),
      pgTime('2026-05-01T10:00:00.130Z'),
      pgTime('1999-12-31T23:59:59.999Z', 999),
      pgTime('1969-12-31T23:59:59.999Z', 1),
      pgTime('1969-12-31T23:59:59.999Z', 999),
      pgTime('0099-01-01T00:00:00.000Z'),
      pgTime('+012345-06-07T08:09:10.110Z'),
      pgTime('-000100-01-01T00:00:00.010Z'),
    ];
    // Reproducible times within about 130 years of 2000 (µs).
    let seed = 7;
    for (let i = 0; i < 300; i++) {
      seed = (seed * 48271) % 2147483647;
      times.push(BigInt(Math.floor((seed / 2147483647 - 0.5) * 8e15)));
    }
    const sequence = new ChangeSequence('', 0n);
    times.forEach((time, index) => {
      // The header first as the applier does, or another time's header before, or none.
      if (index % 3 === 0) formatUtcTimestamp(time);
      if (index % 3 === 1) formatUtcTimestamp(time + 1_000n);
      // The prefix never goes back: from the state before, as a fresh sequence would.
      sequence.reset('', 0n);
      expect(sequence.next(time).slice(0, 16)).toBe(definedPrefix(time));
    });
  });

  it('decodes pgoutput tuples as text, NULL and the unchanged-TOAST marker', () => {
    const text = (value: string) => {
      const bytes = Buffer.from(value);
      const length = Buffer.alloc(4);
      length.writeUInt32BE(bytes.length);
      return Buffer.concat([Buffer.from('t'), length, bytes]);
    };
    const header = Buffer.alloc(7);
    header.write('U', 0);
    header.writeUInt32BE(42, 1);
    header.write('N', 5);
    const message = Buffer.concat([
      header.subarray(0, 6),
      Buffer.from([0, 3]),
      text('1.50'),
      Buffer.from('n'),
      Buffer.from('u'),
    ]);
    expect(decodePgOutput(message)).toEqual({
      tag: 'update',
      relationId: 42,
      oldKind: null,
      oldTuple: null,
      newTuple: ['1.50', null, UNCHANGED_TOAST],
    });
  });
});

describe('reconnect policy', () => {
  const policy = { initialDelayMs: 1000, maxDelayMs: 30_000 };

  it('doubles from the initial delay, caps at the maximum, and jitters within the upper half of each step', () => {
    expect([1, 2, 3, 6, 20].map((n) => reconnectDelay(n, policy, () => 1))).toEqual([
      1000, 2000, 4000, 30_000, 30_000,
    ]);
    expect([1, 2, 3, 6].map((n) => reconnectDelay(n, policy, () => 0))).toEqual([
      500, 1000, 2000, 15_000,
    ]);
  });

  it('retries lost or refused connections, not faults a retry would repeat', () => {
    const sqlError = (code: string) => Object.assign(new Error('x'), { code });
    expect(isConnectionLoss(sqlError('57P01'))).toBe(true); // admin shutdown
    expect(isConnectionLoss(sqlError('57P03'))).toBe(true); // starting up
    expect(isConnectionLoss(sqlError('08006'))).toBe(true);
    expect(isConnectionLoss(sqlError('ECONNREFUSED'))).toBe(true);
    expect(isConnectionLoss(new Error('Connection terminated unexpectedly'))).toBe(true);
    expect(isConnectionLoss(new Error('wrapped', { cause: sqlError('ECONNRESET') }))).toBe(true);
    expect(isConnectionLoss(sqlError('42P01'))).toBe(false); // undefined table
    expect(isConnectionLoss(new SchemaChangeError('column added'))).toBe(false);
    expect(isConnectionLoss(new Error('replication slot "s" is gone'))).toBe(false);
  });
});

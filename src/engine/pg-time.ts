/** Microseconds between the Unix epoch and PostgreSQL's epoch (2000-01-01 UTC). */
const POSTGRES_EPOCH_OFFSET_MICROS = 946_684_800_000_000n;

/**
 * A PostgreSQL `TimestampTz` from the replication protocol: microseconds since
 * 2000-01-01 00:00:00 UTC. Kept as a `bigint` because a JS `Date` would drop the
 * microseconds.
 */
export type PgTimestamp = bigint;

/** Converts a protocol timestamp to microseconds since the Unix epoch. */
export function toUnixMicros(timestamp: PgTimestamp): bigint {
  return timestamp + POSTGRES_EPOCH_OFFSET_MICROS;
}

/** The current time as a protocol timestamp (millisecond resolution is enough for status messages). */
export function nowPgTimestamp(): PgTimestamp {
  return BigInt(Date.now()) * 1000n - POSTGRES_EPOCH_OFFSET_MICROS;
}

/**
 * Formats a protocol timestamp as `timestamp(6)` text in UTC (`2026-01-31 23:59:59.123456`),
 * exactly what DMS writes to a `datetime` precision 6 header column.
 */
export function formatUtcTimestamp(timestamp: PgTimestamp): string {
  const unixMicros = toUnixMicros(timestamp);
  const millis = floorDiv(unixMicros, 1000n);
  const micros = unixMicros - millis * 1000n;
  const iso = utcIso(Number(millis)); // 2026-01-31T23:59:59.123Z
  const fraction = `${iso.slice(20, 23)}${micros.toString().padStart(3, '0')}`;
  return `${iso.slice(0, 10)} ${iso.slice(11, 19)}.${fraction}`;
}

/**
 * `Date.toISOString` of a Unix time in ms (`2026-01-31T23:59:59.123Z`), the last one kept:
 * a source transaction's commit time is printed twice, for its header
 * ({@link formatUtcTimestamp}) and its change sequences' prefix (`ChangeSequence`), and the
 * `Date` and its text were most of each (about 1 µs a transaction, BENCHMARKS 2).
 */
export function utcIso(unixMillis: number): string {
  if (unixMillis !== lastIsoMillis) {
    lastIsoMillis = unixMillis;
    lastIso = new Date(unixMillis).toISOString();
  }
  return lastIso;
}

let lastIsoMillis = Number.NaN;
let lastIso = '';

/** Seconds (with fraction) between a protocol timestamp and now; never negative. */
export function secondsSince(timestamp: PgTimestamp): number {
  const ageMicros = BigInt(Date.now()) * 1000n - toUnixMicros(timestamp);
  return ageMicros > 0n ? Number(ageMicros) / 1e6 : 0;
}

function floorDiv(value: bigint, divisor: bigint): bigint {
  const quotient = value / divisor;
  return value % divisor < 0n ? quotient - 1n : quotient;
}

/**
 * A WAL position (log sequence number) as an unsigned 64-bit integer. Kept as a
 * `bigint` so comparisons are exact; printed the way PostgreSQL prints `pg_lsn`.
 */
export type Lsn = bigint;

/** The zero position (`0/0`). */
export const ZERO_LSN: Lsn = 0n;

/** Parses `16/B374D848` into a {@link Lsn}. */
export function parseLsn(text: string): Lsn {
  const match = /^([0-9A-Fa-f]{1,8})\/([0-9A-Fa-f]{1,8})$/.exec(text.trim());
  if (!match) throw new Error(`not an LSN: ${JSON.stringify(text)}`);
  return (BigInt(`0x${match[1]}`) << 32n) | BigInt(`0x${match[2]}`);
}

/** Formats a {@link Lsn} as PostgreSQL does (`16/B374D848`, upper-case hex). */
export function formatLsn(lsn: Lsn): string {
  const high = (lsn >> 32n).toString(16).toUpperCase();
  const low = (lsn & 0xffffffffn).toString(16).toUpperCase();
  return `${high}/${low}`;
}

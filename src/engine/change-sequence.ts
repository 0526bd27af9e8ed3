import { toUnixMicros, utcIso, type PgTimestamp } from './pg-time';

/** Length of a DMS change sequence: 16-digit UTC timestamp + 19-digit counter. */
export const CHANGE_SEQ_LENGTH = 35;

/**
 * Issues change sequences shaped like DMS's `$AR_H_CHANGE_SEQ`: a 16-digit UTC
 * timestamp (`YYYYMMDDhhmmss` + hundredths, from the source commit time) followed by
 * a 19-digit counter. Commit timestamps are not strictly ordered by commit LSN, so the
 * timestamp part never goes backwards; the counter grows by one per change. Both parts
 * are stored with the applied position, so a replay after a crash issues the same
 * sequences and the strings sort in apply (= source commit) order.
 */
export class ChangeSequence {
  constructor(
    private prefix: string,
    private counter: bigint,
  ) {}

  /** The next sequence for a change of a transaction committed at `commitTime`. */
  next(commitTime: PgTimestamp): string {
    const candidate = timestampPrefix(commitTime);
    if (candidate > this.prefix) this.prefix = candidate;
    this.counter += 1n;
    return formatChangeSeq(this.prefix, this.counter);
  }

  /** State to store with the applied position. */
  state(): { prefix: string; counter: bigint } {
    return { prefix: this.prefix, counter: this.counter };
  }

  /** Rewinds to a stored state (after a rolled-back target transaction). */
  reset(prefix: string, counter: bigint): void {
    this.prefix = prefix;
    this.counter = counter;
  }
}

/**
 * The change sequence of a state: its timestamp part and its counter as 19 digits. A
 * stored position's state prints the last sequence it issued.
 */
export function formatChangeSeq(prefix: string, counter: bigint): string {
  return `${prefix}${counter.toString().padStart(19, '0')}`;
}

/** `YYYYMMDDhhmmssHH` (hundredths) in UTC. */
function timestampPrefix(commitTime: PgTimestamp): string {
  // Every change of a transaction shares its commit time: format it once.
  if (commitTime === lastTime) return lastPrefix;
  lastTime = commitTime;
  lastPrefix = formatPrefix(commitTime);
  return lastPrefix;
}

let lastTime: PgTimestamp | null = null;
let lastPrefix = '';

function formatPrefix(commitTime: PgTimestamp): string {
  const micros = toUnixMicros(commitTime);
  const iso = utcIso(Number(micros / 1000n));
  // A four-digit year's YYYY-MM-DDThh:mm:ss.mmmZ, without a regular expression.
  if (iso.length === 24)
    return (
      iso.slice(0, 4) +
      iso.slice(5, 7) +
      iso.slice(8, 10) +
      iso.slice(11, 13) +
      iso.slice(14, 16) +
      iso.slice(17, 19) +
      iso.slice(20, 22)
    );
  return iso.replace(/[-:T]/g, '').slice(0, 14) + iso.slice(20, 22);
}

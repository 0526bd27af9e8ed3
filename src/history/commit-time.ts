import { sql, type RawBuilder } from 'kysely';

/**
 * A version's commit time as the history API returns it: the text of
 * `to_char(t AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')` (`2026-01-31T23:59:59.123456Z`),
 * null for ±infinity (to_char's NULL), made in the client from the value's 8 bytes.
 *
 * Why not to_char on the server: with its `AT TIME ZONE`, it was 515k of a 100-version
 * page's 5.83M server instructions (9%: about 5,000 per version, most in sprintf), where
 * the value's binary form (`timestamptz_send`, µs since 2000-01-01 UTC) as hex costs 930 a version
 * (BENCHMARKS 4). The text made here is to_char's for every timestamptz PostgreSQL holds,
 * 4713 BC to 294276 AD (test/history/commit-time.test.ts compares them on a real server).
 */
export function commitTimeSql(column: string): RawBuilder<string | null> {
  // pg_catalog-qualified: a lookalike in the reader's search_path must not answer.
  return sql<
    string | null
  >`pg_catalog.encode(pg_catalog.timestamptz_send(${sql.ref(column)}), 'hex')`;
}

/** The to_char text (see {@link commitTimeSql}) of a timestamptz's binary form as 16 hex digits. */
export function commitTimeText(hex: string): string | null {
  if (hex.length !== 16) throw new Error(`not a timestamptz's 8 bytes: ${hex}`);
  // µs since 2000-01-01 00:00 UTC, a signed 64-bit integer: high * 2^32 + low. Doubles hold
  // integers to 2^53 only, so it is split into seconds and µs without forming it.
  const high = hexWord(hex, 0) | 0;
  const low = hexWord(hex, 8);
  if ((high === 0x7fffffff && low === 0xffffffff) || (high === -0x80000000 && low === 0)) {
    return null; // infinity and -infinity (DT_NOEND, DT_NOBEGIN): to_char gives NULL
  }
  // 2^32 µs = 4,294 s + 967,296 µs. |rest| < 2^31 * 967,296 + 2^32 < 2^53: exact, and so is
  // its division by 10^6 floored (quotients to 2.1e9 keep a resolution below 10^-6).
  const rest = high * 967_296 + low;
  const restSeconds = Math.floor(rest / 1_000_000);
  const micros = rest - restSeconds * 1_000_000;
  const seconds = high * 4_294 + restSeconds;
  // timestamp2tm: the day, then the time of day (never negative).
  const day = Math.floor(seconds / SECONDS_PER_DAY);
  const ofDay = seconds - day * SECONDS_PER_DAY;
  const hour = Math.floor(ofDay / 3600);
  const minute = Math.floor((ofDay - hour * 3600) / 60);
  const second = ofDay - hour * 3600 - minute * 60;
  const date = dateText(day + POSTGRES_EPOCH_JDATE);
  const hundredths = Math.floor(micros / 10_000);
  const belowHundredths = micros - hundredths * 10_000;
  const tens = Math.floor(belowHundredths / 100);
  const ones = belowHundredths - tens * 100;
  // One string from its character codes: the template this was (two-digit strings,
  // padStart, the concatenations) made about ten strings per version, 340 bytes of garbage
  // and a tenth of what a first page allocated (BENCHMARKS 4); the scavenges follow the
  // bytes. A year past 9999 (more than 4 digits) keeps a template.
  if (date.length !== 10) {
    return `${date}T${two(hour)}:${two(minute)}:${two(second)}.${String(micros).padStart(6, '0')}Z`;
  }
  return String.fromCharCode(
    date.charCodeAt(0),
    date.charCodeAt(1),
    date.charCodeAt(2),
    date.charCodeAt(3),
    0x2d, // -
    date.charCodeAt(5),
    date.charCodeAt(6),
    0x2d,
    date.charCodeAt(8),
    date.charCodeAt(9),
    0x54, // T
    tensDigit(hour),
    onesDigit(hour),
    0x3a, // :
    tensDigit(minute),
    onesDigit(minute),
    0x3a,
    tensDigit(second),
    onesDigit(second),
    0x2e, // .
    tensDigit(hundredths),
    onesDigit(hundredths),
    tensDigit(tens),
    onesDigit(tens),
    tensDigit(ones),
    onesDigit(ones),
    0x5a, // Z
  );
}

/** The character code of the tens digit of 0-99. */
function tensDigit(value: number): number {
  return 0x30 + Math.floor(value / 10);
}

/** The character code of the ones digit of 0-99. */
function onesDigit(value: number): number {
  return 0x30 + (value % 10);
}

/**
 * The unsigned 32-bit number of the 8 hex digits at `from` (encode's, lower case). By hand:
 * parseInt of two slices made a third of this module's time.
 */
function hexWord(hex: string, from: number): number {
  let value = 0;
  for (let i = from; i < from + 8; i++) {
    const code = hex.charCodeAt(i) | 0x20; // 'A'-'F' as 'a'-'f'; digits unchanged
    value = value * 16 + (code <= 0x39 ? code - 0x30 : code - 0x57);
  }
  return value;
}

const SECONDS_PER_DAY = 86_400;
/** The Julian day of 2000-01-01, PostgreSQL's epoch. */
const POSTGRES_EPOCH_JDATE = 2_451_545;

/**
 * `YYYY-MM-DD` of a Julian day as to_char prints it: PostgreSQL's j2date (proleptic
 * Gregorian, year 0 is 1 BC), and YYYY's year without era: 1 BC is `0001`, a year past
 * 9999 all its digits. The last day's text is kept: a page's versions are mostly days apart
 * at most, and one transaction's all on one day.
 */
function dateText(julianDay: number): string {
  if (julianDay === lastJulianDay) return lastDateText;
  let julian = julianDay + 32_044;
  let quad = Math.floor(julian / 146_097);
  const extra = (julian - quad * 146_097) * 4 + 3;
  julian += 60 + quad * 3 + Math.floor(extra / 146_097);
  quad = Math.floor(julian / 1_461);
  julian -= quad * 1_461;
  let y = Math.floor((julian * 4) / 1_461);
  julian = (y !== 0 ? (julian + 305) % 365 : (julian + 306) % 366) + 123;
  y += quad * 4;
  const year = y - 4_800;
  quad = Math.floor((julian * 2_141) / 65_536);
  const dayOfMonth = julian - Math.floor((7_834 * quad) / 256);
  const month = ((quad + 10) % 12) + 1;
  // to_char's ADJUST_YEAR: a BC year (0 and below) as its positive number.
  const shown = year <= 0 ? -(year - 1) : year;
  lastJulianDay = julianDay;
  lastDateText = `${String(shown).padStart(4, '0')}-${two(month)}-${two(dayOfMonth)}`;
  return lastDateText;
}

let lastJulianDay = Number.NaN;
let lastDateText = '';

function two(value: number): string {
  return value < 10 ? `0${value}` : String(value);
}

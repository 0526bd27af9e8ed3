/**
 * Which source type changes a staging column can follow in place. Staging must hold
 * every value the source holds exactly; `ALTER COLUMN ... TYPE` on staging converts the
 * values already there, so only conversions that keep every value are allowed: wider
 * integers, numeric with at least as many integer and fractional digits, longer varchar,
 * varchar to text, more fractional seconds. Types are compared as `format_type` prints
 * them (on both databases).
 */
export function isWideningTypeChange(from: string, to: string): boolean {
  if (from === to) return true;
  const fromArray = from.endsWith('[]');
  if (fromArray !== to.endsWith('[]')) return false;
  if (fromArray) return isWideningTypeChange(from.slice(0, -2), to.slice(0, -2));
  return (
    widensInteger(from, to) ||
    widensNumeric(from, to) ||
    widensText(from, to) ||
    widensPrecision(from, to)
  );
}

const INTEGER_RANK: Readonly<Record<string, number>> = { smallint: 1, integer: 2, bigint: 3 };

function widensInteger(from: string, to: string): boolean {
  const rank = INTEGER_RANK[from];
  if (rank === undefined) return false;
  const toRank = INTEGER_RANK[to];
  if (toRank !== undefined) return toRank > rank;
  // Any integer fits an unconstrained numeric, or one with enough integer digits.
  const numeric = parseNumeric(to);
  const digits = { 1: 5, 2: 10, 3: 19 }[rank] ?? Infinity;
  return (
    numeric !== undefined &&
    (numeric.precision === undefined || numeric.precision - numeric.scale >= digits)
  );
}

interface NumericType {
  readonly precision?: number;
  readonly scale: number;
}

function parseNumeric(type: string): NumericType | undefined {
  if (type === 'numeric') return { scale: 0 };
  const match = /^numeric\((\d+),(-?\d+)\)$/.exec(type);
  if (!match) return undefined;
  return { precision: Number(match[1]), scale: Number(match[2]) };
}

function widensNumeric(from: string, to: string): boolean {
  const a = parseNumeric(from);
  const b = parseNumeric(to);
  if (a === undefined || b === undefined) return false;
  if (b.precision === undefined) return true; // unconstrained numeric keeps every value
  if (a.precision === undefined) return false;
  return b.scale >= a.scale && b.precision - b.scale >= a.precision - a.scale;
}

function varcharLength(type: string): number | undefined {
  if (type === 'character varying' || type === 'text') return Infinity;
  const match = /^character varying\((\d+)\)$/.exec(type);
  return match ? Number(match[1]) : undefined;
}

function widensText(from: string, to: string): boolean {
  const a = varcharLength(from);
  const b = varcharLength(to);
  return a !== undefined && b !== undefined && b >= a;
}

/** timestamp/timestamptz/time/timetz/interval with more fractional digits (default 6). */
function widensPrecision(from: string, to: string): boolean {
  const split = (type: string) => {
    const match = /^(timestamp|time|interval)(?:\((\d)\))?( with(?:out)? time zone)?$/.exec(type);
    return match
      ? { kind: `${match[1]}${match[3] ?? ''}`, precision: Number(match[2] ?? 6) }
      : undefined;
  };
  const a = split(from);
  const b = split(to);
  return a !== undefined && b !== undefined && a.kind === b.kind && b.precision >= a.precision;
}

import { Kysely, PostgresDialect } from 'kysely';
import { isLosslessNumber, parse, stringify } from 'lossless-json';
import pg from 'pg';
import { createHistory, type Version } from '../../../src/history';
import { quoteQualified } from '../../../src/postgres/identifiers';
import type { ComparedTable } from './expected-history';
import { HARNESS_SESSION_OPTIONS } from './jit';

/** One audit row as stored: its row documents as JSON text. */
export interface StoredVersion {
  readonly id: string;
  readonly oldRowJson: string | null;
  readonly newRowJson: string | null;
  /** `old_json_nulls` / `new_json_nulls` (NULL when none). */
  readonly oldJsonNulls?: readonly string[] | null;
  readonly newJsonNulls?: readonly string[] | null;
}

/**
 * The history API must hand out exactly what the audit log holds (#17 item 8): every
 * value of every version, numbers inside json and jsonb to the last digit
 * (`JSON.parse` would turn 1.10 into 1.1 and 9007199254740993 into ...992). Reads each
 * table through `changesBetween`, by its `schema.table` reference (a dot inside a name
 * must resolve, #17 item 17), and returns one line per difference (empty: none).
 */
export async function compareApiHistory(options: {
  readonly target: pg.ClientBase;
  readonly targetUrl: string;
  readonly auditSchema: string;
  readonly tables: readonly ComparedTable[];
}): Promise<string[]> {
  const db = new Kysely<unknown>({
    dialect: new PostgresDialect({
      // A session of the caller's, with JIT off like the harness's others (see jit.ts).
      pool: new pg.Pool({
        connectionString: options.targetUrl,
        max: 1,
        options: HARNESS_SESSION_OPTIONS,
      }),
    }),
  });
  const history = createHistory(db, { auditSchema: options.auditSchema });
  const problems: string[] = [];
  try {
    for (const table of options.tables) {
      const reference = `${table.schema}.${table.table}`;
      const { rows } = await options.target.query<{
        id: string;
        old_row: string | null;
        new_row: string | null;
        old_json_nulls: string[] | null;
        new_json_nulls: string[] | null;
      }>(
        `SELECT id::text, old_row::text, new_row::text, old_json_nulls, new_json_nulls
           FROM ${quoteQualified(options.auditSchema, 'audit_log')}
          WHERE source_schema = $1 AND source_table = $2`,
        [table.schema, table.table],
      );
      let versions: Version[];
      try {
        versions = await history.changesBetween(
          reference,
          '0001-01-01T00:00:00Z',
          '9999-12-31T00:00:00Z',
        );
      } catch (error) {
        problems.push(`history API: ${reference}: ${(error as Error).message}`);
        continue;
      }
      problems.push(
        ...apiDifferences(
          reference,
          rows.map((r) => ({
            id: r.id,
            oldRowJson: r.old_row,
            newRowJson: r.new_row,
            oldJsonNulls: r.old_json_nulls,
            newJsonNulls: r.new_json_nulls,
          })),
          versions,
        ),
      );
    }
  } finally {
    await db.destroy();
  }
  return problems;
}

/**
 * Differences between the audit log's rows and the versions the API returned for them,
 * at most the first per version. A number's text must survive; as the API documents,
 * a numeric or bigint column's number (or array element) may come as a string holding
 * that exact text.
 */
export function apiDifferences(
  reference: string,
  stored: readonly StoredVersion[],
  versions: readonly (Pick<Version, 'id' | 'oldRow' | 'newRow'> &
    Partial<Pick<Version, 'oldRowJsonNulls' | 'newRowJsonNulls'>>)[],
): string[] {
  const problems: string[] = [];
  const byId = new Map(versions.map((v) => [v.id, v]));
  if (versions.length !== stored.length)
    problems.push(
      `history API: ${reference}: ${versions.length} versions, the audit log holds ${stored.length}`,
    );
  for (const row of stored) {
    const version = byId.get(row.id);
    if (!version) {
      problems.push(`history API: ${reference}: audit row ${row.id} missing`);
      continue;
    }
    for (const side of ['oldRow', 'newRow'] as const) {
      const json = side === 'oldRow' ? row.oldRowJson : row.newRowJson;
      const recorded = json === null ? null : (parse(json) as Record<string, unknown>);
      const got = version[side] as Record<string, unknown> | null;
      const column = differingColumn(recorded, got);
      if (column !== undefined) {
        problems.push(
          `history API: ${reference}: audit row ${row.id} ${side}.${column}: recorded ${show(recorded?.[column])}, API ${show(got?.[column])}`,
        );
        break;
      }
    }
    // The JSON-null lists as stored (the log's NULL is the API's empty list).
    for (const [side, stored] of [
      ['oldRowJsonNulls', row.oldJsonNulls],
      ['newRowJsonNulls', row.newJsonNulls],
    ] as const) {
      if (stored === undefined) continue;
      const got = version[side];
      if (JSON.stringify(got) !== JSON.stringify(stored ?? []))
        problems.push(
          `history API: ${reference}: audit row ${row.id} ${side}: recorded ${JSON.stringify(stored)}, API ${JSON.stringify(got)}`,
        );
    }
  }
  return problems;
}

function differingColumn(
  recorded: Record<string, unknown> | null,
  got: Record<string, unknown> | null,
): string | undefined {
  if (recorded === null || got === null) return recorded === got ? undefined : '(row)';
  const columns = new Set([...Object.keys(recorded), ...Object.keys(got)]);
  return [...columns].find(
    (column) =>
      !(column in recorded && column in got) || !sameValue(recorded[column], got[column], 'top'),
  );
}

/** `recorded` is parsed with every number a LosslessNumber (its exact text). */
function sameValue(recorded: unknown, got: unknown, level: 'top' | 'element' | 'nested'): boolean {
  if (isLosslessNumber(recorded)) {
    if (isLosslessNumber(got)) return got.value === recorded.value;
    if (typeof got === 'number') return String(got) === recorded.value;
    // exact_row: numeric and bigint columns (and their arrays' elements) as strings.
    return typeof got === 'string' && level !== 'nested' && got === recorded.value;
  }
  if (Array.isArray(recorded))
    return (
      Array.isArray(got) &&
      got.length === recorded.length &&
      recorded.every((x, i) => sameValue(x, got[i], level === 'top' ? 'element' : 'nested'))
    );
  if (recorded !== null && typeof recorded === 'object') {
    if (got === null || typeof got !== 'object' || Array.isArray(got) || isLosslessNumber(got))
      return false;
    const a = recorded as Record<string, unknown>;
    const b = got as Record<string, unknown>;
    const keys = Object.keys(a);
    return (
      keys.length === Object.keys(b).length &&
      keys.every((k) => k in b && sameValue(a[k], b[k], 'nested'))
    );
  }
  return recorded === got;
}

function show(value: unknown): string {
  return stringify(value) ?? 'undefined';
}

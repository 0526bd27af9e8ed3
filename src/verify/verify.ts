import pg from 'pg';
import type { AuditTrailConfig } from '../config';
import { introspectSourceTables, type SourceTable } from '../migrate/introspect';
import { connectClient, createKysely } from '../postgres/connect';
import { quoteQualified } from '../postgres/identifiers';
import { sourceRowDocumentSql } from '../staging/row-document';

/** Options for {@link verifyAuditTrail}. */
export interface VerifyOptions {
  /** The audited tables and the audit schema. */
  readonly config: AuditTrailConfig;
  /** Source database URL. */
  readonly sourceUrl: string;
  /** Target database URL (holds the audit log). */
  readonly targetUrl: string;
  /** Most mismatches listed per table (all are counted). @default 20 */
  readonly maxListedPerTable?: number;
}

/** One key whose current source row and newest audit version disagree. */
export interface VerifyMismatch {
  /** `schema.table` */
  readonly table: string;
  /** Primary key values, as JSON. */
  readonly key: Record<string, unknown>;
  /**
   * `missing-in-audit`: a source row with no live audit version; `missing-in-source`:
   * an audit version (not a delete) for a key the source no longer has; `different`:
   * both exist but the values differ.
   */
  readonly kind: 'missing-in-audit' | 'missing-in-source' | 'different';
  /** Columns whose values differ (`different` only). */
  readonly columns?: readonly string[];
  readonly sourceRow?: Record<string, unknown>;
  readonly auditRow?: Record<string, unknown>;
}

/** Per-table counts. */
export interface VerifyTableReport {
  readonly table: string;
  readonly sourceRows: number;
  /** Keys whose newest audit version is not a delete. */
  readonly auditRows: number;
  readonly mismatches: number;
}

/** The result of a verification. */
export interface VerifyReport {
  /** True when every table matches exactly. */
  readonly ok: boolean;
  readonly tables: readonly VerifyTableReport[];
  /** The listed mismatches (at most `maxListedPerTable` per table). */
  readonly mismatches: readonly VerifyMismatch[];
}

const FETCH_SIZE = 2000;

/**
 * Compares every current source row of every audited table with the newest audit
 * version of its key, and finds keys present on one side only. Both sides build the
 * row as jsonb the same way the audit trigger does (time zone UTC, shortest exact
 * floats, ignored columns removed) and are compared as text, so any difference in any
 * digit counts. Both sides are streamed in key order and merged: memory stays bounded.
 */
export async function verifyAuditTrail(options: VerifyOptions): Promise<VerifyReport> {
  const maxListed = options.maxListedPerTable ?? 20;
  const [source, target] = await connectBoth(options.sourceUrl, options.targetUrl);
  try {
    const tables: VerifyTableReport[] = [];
    const mismatches: VerifyMismatch[] = [];
    const sourceTables = await introspectSource(options);
    for (const table of sourceTables) {
      const name = `${table.schema}.${table.table}`;
      const { ignoreColumns } = await auditedTable(target, options.config.auditSchema, name, table);
      const sourceRows = new CursorReader(
        source,
        `SELECT q.key, q.row FROM (${sourceRowDocumentSql(
          {
            ...table,
            ignoreColumns: [...ignoreColumns, ...(await generatedColumns(source, table))],
          },
          quoteQualified(table.schema, table.table),
        )}) AS q ORDER BY q.key COLLATE "C"`,
        [],
      );
      const auditRows = new CursorReader(
        target,
        `SELECT row_key::text AS key, new_row::text AS row
           FROM (SELECT DISTINCT ON (row_key) row_key, operation, new_row
                   FROM ${quoteQualified(options.config.auditSchema, 'audit_log')}
                  WHERE source_schema = $1 AND source_table = $2
                  ORDER BY row_key, change_seq DESC NULLS LAST, id DESC) AS newest
          WHERE operation <> 'DELETE'
          ORDER BY row_key::text COLLATE "C"`,
        [table.schema, table.table],
      );
      const counts = await compare(name, sourceRows, auditRows, async (mismatch, index, raw) => {
        if (index >= maxListed) return;
        const columns = raw
          ? await differingColumns(target, raw.sourceRow, raw.auditRow)
          : undefined;
        mismatches.push(columns ? { ...mismatch, columns } : mismatch);
      });
      tables.push({ table: name, ...counts });
    }
    return { ok: tables.every((table) => table.mismatches === 0), tables, mismatches };
  } finally {
    await Promise.all([source.end(), target.end()]);
  }
}

/** The audited tables as the source has them now (types decide how rows are rendered). */
async function introspectSource(options: VerifyOptions): Promise<SourceTable[]> {
  const source = createKysely<unknown>(options.sourceUrl, { max: 1, label: 'source' });
  try {
    return await introspectSourceTables(source, options.config);
  } finally {
    await source.destroy();
  }
}

/**
 * Opens the source and the target together. If either fails, the other is closed
 * before the error is thrown: a read-only repeatable-read transaction must never be
 * left open on a production source because the target was unreachable.
 */
async function connectBoth(sourceUrl: string, targetUrl: string): Promise<[pg.Client, pg.Client]> {
  const [source, target] = await Promise.allSettled([
    connect(sourceUrl, 'source'),
    connect(targetUrl, 'target'),
  ]);
  if (source.status === 'fulfilled' && target.status === 'fulfilled')
    return [source.value, target.value];
  await Promise.all(
    [source, target].map((side) =>
      side.status === 'fulfilled' ? side.value.end().catch(() => undefined) : undefined,
    ),
  );
  throw source.status === 'rejected' ? source.reason : (target as PromiseRejectedResult).reason;
}

async function connect(url: string, label: string): Promise<pg.Client> {
  const client = await connectClient(url, 'audit-trail-verify', label);
  try {
    // The same settings the audit trigger pins, so both sides render values identically.
    await client.query("SET TIME ZONE 'UTC'; SET extra_float_digits = 1");
    await client.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
    return client;
  } catch (error) {
    await client.end().catch(() => undefined);
    throw error;
  }
}

/**
 * Generated columns of a source table: pgoutput does not send them (before PostgreSQL
 * 18), so staging and history leave them out, and so does the comparison.
 */
async function generatedColumns(
  source: pg.Client,
  table: { schema: string; table: string },
): Promise<string[]> {
  const { rows } = await source.query<{ name: string }>(
    `SELECT attname AS name FROM pg_catalog.pg_attribute
      WHERE attrelid = to_regclass($1) AND attnum > 0 AND NOT attisdropped AND attgenerated <> ''`,
    [quoteQualified(table.schema, table.table)],
  );
  return rows.map((row) => row.name);
}

async function auditedTable(
  target: pg.Client,
  auditSchema: string,
  name: string,
  table: { schema: string; table: string; ignoreColumns: readonly string[] },
): Promise<{ ignoreColumns: string[] }> {
  const { rows } = await target.query<{ key_columns: string[]; ignore_columns: string[] }>(
    `SELECT key_columns, ignore_columns FROM ${quoteQualified(auditSchema, 'audited_table')}
      WHERE source_schema = $1 AND source_table = $2`,
    [table.schema, table.table],
  );
  const row = rows[0];
  if (!row)
    throw new Error(`${name} is not installed on the target: run "audit-trail migrate" first`);
  return {
    ignoreColumns: [...new Set([...row.ignore_columns, ...table.ignoreColumns])],
  };
}

async function compare(
  table: string,
  sourceRows: CursorReader,
  auditRows: CursorReader,
  report: (
    mismatch: VerifyMismatch,
    index: number,
    raw?: { sourceRow: string; auditRow: string },
  ) => Promise<void>,
): Promise<Omit<VerifyTableReport, 'table'>> {
  let sourceCount = 0;
  let auditCount = 0;
  let mismatches = 0;
  const add = (mismatch: VerifyMismatch, raw?: { sourceRow: string; auditRow: string }) =>
    report(mismatch, mismatches++, raw);
  let left = await sourceRows.next();
  let right = await auditRows.next();
  while (left || right) {
    const order = !left
      ? 1
      : !right
        ? -1
        : Buffer.compare(Buffer.from(left.key), Buffer.from(right.key));
    if (order < 0 && left) {
      sourceCount++;
      await add({
        table,
        key: JSON.parse(left.key),
        kind: 'missing-in-audit',
        sourceRow: JSON.parse(left.row),
      });
      left = await sourceRows.next();
    } else if (order > 0 && right) {
      auditCount++;
      await add({
        table,
        key: JSON.parse(right.key),
        kind: 'missing-in-source',
        auditRow: JSON.parse(right.row),
      });
      right = await auditRows.next();
    } else if (left && right) {
      sourceCount++;
      auditCount++;
      if (left.row !== right.row) {
        await add(
          {
            table,
            key: JSON.parse(left.key),
            kind: 'different',
            sourceRow: JSON.parse(left.row),
            auditRow: JSON.parse(right.row),
          },
          { sourceRow: left.row, auditRow: right.row },
        );
      }
      left = await sourceRows.next();
      right = await auditRows.next();
    }
  }
  return { sourceRows: sourceCount, auditRows: auditCount, mismatches };
}

/** Columns whose JSON text differs (so `1.10` vs `1.100` counts, as in the row comparison). */
async function differingColumns(
  client: pg.Client,
  sourceRow: string,
  auditRow: string,
): Promise<string[]> {
  const { rows } = await client.query<{ name: string }>(
    `SELECT coalesce(s.key, a.key) AS name
       FROM jsonb_each($1::jsonb) AS s FULL JOIN jsonb_each($2::jsonb) AS a ON a.key = s.key
      WHERE s.value::text IS DISTINCT FROM a.value::text
      ORDER BY 1`,
    [sourceRow, auditRow],
  );
  return rows.map((row) => row.name);
}

let cursorSerial = 0;

/** Reads a query's rows in key order through a server-side cursor. */
class CursorReader {
  private readonly name = `audit_trail_verify_${++cursorSerial}`;
  private buffer: { key: string; row: string }[] = [];
  private declared = false;
  private done = false;

  constructor(
    private readonly client: pg.Client,
    private readonly text: string,
    private readonly values: unknown[],
  ) {}

  async next(): Promise<{ key: string; row: string } | null> {
    if (this.buffer.length === 0 && !this.done) {
      if (!this.declared) {
        await this.client.query(
          `DECLARE ${this.name} NO SCROLL CURSOR FOR ${this.text}`,
          this.values,
        );
        this.declared = true;
      }
      const { rows } = await this.client.query<{ key: string; row: string }>(
        `FETCH ${FETCH_SIZE} FROM ${this.name}`,
      );
      this.buffer = rows;
      if (rows.length === 0) {
        this.done = true;
        await this.client.query(`CLOSE ${this.name}`);
      }
    }
    return this.buffer.shift() ?? null;
  }
}
